/**
 * Per-exit accuracy: top-1 (and top-5 for 20+ classes) from one forward pass that computes every
 * exit.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dataset, ImageSet } from '../data/dataset.js';
import { makeBatch } from '../data/batches.js';
import type { ForwardOptions, MwNetwork } from '../models/network.js';

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
