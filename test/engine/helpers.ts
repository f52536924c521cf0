/** Shared test helpers: tiny deterministic inputs and closeness checks on real tfjs tensors. */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradient functions; autodiff is the reference these tests compare with.
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-backend-cpu';
import { expect } from 'vitest';
import { ENGINE_CONTRACT } from '../../shared/api.js';
import { carryOut } from '../../shared/peer.js';
import { parseCall } from '../../shared/protocol.js';
import { loadRunDataset, makeBatch } from '../../electron/engine/data/index.js';
import { exitLatency, SUB_MODEL_RUNTIME } from '../../electron/engine/evaluate/index.js';
import type { EngineHost } from '../../electron/engine/host.js';
import type { MwNetwork } from '../../electron/engine/models/index.js';
import { openSubModelSession } from '../../electron/engine/models/onnxSubModel.js';
import { runOnnx } from '../../electron/engine/onnx/runtime.js';
import { Random } from '../../electron/engine/random.js';
import type { RunConfig } from '../../shared/spec.js';

export async function useCpuBackend(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();
}

export function randomTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const rng = new Random(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: size }, () => (rng.next() * 2 - 1) * scale);
  return tf.tensor(values, shape);
}

export function randomLabels(count: number, classes: number, seed: number): tf.Tensor1D {
  const rng = new Random(seed);
  return tf.tensor1d(
    Array.from({ length: count }, () => rng.int(classes)),
    'int32',
  );
}

/** Max |a - b| relative to the larger magnitude (at least 1). */
export function expectClose(actual: tf.Tensor, expected: tf.Tensor, tolerance = 1e-4): void {
  expect(actual.shape).toEqual(expected.shape);
  const a = actual.dataSync();
  const b = expected.dataSync();
  let scale = 1;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  }
  expect(worst / scale).toBeLessThanOrEqual(tolerance);
}

export function snapshot(vars: Iterable<[string, tf.Tensor]>): Map<string, Float32Array> {
  return new Map([...vars].map(([name, v]) => [name, Float32Array.from(v.dataSync())]));
}

/** Every named weight within `tolerance` (absolute) of the same name in `expected`. */
export function expectSameWeights(
  actual: Map<string, Float32Array>,
  expected: Map<string, Float32Array>,
  tolerance: number,
): void {
  for (const [name, values] of actual) {
    const reference = expected.get(name)!;
    let worst = 0;
    values.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - reference[i]!))));
    expect(worst, name).toBeLessThan(tolerance);
  }
}

/** A call as the engine worker takes one off its channel: checked against the engine's contract, then carried out. */
export async function callHost(host: EngineHost, method: unknown, payload: unknown): Promise<unknown> {
  const { method: name, request } = parseCall(ENGINE_CONTRACT, method, payload);
  return carryOut(host.handlers, name, request);
}

/**
 * With onnxruntime's kernels on (wasm-ort), exit `exit`'s latency is timed on its whole sub-model
 * as one onnxruntime graph, and that graph gives the network's own logits on `x`.
 */
export async function expectSubModelLatency(net: MwNetwork, exit: number, x: tf.Tensor4D): Promise<void> {
  const latency = await exitLatency(net, exit, { warmup: 1, minRepeats: 2, maxRepeats: 2 });
  expect(latency.runtime).toBe(SUB_MODEL_RUNTIME);
  expect(latency.batch1.median).toBeGreaterThan(0);
  expect(latency.batch32.median).toBeGreaterThan(0);
  const session = await openSubModelSession(net, [exit]);
  try {
    const [logits] = await runOnnx(session, x.dataSync() as Float32Array, x.shape.slice(1) as [number, number, number]);
    const [expected] = net.predict(x, { upToExit: exit, onlyLast: true });
    const actual = tf.tensor(logits!, expected!.shape);
    expectClose(actual, expected!);
    tf.dispose([expected!, actual]);
  } finally {
    await session.release();
  }
}

/** A run's test images, preprocessed as it trained (its dataset loaded as the run loads it), and their labels. */
export async function runTestImages(config: RunConfig): Promise<{ images: tf.Tensor4D; labels: Uint8Array }> {
  const dataset = await loadRunDataset(config);
  const { x, labels } = makeBatch(
    dataset,
    dataset.test,
    Array.from({ length: dataset.test.count }, (_, i) => i),
    null,
  );
  labels.dispose();
  return { images: x, labels: dataset.test.labels };
}
