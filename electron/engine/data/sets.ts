/**
 * Operations on in-memory image sets: class-stratified seeded selection (limits, validation
 * hold-out, the image-folder test split) and the normalization statistics.
 */
import type { ImageSet } from './dataset.js';
import type { Random } from '../random.js';
import { fail } from './files.js';

export function classCounts(labels: Uint8Array, classCount: number): number[] {
  const counts = new Array<number>(classCount).fill(0);
  for (const label of labels) counts[label] = (counts[label] ?? 0) + 1;
  return counts;
}

/**
 * Splits `total` across classes in proportion to their counts, by largest remainder, so the
 * quotas add up to exactly `total` and keep the class balance of the source.
 */
export function proportionalQuotas(counts: readonly number[], total: number): number[] {
  const all = counts.reduce((a, b) => a + b, 0);
  if (all === 0) return counts.map(() => 0);
  const exact = counts.map((n) => (n * total) / all);
  const quotas = exact.map(Math.floor);
  const byRemainder = exact.map((x, c) => ({ c, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.c - b.c);
  let left = total - quotas.reduce((a, b) => a + b, 0);
  for (const { c } of byRemainder) {
    if (left <= 0) break;
    quotas[c]! += 1;
    left--;
  }
  return quotas;
}

/** Copies the chosen images (in the given order) into a new set. */
export function subset(set: ImageSet, indices: ArrayLike<number>, bytesPerImage: number): ImageSet {
  const count = indices.length;
  const images = new Uint8Array(count * bytesPerImage);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const from = indices[i]!;
    images.set(set.images.subarray(from * bytesPerImage, (from + 1) * bytesPerImage), i * bytesPerImage);
    labels[i] = set.labels[from]!;
  }
  return { images, labels, count };
}

/**
 * Picks quotas[c] random images of each class c (seeded) and returns them and the rest, both
 * in their original order so the result does not depend on how the draw was made.
 */
export function splitSet(
  set: ImageSet,
  quotas: readonly number[],
  rng: Random,
  bytesPerImage: number,
): { picked: ImageSet; rest: ImageSet } {
  const chosen = new Uint8Array(set.count);
  quotas.forEach((quota, c) => {
    const members = indicesOfClass(set.labels, c);
    const order = rng.permutation(members.length);
    for (let k = 0; k < Math.min(quota, members.length); k++) chosen[members[order[k]!]!] = 1;
  });
  const picked: number[] = [];
  const rest: number[] = [];
  for (let i = 0; i < set.count; i++) (chosen[i] ? picked : rest).push(i);
  return { picked: subset(set, picked, bytesPerImage), rest: subset(set, rest, bytesPerImage) };
}

/** Picks `count` random images (seeded) spread over the classes in proportion to their sizes. */
export function stratifiedSplit(
  set: ImageSet,
  count: number,
  classCount: number,
  rng: Random,
  bytesPerImage: number,
): { picked: ImageSet; rest: ImageSet } {
  return splitSet(set, proportionalQuotas(classCounts(set.labels, classCount), count), rng, bytesPerImage);
}

function indicesOfClass(labels: Uint8Array, c: number): number[] {
  const out: number[] = [];
  labels.forEach((label, i) => {
    if (label === c) out.push(i);
  });
  return out;
}

/**
 * Per-channel mean and standard deviation of the pixels scaled to [0, 1]. Counted through a
 * 256-bin histogram per channel: exact, and one cheap pass even over CIFAR-sized sets.
 */
export function channelStats(set: ImageSet, channels: number): { mean: number[]; std: number[] } {
  const histogram = new Float64Array(channels * 256);
  const { images } = set;
  for (let p = 0; p < images.length; p += channels) {
    for (let c = 0; c < channels; c++) histogram[c * 256 + images[p + c]!]! += 1;
  }
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    let n = 0;
    let sum = 0;
    let sumSq = 0;
    for (let value = 0; value < 256; value++) {
      const count = histogram[c * 256 + value]!;
      const x = value / 255;
      n += count;
      sum += count * x;
      sumSq += count * x * x;
    }
    const m = n > 0 ? sum / n : 0;
    const sd = Math.sqrt(Math.max(0, (n > 0 ? sumSq / n : 0) - m * m));
    mean.push(m);
    // A constant channel has no spread; 1 keeps (x - mean) / std finite instead of dividing by 0.
    std.push(sd > 0 ? sd : 1);
  }
  return { mean, std };
}

/** Every label must name one of the classes; the first one that does not is reported. */
export function checkLabels(labels: Uint8Array, classCount: number, file: string): void {
  const bad = labels.findIndex((label) => label >= classCount);
  if (bad >= 0)
    fail(file, `label ${labels[bad]} at position ${bad} is outside the ${classCount} classes (0..${classCount - 1})`);
}
