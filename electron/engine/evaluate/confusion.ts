/**
 * Per-class figures of one exit from its predictions: the confusion matrix and, read off it,
 * precision, recall and support. Pure functions over label arrays, so they are checked against
 * a brute-force count.
 */
import type { ClassMetrics } from '../../../shared/evaluation.js';

/** confusion[actual][predicted] = number of images; rows are the true classes. */
export function confusionMatrix(labels: ArrayLike<number>, predicted: ArrayLike<number>, classes: number): number[][] {
  if (labels.length !== predicted.length)
    throw new RangeError(`${labels.length} labels but ${predicted.length} predictions`);
  const matrix = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const row = matrix[labels[i]!];
    if (!row || predicted[i]! < 0 || predicted[i]! >= classes)
      throw new RangeError(`image ${i}: class ${labels[i]} predicted as ${predicted[i]} is outside 0..${classes - 1}`);
    row[predicted[i]!]! += 1;
  }
  return matrix;
}

/** The diagonal over the total: top-1 accuracy (0 for an empty matrix). */
export function matrixAccuracy(matrix: readonly (readonly number[])[]): number {
  let right = 0;
  let total = 0;
  matrix.forEach((row, c) => row.forEach((n, p) => ((total += n), (right += c === p ? n : 0))));
  return total ? right / total : 0;
}

/** Precision, recall and support of every class; a share with nothing to divide by is 0. */
export function classMetrics(matrix: readonly (readonly number[])[], names: readonly string[]): ClassMetrics[] {
  return matrix.map((row, c) => {
    const support = row.reduce((a, b) => a + b, 0);
    const predictedAs = matrix.reduce((sum, r) => sum + r[c]!, 0);
    const right = row[c]!;
    return {
      class: c,
      name: names[c] ?? String(c),
      precision: predictedAs ? right / predictedAs : 0,
      recall: support ? right / support : 0,
      support,
    };
  });
}
