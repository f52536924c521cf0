/**
 * The wasm backend's fused element-wise kernels (backend/wasm/) against the same arithmetic
 * written out in JavaScript, on shapes the SIMD loops take and shapes they must leave to tfjs ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../electron/engine/backend/index.js';
import { FUSED_KERNELS } from '../../electron/engine/backend/wasm/channelKernels.js';
import {
  channelAffine,
  channelAffine2,
  channelSum,
  channelSums,
  reluGrad,
} from '../../electron/engine/backend/channelOps.js';
import { randomTensor } from './helpers.js';

/** Channels-last shapes: multiples of 4 channels run fused; 6 and 3 channels are composed. */
const SHAPES: { shape: number[]; fused: boolean }[] = [
  { shape: [2, 5, 5, 4], fused: true },
  { shape: [3, 7, 9, 16], fused: true },
  { shape: [1, 1, 1, 8], fused: true },
  { shape: [16, 28, 28, 16], fused: true },
  { shape: [5, 12], fused: true },
  { shape: [2, 3, 3, 6], fused: false },
  { shape: [4, 5, 5, 3], fused: false },
];

/** The kernels one call ran, by name. */
async function kernelsOf(run: () => tf.Tensor | tf.Tensor[]): Promise<string[]> {
  const info = await tf.profile(() => {
    tf.dispose(run());
  });
  return info.kernels.map((k) => k.name);
}

function values(t: tf.Tensor): Float32Array {
  return t.dataSync() as Float32Array;
}

function expectValues(actual: tf.Tensor, expected: Float32Array, shape: number[]): void {
  expect(actual.shape).toEqual(shape);
  const got = values(actual);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(got[i]! - expected[i]!));
  expect(worst).toBeLessThan(1e-5);
}

describe('fused element-wise kernels on wasm', () => {
  beforeAll(async () => {
    expect((await initBackend('wasm')).name).toBe('wasm');
  });

  it('are registered on the wasm backend', () => {
    for (const name of Object.values(FUSED_KERNELS)) expect(tf.getKernel(name, 'wasm'), name).toBeDefined();
  });

  for (const { shape, fused } of SHAPES) {
    it(`${shape.join('x')}: affine, affine of two, per-channel sums (alone and with products) and ReLU's gradient (${fused ? 'fused' : 'composed from tfjs ops'})`, async () => {
      const channels = shape.at(-1)!;
      const [x, y] = [randomTensor(shape, 1), randomTensor(shape, 2)];
      const [a, b, c] = [randomTensor([channels], 3), randomTensor([channels], 4), randomTensor([channels], 5)];
      const [xs, ys, as, bs, cs] = [x, y, a, b, c].map(values) as [
        Float32Array,
        Float32Array,
        Float32Array,
        Float32Array,
        Float32Array,
      ];
      const perValue = (f: (i: number, k: number) => number) =>
        Float32Array.from({ length: xs.length }, (_, i) => f(i, i % channels));
      const tensorsBefore = tf.memory().numTensors;

      const affine = channelAffine(x, a, b);
      expectValues(
        affine,
        perValue((i, k) => xs[i]! * as[k]! + bs[k]!),
        shape,
      );
      const affine2 = channelAffine2(x, a, y, b, c);
      expectValues(
        affine2,
        perValue((i, k) => xs[i]! * as[k]! + ys[i]! * bs[k]! + cs[k]!),
        shape,
      );
      const [sumX, sumXY] = channelSums(x, y);
      const [expectedX, expectedXY, magnitude] = [
        new Float64Array(channels),
        new Float64Array(channels),
        new Float64Array(channels),
      ];
      xs.forEach((v, i) => {
        const k = i % channels;
        expectedX[k] = expectedX[k]! + v;
        expectedXY[k] = expectedXY[k]! + v * ys[i]!;
        magnitude[k] = magnitude[k]! + Math.abs(v);
      });
      // Sums of thousands of terms: compared relative to the sum of magnitudes (float32 rounding).
      const sumAlone = channelSum(x);
      const [gotX, gotXY, gotAlone] = [values(sumX), values(sumXY), values(sumAlone)];
      expect([sumX.shape, sumXY.shape]).toEqual([[channels], [channels]]);
      for (let k = 0; k < channels; k++) {
        expect(Math.abs(gotX[k]! - expectedX[k]!)).toBeLessThan(1e-6 * magnitude[k]! + 1e-6);
        expect(Math.abs(gotXY[k]! - expectedXY[k]!)).toBeLessThan(1e-6 * magnitude[k]! + 1e-6);
        expect(Math.abs(gotAlone[k]! - expectedX[k]!)).toBeLessThan(1e-6 * magnitude[k]! + 1e-6);
      }
      const gradient = reluGrad(x, y);
      expectValues(
        gradient,
        perValue((i) => (ys[i]! > 0 ? xs[i]! : 0)),
        shape,
      );
      tf.dispose([affine, affine2, sumX, sumXY, sumAlone, gradient]);
      expect(tf.memory().numTensors).toBe(tensorsBefore);

      const ran = await kernelsOf(() => [channelAffine(x, a, b), channelAffine2(x, a, y, b, c), ...channelSums(x, y)]);
      const fusedRan = [FUSED_KERNELS.channelAffine, FUSED_KERNELS.channelAffine2, FUSED_KERNELS.channelSums].filter(
        (name) => ran.includes(name),
      );
      expect(fusedRan).toHaveLength(fused ? 3 : 0);
      tf.dispose([x, y, a, b, c]);
    });
  }

  it("ReLU's gradient runs fused whenever the value count is a multiple of 4, whatever the channels", async () => {
    const [dy, y] = [randomTensor([2, 3, 3, 6], 6), randomTensor([2, 3, 3, 6], 7)];
    expect(await kernelsOf(() => reluGrad(dy, y))).toContain(FUSED_KERNELS.reluGrad);
    const [odd, oddY] = [randomTensor([3, 5], 8), randomTensor([3, 5], 9)];
    expect(await kernelsOf(() => reluGrad(odd, oddY))).not.toContain(FUSED_KERNELS.reluGrad);
    tf.dispose([dy, y, odd, oddY]);
  });
});
