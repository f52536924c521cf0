/**
 * Per-exit evaluation: top-1 (and top-5 for 20+ classes) accuracy from one forward pass that
 * computes every exit, and latency of each exit's sub-model measured on the active backend
 * (on wasm-ort: in onnxruntime, as one graph; on webgpu: on the GPU, read back to finish).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ExitReport, Latency } from '../../../shared/metrics.js';
import type { Dataset, ImageSet } from '../data/dataset.js';
import { makeBatch } from '../data/batches.js';
import type { ForwardOptions, MwNetwork } from '../models/network.js';
import { onnxKernelsActive } from '../backend/ortConvolutions/index.js';
import { webGpuRuntime } from '../backend/webgpu/index.js';
import { ONNX_TIMING, onnxBatchLatency } from '../onnx/runtime.js';
import { openSubModelSession } from '../models/onnxSubModel.js';
import { timeRepeated, type LatencyOptions } from '../timing.js';

/** Images per evaluation batch; per-image predictions use the same, so their counts match these accuracies. */
export const EVALUATION_BATCH = 256;

export interface ExitAccuracy {
  top1: number[];
  top5?: number[];
}

/** Top-5 is reported where it says something: 20 or more classes. */
export function reportsTop5(classes: number): boolean {
  return classes >= 20;
}

/**
 * 1 for each image whose label is among the k highest logits, else 0: fewer than k classes
 * score strictly above the label's logit (ties count in the label's favour, as tf.inTopK does).
 */
export function topKHits(logits: tf.Tensor2D, labels: tf.Tensor1D, k: number): tf.Tensor1D {
  const target = tf.sum(tf.mul(logits, tf.oneHot(labels, logits.shape[1])), 1, true);
  const above = tf.sum(tf.cast(tf.greater(logits, target), 'float32'), 1);
  return tf.cast(tf.less(above, k), 'float32') as tf.Tensor1D;
}

/**
 * Accuracy of every exit on a set. Correct counts accumulate on the device and are read once,
 * so evaluation never waits on the backend per batch.
 */
export async function exitAccuracy(
  net: MwNetwork,
  dataset: Dataset,
  set: ImageSet,
  options: ForwardOptions & { batchSize?: number } = {},
): Promise<ExitAccuracy> {
  const batchSize = options.batchSize ?? EVALUATION_BATCH;
  const exits = options.upToExit === undefined ? net.exits.length : options.upToExit + 1;
  const top5 = reportsTop5(net.description.classes);
  let totals = tf.zeros([top5 ? 2 : 1, exits]);
  for (let start = 0; start < set.count; start += batchSize) {
    const indices = Array.from({ length: Math.min(batchSize, set.count - start) }, (_, i) => start + i);
    const next = tf.tidy(() => {
      const { x, labels } = makeBatch(dataset, set, indices, null);
      const logits = net.predict(x, options);
      const top1 = logits.map((l) => tf.sum(tf.cast(tf.equal(tf.argMax(l, 1), labels), 'float32')));
      const rows = [tf.stack(top1)];
      if (top5) rows.push(tf.stack(logits.map((l) => tf.sum(topKHits(l, labels, 5)))));
      return tf.add(totals, tf.stack(rows));
    });
    totals.dispose();
    totals = next;
    // Let other work (stop requests, metric flushes) in between batches.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const counts = (await totals.array()) as number[][];
  totals.dispose();
  const share = (row: number[]) => row.map((c) => (set.count ? c / set.count : 0));
  return top5 ? { top1: share(counts[0]!), top5: share(counts[1]!) } : { top1: share(counts[0]!) };
}

export type { LatencyOptions } from '../timing.js';

/**
 * Median and p90 wall time of `forward`, including reading its outputs back, which is what
 * makes an asynchronous backend (GPU) finish the work being timed.
 */
export async function measureLatency(forward: () => tf.Tensor[], options: LatencyOptions = {}): Promise<Latency> {
  return timeRepeated(async () => {
    const outputs = tf.tidy(forward);
    await Promise.all(outputs.map((t) => t.data()));
    tf.dispose(outputs);
  }, options);
}

/** What runs inference where onnxruntime's kernels are on (wasm-ort), and the label latencies carry. */
export const SUB_MODEL_RUNTIME = 'onnxruntime CPU, whole sub-model';

/**
 * Latency of exit k's standalone sub-model at batch 1 and 32, on random input of the network's
 * shape. On the portable path (wasm-ort) the sub-model runs as one onnxruntime graph built from
 * the current weights: calling onnxruntime once per tfjs kernel took 8-9x as long at batch 1
 * (npm run bench), and a whole graph is also how the exported model runs.
 */
export async function exitLatency(
  net: MwNetwork,
  exit: number,
  options: LatencyOptions = {},
): Promise<ExitReport['latencyMs']> {
  const [h, w, c] = net.description.inputShape;
  if (onnxKernelsActive()) {
    const session = await openSubModelSession(net, [exit]);
    try {
      const timeAt = (batch: number) => onnxBatchLatency(session, [h, w, c], batch, { ...ONNX_TIMING, ...options });
      return { batch1: await timeAt(1), batch32: await timeAt(32), runtime: SUB_MODEL_RUNTIME };
    } finally {
      await session.release();
    }
  }
  const timeAt = async (batch: number) => {
    // Made before the clock starts; measureLatency's read-back is what waits for a GPU to finish.
    const x = tf.randomNormal([batch, h, w, c]);
    try {
      return await measureLatency(() => net.predict(x, { upToExit: exit, onlyLast: true }), options);
    } finally {
      x.dispose();
    }
  };
  const runtime = webGpuRuntime();
  return { batch1: await timeAt(1), batch32: await timeAt(32), ...(runtime ? { runtime } : {}) };
}

/** Everything the exits table shows: costs, accuracy on `set`, latency. */
export async function exitReports(
  net: MwNetwork,
  dataset: Dataset,
  set: ImageSet,
  options: LatencyOptions = {},
): Promise<ExitReport[]> {
  const accuracy = await exitAccuracy(net, dataset, set);
  const reports: ExitReport[] = [];
  for (const cost of net.costs()) {
    reports.push({
      ...cost,
      top1: accuracy.top1[cost.index]!,
      ...(accuracy.top5 ? { top5: accuracy.top5[cost.index]! } : {}),
      latencyMs: await exitLatency(net, cost.index, options),
    });
  }
  return reports;
}
