/**
 * The images an export is judged and calibrated on: the run's dataset loaded as it trained on it
 * (same limits, split and seed), its held-out images for re-scoring every exported file, and a
 * few hundred training images for int8 calibration.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { RunConfig } from '../../../shared/spec.js';
import { loadRunDataset, makeBatch, type Dataset, type ImageSet } from '../data/index.js';

/** Images the exported model never trained on, and which split of the run they are. */
export interface HeldOutImages {
  split: string;
  set: ImageSet;
}

export interface ExportImages {
  dataset: Dataset;
  heldOut: HeldOutImages;
}

/** Images per forward pass while scoring or calibrating. */
const SCORING_BATCH = 100;

/**
 * The run's dataset and the held-out images exports are scored on: the run's test split, the
 * one its final per-exit figures were measured on, so the two compare (model selection used the
 * validation hold-out, so this re-measures a figure rather than choosing by it).
 */
export async function exportImages(config: RunConfig): Promise<ExportImages> {
  const dataset = await loadRunDataset(config);
  return { dataset, heldOut: { split: 'test', set: dataset.test } };
}

/** The images at `indices` of `set`, preprocessed as the model card says, as NHWC float32. */
function normalised(dataset: Dataset, set: ImageSet, indices: ArrayLike<number>): Float32Array {
  const { x, labels } = makeBatch(dataset, set, indices, null);
  labels.dispose();
  const values = x.dataSync() as Float32Array;
  x.dispose();
  return values;
}

/** `count` training images spread evenly over the training set, in batches: int8 calibration input. */
export function* calibrationBatches(dataset: Dataset, count: number): Generator<Float32Array> {
  const total = Math.min(count, dataset.train.count);
  const step = dataset.train.count / total;
  for (let start = 0; start < total; start += SCORING_BATCH) {
    const indices = Array.from({ length: Math.min(SCORING_BATCH, total - start) }, (_, i) =>
      Math.floor((start + i) * step),
    );
    yield normalised(dataset, dataset.train, indices);
  }
}

/** Logits per model output for a batch of preprocessed NHWC images. */
export type ExportedRunner = (images: Float32Array, count: number) => Promise<Float32Array[]>;

/** Top-1 accuracy of every output of an exported model on the held-out images. */
export async function heldOutTop1(dataset: Dataset, heldOut: HeldOutImages, run: ExportedRunner): Promise<number[]> {
  const { set } = heldOut;
  let correct: number[] = [];
  for (let start = 0; start < set.count; start += SCORING_BATCH) {
    const count = Math.min(SCORING_BATCH, set.count - start);
    const outputs = await run(
      normalised(
        dataset,
        set,
        Array.from({ length: count }, (_, i) => start + i),
      ),
      count,
    );
    if (!correct.length) correct = outputs.map(() => 0);
    outputs.forEach((logits, k) => {
      const classes = logits.length / count;
      for (let i = 0; i < count; i++) if (argmax(logits, i * classes, classes) === set.labels[start + i]) correct[k]!++;
    });
  }
  return correct.map((c) => c / set.count);
}

export function argmax(values: ArrayLike<number>, offset: number, length: number): number {
  let best = 0;
  for (let j = 1; j < length; j++) if (values[offset + j]! > values[offset + best]!) best = j;
  return best;
}

/** Runs a tfjs model (one or several outputs) on preprocessed NHWC images. */
export function tfjsRunner(
  predict: (x: tf.Tensor4D) => tf.Tensor | tf.Tensor[],
  shape: readonly [number, number, number],
): ExportedRunner {
  return async (images, count) => {
    const x = tf.tensor4d(images, [count, ...shape]);
    const outputs = [predict(x)].flat();
    try {
      return (await Promise.all(outputs.map((t) => t.data()))) as Float32Array[];
    } finally {
      tf.dispose([x, ...outputs]);
    }
  };
}
