/**
 * One or two training steps of a method on the ort backend's compiled step (train/ort/) against
 * the same steps on wasm-ort's path (tfjs layers with onnxruntime convolutions): every weight,
 * batch-norm statistic, momentum buffer and loss within 1e-4 relative, no tensor left behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import type { Method } from '../../shared/spec.js';
import { onnxConvolutionSupport } from '../../electron/engine/backend/ortConvolutions/index.js';
import type { MwNetwork } from '../../electron/engine/models/index.js';
import {
  createTrainingMethod,
  type Hyperparameters,
  type TrainingMethod,
} from '../../electron/engine/train/methods.js';
import { OrtTrainingMethod } from '../../electron/engine/train/ort/method.js';
import { randomLabels, randomTensor } from './helpers.js';

/** max |a - b| / max |b|, the scale at least 1 as in helpers.ts' expectClose (values near zero compare absolutely). */
export function relativeDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  }
  return worst / scale;
}

/** Every weight, buffer and momentum buffer by name. */
function stateOf(net: MwNetwork, method: TrainingMethod): Map<string, Float32Array> {
  const state = new Map([...net.namedTensors()].map(([name, v]) => [name, Float32Array.from(v.dataSync())]));
  method.optimizers.forEach((opt) => {
    for (const [name, buf] of opt.state()) state.set(`${opt.name}/${name}`, Float32Array.from(buf.dataSync()));
  });
  return state;
}

export interface StepComparison {
  method: Method;
  hyper: Hyperparameters;
  /** Steps compared (the second at half the learning rate: momentum buffers and the lr input count). */
  steps: number;
  batch: number;
  input: readonly [number, number, number];
  classes: number;
}

/** Builds the network twice (the same seed), steps one on each path and compares everything. */
export function expectCompiledStepMatches(build: () => MwNetwork, c: StepComparison): void {
  const before = tf.memory().numTensors;
  const reference = build();
  const compiled = build();
  const tfjsMethod = createTrainingMethod(c.method, reference, c.hyper);
  const ortMethod = new OrtTrainingMethod(compiled, createTrainingMethod(c.method, compiled, c.hyper), c.hyper, {
    ...onnxConvolutionSupport(),
  });
  [1, 0.5].slice(0, c.steps).forEach((lrFactor, s) => {
    const x = randomTensor([c.batch, ...c.input], 10 + s) as tf.Tensor4D;
    const labels = randomLabels(c.batch, c.classes, 11 + s);
    const expected = tfjsMethod.step(x, labels, lrFactor);
    const actual = ortMethod.step(x, labels, lrFactor);
    expect(relativeDifference(actual.losses.dataSync(), expected.losses.dataSync())).toBeLessThan(1e-4);
    expect(Array.from(actual.correct.dataSync())).toEqual(Array.from(expected.correct.dataSync()));
    expect(actual.crossEntropy === undefined).toBe(expected.crossEntropy === undefined);
    if (actual.crossEntropy && expected.crossEntropy)
      expect(relativeDifference(actual.crossEntropy.dataSync(), expected.crossEntropy.dataSync())).toBeLessThan(1e-4);
    tf.dispose([x, labels, actual.losses, actual.correct, expected.losses, expected.correct]);
    tf.dispose([actual.crossEntropy, expected.crossEntropy].filter((t) => t !== undefined));
  });
  ortMethod.settle();
  const want = stateOf(reference, tfjsMethod);
  const got = stateOf(compiled, ortMethod);
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [name, values] of want) expect(relativeDifference(got.get(name)!, values), name).toBeLessThan(1e-4);
  ortMethod.release();
  for (const opt of [...tfjsMethod.optimizers, ...ortMethod.optimizers]) opt.disposeState();
  reference.dispose();
  compiled.dispose();
  expect(tf.memory().numTensors).toBe(before);
}
