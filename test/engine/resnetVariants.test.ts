/**
 * The ResNet variants (--block): the default's per-exit parameter counts are the paper's
 * published ResNet-56 table, and every variant trains, lesions and exports like the others.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RUN_CONFIG, RESNET_BLOCKS, type ArchSpec } from '../../shared/spec.js';
import { buildNetwork } from '../../electron/engine/models/index.js';
import { useCpuBackend } from './helpers.js';

beforeAll(useCpuBackend);

/** Millions of parameters, cut to two decimals as the paper prints them. */
const millions = (count: number) => Math.floor(count / 1e4) / 100;

describe('ResNet block variants', () => {
  it("the default block gives the paper's ResNet-56 parameter counts per exit (CIFAR-10, exits at layers 15, 25, 35, 45)", () => {
    const defaults = DEFAULT_RUN_CONFIG.arch as Extract<ArchSpec, { family: 'resnet' }>;
    const net = buildNetwork({ family: 'resnet', depth: 56, width: 1, block: defaults.block }, [32, 32, 3], 10, 0);
    const costs = net.costs();
    expect(costs.map((c) => c.layer)).toEqual([15, 25, 35, 45, 55]);
    expect(costs.map((c) => millions(c.params))).toEqual([0.03, 0.09, 0.18, 0.48, 0.85]);
    // He et al. give ResNet-56 0.85M parameters, which the projection shortcut exceeds (0.86M rounded).
    expect(Math.round(costs.at(-1)!.params / 1e4) / 100).toBe(0.85);
    net.dispose();
    const projection = buildNetwork({ family: 'resnet', depth: 56, width: 1, block: 'projection' }, [32, 32, 3], 10, 0);
    expect(Math.round(projection.costs().at(-1)!.params / 1e4) / 100).toBe(0.86);
    projection.dispose();
  });

  it('every variant runs every exit and its lesioned blocks at the same shapes', () => {
    for (const block of RESNET_BLOCKS) {
      const net = buildNetwork({ family: 'resnet', depth: 14, width: 0.25, block, exits: [2] }, [7, 7, 1], 3, 1);
      const shapes = tf.tidy(() => {
        const x = tf.ones([2, 7, 7, 1]);
        return [net.predict(x), net.predict(x, { skipBlock: 3 })].flatMap((logits) => logits.map((l) => l.shape));
      });
      expect(shapes).toEqual(new Array(4).fill([2, 3]));
      net.dispose();
    }
  });
});
