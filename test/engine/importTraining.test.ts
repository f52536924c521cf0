/**
 * Training an imported backbone: one step of joint and of multi-way BP on torchvision's
 * mobilenet_v2 (batch norm kept as nodes) with two auxiliary exits equals the same step written
 * in PyTorch (import/torch_step.py, from method.md), for the losses and every weight and running
 * statistic; and repeated steps leave no tensor behind.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../electron/engine/backend/index.js';
import { buildImportedNetwork } from '../../electron/engine/models/import/network.js';
import type { MwNetwork } from '../../electron/engine/models/network.js';
import { createTrainingMethod, type Hyperparameters } from '../../electron/engine/train/methods.js';
import { randomLabels } from './helpers.js';
import { exportTorchvision, type ExportRequest, type Exports } from './import/torchvision.js';

// 64 pixels: at 32 the last blocks' batch norms see 1x1 maps of 4 images, whose near-zero variances make float32 noise dominate.
const MODEL: ExportRequest = { name: 'mobilenet_v2', opset: 13, fold: false, size: 64, batch: 4 };
const EXITS = [5, 12];
const CLASSES = 10;
const HYPER: Hyperparameters = { lr: 0.05, momentum: 0.9, weightDecay: 1e-4, gamma: 2 };
const STEP_SCRIPT = fileURLToPath(new URL('./import/torch_step.py', import.meta.url));

let exports: Exports | undefined;

beforeAll(async () => {
  await initBackend('wasm');
  exports = exportTorchvision([MODEL], 'training an imported backbone against PyTorch');
});

afterAll(() => exports?.dispose());

function importNetwork(): MwNetwork {
  return buildImportedNetwork(readFileSync(exports!.models[0]!.onnx), {
    exits: EXITS,
    classes: CLASSES,
    seed: 3,
    name: 'MwImported-mobilenet_v2',
  });
}

describe('one training step on an imported mobilenet_v2 equals PyTorch', () => {
  it.each(['joint', 'multiway'] as const)('%s', async (method) => {
    if (!exports) return;
    const model = exports.models[0]!;
    const net = importNetwork();
    const labels = randomLabels(MODEL.batch, CLASSES, 11);
    const heads: Record<string, string> = {};
    const channels: Record<string, number> = {};
    net.exits.forEach((exit) => {
      const fc = net.namedTensors().get(`exits.${exit.block}.fc.weight`)!;
      heads[exit.block] = `head-${exit.block}.bin`;
      channels[exit.block] = fc.shape[0]!;
      writeFileSync(join(exports!.dir, heads[exit.block]!), fc.dataSync() as Float32Array);
    });
    const training = createTrainingMethod(method, net, HYPER);
    const x = tf.tidy(() =>
      tf.transpose(exports!.read(`${model.tag}.input.bin`, [MODEL.batch, 3, MODEL.size, MODEL.size]), [0, 2, 3, 1]),
    ) as tf.Tensor4D;
    const result = training.step(x, labels, 1);
    const losses = Array.from(await result.losses.data());

    const request = {
      model: MODEL,
      onnx: model.onnx,
      input: `${model.tag}.input.bin`,
      labels: Array.from(labels.dataSync()),
      exits: EXITS,
      classes: CLASSES,
      method,
      heads,
      channels,
      ...HYPER,
    };
    const run = spawnSync('/usr/bin/python3', [STEP_SCRIPT, exports.dir, JSON.stringify(request)], {
      encoding: 'utf8',
    });
    if (run.status !== 0) throw new Error(`torch_step.py failed: ${run.stderr}`);
    const reference = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
      losses: number[];
      tensors: [string, number][];
    };
    losses.forEach((loss, k) =>
      expect(Math.abs(loss - reference.losses[k]!)).toBeLessThan(1e-3 * reference.losses[k]!),
    );

    const after = readFileSync(join(exports.dir, 'after.bin'));
    const values = new Float32Array(after.buffer, after.byteOffset, after.byteLength / 4);
    const named = net.namedTensors();
    // Every trainable parameter and running statistic of the network has its PyTorch counterpart.
    expect(new Set(reference.tensors.map(([name]) => name))).toEqual(new Set(named.keys()));
    let offset = 0;
    for (const [name, size] of reference.tensors) {
      const expected = values.subarray(offset, offset + size);
      offset += size;
      const actual = named.get(name)!.dataSync();
      expect(actual.length, name).toBe(size);
      let worst = 0;
      let scale = 0;
      expected.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(actual[i]! - v));
        scale = Math.max(scale, Math.abs(v));
      });
      expect(worst, name).toBeLessThanOrEqual(1e-3 * scale);
    }
    tf.dispose([x, labels, result.losses, result.correct]);
    for (const o of training.optimizers) o.disposeState();
    net.dispose();
  });
});

describe('training an imported network', () => {
  it('keeps tf.memory().numTensors flat across steps', () => {
    if (!exports) return;
    const net = importNetwork();
    const training = createTrainingMethod('multiway', net, HYPER);
    const x = tf.randomNormal([MODEL.batch, MODEL.size, MODEL.size, 3]) as tf.Tensor4D;
    const labels = randomLabels(MODEL.batch, CLASSES, 5);
    const counts: number[] = [];
    for (let step = 0; step < 3; step++) {
      const result = training.step(x, labels, 1);
      tf.dispose([result.losses, result.correct]);
      counts.push(tf.memory().numTensors);
    }
    // The first step creates the momentum buffers; after it nothing accumulates.
    expect(counts[2]).toBe(counts[1]);
    tf.dispose([x, labels]);
    for (const o of training.optimizers) o.disposeState();
    net.dispose();
  });
});
