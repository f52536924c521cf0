/**
 * Every exit's prediction for every image of a set, with its softmax probability: what the
 * per-class figures, the overthinking counts and the thumbnail grid are computed from. Batches
 * are cut as exitAccuracy cuts them and predictions are tf.argMax of the same logits, so the
 * counts agree exactly with the accuracies in the run summary.
 */
import * as tf from '@tensorflow/tfjs-core';
import { makeBatch } from '../data/batches.js';
import type { Dataset, ImageSet } from '../data/dataset.js';
import type { MwNetwork } from '../models/network.js';
import { EVALUATION_BATCH, reportsTop5, topKHits } from './accuracy.js';

export interface ExitPredictions {
  labels: Uint8Array;
  /** Per exit, shallowest first: the predicted class of each image. */
  predicted: Int32Array[];
  /** Per exit: the softmax probability of that prediction. */
  confidence: Float32Array[];
  /** Per exit, only for 20 or more classes: 1 where the label is among the five highest logits. */
  top5?: Uint8Array[];
}

export async function exitPredictions(
  net: MwNetwork,
  dataset: Dataset,
  set: ImageSet,
  onProgress?: (done: number, total: number) => void,
): Promise<ExitPredictions> {
  const exits = net.exits.length;
  const withTop5 = reportsTop5(net.description.classes);
  const predicted = Array.from({ length: exits }, () => new Int32Array(set.count));
  const confidence = Array.from({ length: exits }, () => new Float32Array(set.count));
  const top5 = withTop5 ? Array.from({ length: exits }, () => new Uint8Array(set.count)) : undefined;
  for (let start = 0; start < set.count; start += EVALUATION_BATCH) {
    const indices = Array.from({ length: Math.min(EVALUATION_BATCH, set.count - start) }, (_, i) => start + i);
    const outputs = tf.tidy(() => {
      const { x, labels } = makeBatch(dataset, set, indices, null);
      return net
        .predict(x)
        .flatMap((logits) => [
          tf.argMax(logits, 1),
          tf.max(tf.softmax(logits), 1),
          ...(withTop5 ? [topKHits(logits, labels, 5)] : []),
        ]);
    });
    const values = await Promise.all(outputs.map((t) => t.data()));
    tf.dispose(outputs);
    const perExit = values.length / exits;
    for (let k = 0; k < exits; k++) {
      predicted[k]!.set(values[k * perExit]!, start);
      confidence[k]!.set(values[k * perExit + 1]!, start);
      top5?.[k]!.set(values[k * perExit + 2]!, start);
    }
    onProgress?.(start + indices.length, set.count);
    // Let other work (progress events, other calls) in between batches.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { labels: set.labels.slice(0, set.count), predicted, confidence, ...(top5 ? { top5 } : {}) };
}
