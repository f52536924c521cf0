/**
 * Every explicit backward pass against tfjs autodiff of the same forward computation:
 * gradients w.r.t. the input and every parameter must agree.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ResidualBlock, SeparableBlock, headMaker, convBn } from '../../electron/engine/models/blocks.js';
import { buildNetwork } from '../../electron/engine/models/index.js';
import {
  Dropout,
  GradSink,
  ParamFactory,
  StepClock,
  ZeroPadShortcut,
  type Layer,
} from '../../electron/engine/models/layers.js';
import { Random } from '../../electron/engine/random.js';
import { expectClose, randomTensor, useCpuBackend } from './helpers.js';

beforeAll(useCpuBackend);

function checkLayerGradients(layer: Layer, inputShape: number[], seed: number): void {
  tf.tidy(() => {
    const x = tf.variable(randomTensor(inputShape, seed));
    const probe = layer.trace(x).y;
    const upstream = randomTensor(probe.shape, seed + 1);
    const vars = [x, ...layer.params.map((p) => p.variable)];
    const reference = tf.variableGrads(() => tf.sum(tf.mul(layer.trace(x).y, upstream)) as tf.Scalar, vars);
    const sink = new GradSink();
    const dx = layer.trace(x).backward(upstream, sink);
    expectClose(dx, reference.grads[x.name]!);
    for (const p of layer.params) expectClose(sink.get(p)!, reference.grads[p.variable.name]!);
    x.dispose();
  });
}

describe('explicit backward passes match tfjs autodiff', () => {
  const make = (seed: number) => new ParamFactory(new Random(seed), `t${seed}`);

  it('conv + batch norm + relu, stride 1 and 2', () => {
    checkLayerGradients(convBn(make(1), 3, 4, 3, 1, true), [2, 6, 6, 3], 10);
    checkLayerGradients(convBn(make(2), 3, 4, 3, 2, false), [2, 7, 7, 3], 11);
    checkLayerGradients(convBn(make(3), 3, 4, 1, 2, false), [2, 6, 6, 3], 12);
  });

  it('residual blocks with identity and projection shortcuts', () => {
    checkLayerGradients(new ResidualBlock(make(4), 4, 4, 1), [2, 6, 6, 4], 13);
    checkLayerGradients(new ResidualBlock(make(5), 4, 8, 2), [2, 6, 6, 4], 14);
  });

  it('option-A and pre-activation residual blocks, on even and odd sizes', () => {
    for (const variant of ['option-a', 'preact'] as const) {
      checkLayerGradients(new ResidualBlock(make(21), 4, 4, 1, variant), [2, 6, 6, 4], 22);
      checkLayerGradients(new ResidualBlock(make(23), 4, 8, 2, variant), [2, 6, 6, 4], 24);
      checkLayerGradients(new ResidualBlock(make(25), 4, 8, 2, variant), [2, 7, 7, 4], 26);
    }
  });

  it("option-A shortcut: the input's every other pixel, zero-padded to more channels, with no parameters", () => {
    tf.tidy(() => {
      const x = randomTensor([2, 7, 7, 3], 27);
      const y = new ZeroPadShortcut(make(28), 3, 5, 2).forward(x);
      expect(y.shape).toEqual([2, 4, 4, 5]);
      const subsampled = tf.stridedSlice(x, [0, 0, 0, 0], [2, 7, 7, 3], [1, 2, 2, 1]);
      expectClose(y, tf.concat([subsampled, tf.zeros([2, 4, 4, 2])], 3), 0);
    });
  });

  it('depthwise-separable blocks', () => {
    checkLayerGradients(new SeparableBlock(make(6), 4, 6, 1), [2, 5, 5, 4], 15);
    checkLayerGradients(new SeparableBlock(make(7), 4, 6, 2), [2, 6, 6, 4], 16);
  });

  it('exit heads: BN -> ReLU -> GAP -> FC, and GAP -> dropout -> FC (Elastic)', () => {
    checkLayerGradients(headMaker('bn-relu', 3, new StepClock())(make(8), 4), [3, 4, 4, 4], 17);
    checkLayerGradients(headMaker('elastic', 3, new StepClock())(make(9), 4), [3, 4, 4, 4], 18);
  });

  it('dropout: zeroes about `rate` of the values while training, scales the rest by 1/(1-rate), new masks each step, identity at inference', () => {
    tf.tidy(() => {
      const clock = new StepClock();
      const dropout = new Dropout(0.25, 5, clock);
      const x = tf.ones([200, 50]);
      const first = dropout.trace(x).y.dataSync();
      const zeros = first.filter((v) => v === 0).length;
      expect(Math.abs(zeros / first.length - 0.25)).toBeLessThan(0.02);
      expect(first.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6)).toBe(true);
      expect(dropout.trace(x).y.dataSync()).toEqual(first);
      clock.step = 1;
      expect(dropout.trace(x).y.dataSync()).not.toEqual(first);
      expect(dropout.forward(x)).toBe(x);
    });
  });

  it('whole network: backward from any set of exits equals autodiff of their summed losses', () => {
    const net = buildNetwork({ family: 'resnet', depth: 14, width: 0.25, exits: [2, 4] }, [8, 8, 1], 3, 5);
    tf.tidy(() => {
      const x = randomTensor([3, 8, 8, 1], 20);
      const seeds = net.exits.map((_, k) => randomTensor([3, 3], 30 + k));
      const vars = net.params.map((p) => p.variable);
      // Exits 0 and 2 seeded, exit 1 not: its head must get no gradient.
      const reference = tf.variableGrads(() => {
        const logits = net.trace(x).logits;
        return tf.add(tf.sum(tf.mul(logits[0]!, seeds[0]!)), tf.sum(tf.mul(logits[2]!, seeds[2]!))) as tf.Scalar;
      }, vars);
      const sink = new GradSink();
      net.trace(x).backward([seeds[0]!, null, seeds[2]!], sink);
      for (const p of net.params) {
        const expected = reference.grads[p.variable.name] ?? tf.zerosLike(p.variable);
        const got = sink.get(p) ?? tf.zerosLike(p.variable);
        expectClose(got, expected);
      }
      const middleHead = net.heads[1]!.params;
      expect(middleHead.every((p) => sink.get(p) === undefined)).toBe(true);
    });
    net.dispose();
  });

  it('MobileNet builds, runs every exit and reports growing costs', () => {
    const net = buildNetwork({ family: 'mobilenet', width: 0.125, exits: [3, 7] }, [16, 16, 3], 4, 1);
    const logits = tf.tidy(() => net.predict(tf.zeros([2, 16, 16, 3])).map((l) => l.shape));
    expect(logits).toEqual([
      [2, 4],
      [2, 4],
      [2, 4],
    ]);
    const costs = net.costs();
    expect(costs.map((c) => c.block)).toEqual([3, 7, 13]);
    expect(costs[0]!.params).toBeLessThan(costs[1]!.params);
    expect(costs[1]!.macs).toBeLessThan(costs[2]!.macs);
    net.dispose();
  });
});
