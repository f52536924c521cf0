/**
 * Training and evaluation batches: the step's images cut from the uint8 set, normalised and
 * (for training) augmented on the CPU in one pass, then handed to the backend as one tensor.
 * This runs every step, so it is written as flat loops over typed arrays.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Random } from '../random.js';
import type { Dataset, ImageSet } from './dataset.js';

/** The order in which one epoch visits the training images. */
export function epochOrder(count: number, rng: Random): Int32Array {
  return rng.permutation(count);
}

/** Padding of the random crop: 4 pixels (the CIFAR recipe) from 24 px up, 2 for smaller images. */
export function cropPadding(height: number, width: number): number {
  return Math.min(height, width) >= 24 ? 4 : 2;
}

/**
 * normalised[c * 256 + v] = (v / 255 - mean[c]) / std[c]: one lookup a sample instead of
 * arithmetic, and exactly the value the formula gives.
 */
function normalisationTable(dataset: Dataset): Float32Array {
  const { channels } = dataset.shape;
  const { mean, std } = dataset.normalization;
  const table = new Float32Array(channels * 256);
  for (let c = 0; c < channels; c++) {
    for (let v = 0; v < 256; v++) table[c * 256 + v] = (v / 255 - mean[c]!) / std[c]!;
  }
  return table;
}

/** The labels (int32) of the images at `indices` of `set`. */
export function batchLabels(set: ImageSet, indices: ArrayLike<number>): tf.Tensor1D {
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i]!;
    if (!(index >= 0 && index < set.count))
      throw new RangeError(`image index ${index} is outside the set of ${set.count}`);
    labels[i] = set.labels[index]!;
  }
  return tf.tensor1d(labels, 'int32');
}

/**
 * The images at `indices` of `set` as a normalised NHWC batch, and their labels (int32).
 *
 * With `augmentRng`, each image gets, in this order of draws: a random crop (vertical offset,
 * then horizontal, each uniform in 0..2*pad) of the image zero-padded by `cropPadding` on every
 * side, then, only when `dataset.flipAugment`, a horizontal flip with probability 0.5. As with
 * torchvision's RandomCrop(padding) on the raw image followed by Normalize, a padded pixel is a
 * raw 0, so after normalisation it holds (0 - mean[c]) / std[c], not 0.
 */
export function makeBatch(
  dataset: Dataset,
  set: ImageSet,
  indices: ArrayLike<number>,
  augmentRng: Random | null,
): { x: tf.Tensor4D; labels: tf.Tensor1D } {
  const { height, width, channels } = dataset.shape;
  const rowBytes = width * channels;
  const bytesPerImage = height * rowBytes;
  const table = normalisationTable(dataset);
  const count = indices.length;
  // First: it checks every index is inside the set.
  const labels = batchLabels(set, indices);
  const x = new Float32Array(count * bytesPerImage);
  const pad = augmentRng ? cropPadding(height, width) : 0;
  const { images } = set;

  for (let i = 0; i < count; i++) {
    const index = indices[i]!;
    const source = index * bytesPerImage;
    const target = i * bytesPerImage;
    if (!augmentRng) {
      for (let k = 0; k < bytesPerImage; k++) x[target + k] = table[(k % channels) * 256 + images[source + k]!]!;
      continue;
    }
    // Output pixel (y, x) shows source pixel (y + dy, x' + dx), x' = x or width-1-x when flipped.
    const dy = augmentRng.int(2 * pad + 1) - pad;
    const dx = augmentRng.int(2 * pad + 1) - pad;
    const flip = dataset.flipAugment && augmentRng.next() < 0.5;
    for (let y = 0; y < height; y++) {
      const sy = y + dy;
      const rowInside = sy >= 0 && sy < height;
      for (let xo = 0; xo < width; xo++) {
        const sx = (flip ? width - 1 - xo : xo) + dx;
        const out = target + y * rowBytes + xo * channels;
        if (rowInside && sx >= 0 && sx < width) {
          const from = source + sy * rowBytes + sx * channels;
          for (let c = 0; c < channels; c++) x[out + c] = table[c * 256 + images[from + c]!]!;
        } else {
          for (let c = 0; c < channels; c++) x[out + c] = table[c * 256]!;
        }
      }
    }
  }
  return { x: tf.tensor4d(x, [count, height, width, channels]), labels };
}
