/**
 * Early-exit policy: an image leaves at the first exit confident enough about it, else at the
 * final one. The softmax of every exit is computed once; the sweep over thresholds is then a
 * pure function of those probabilities, so it can be checked by brute force.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  EQUAL_ACCURACY_TOLERANCE,
  type EarlyExitPoint,
  type EarlyExitSweep,
  type ExitCriterion,
} from '../../../shared/analysis.js';
import { makeBatch, type Dataset, type ImageSet } from '../data/index.js';
import type { MwNetwork } from '../models/index.js';

export interface ExitProbabilities {
  classes: number;
  labels: ArrayLike<number>;
  /** Per exit, shallowest first: samples x classes softmax probabilities, row-major. */
  probabilities: Float32Array[];
}

/** What leaving at an exit costs per image: its sub-model's MACs and batch-1 median latency. */
export interface ExitLeavingCost {
  macs: number;
  latencyMs: number;
}

export interface EarlyExitOptions {
  criterion: ExitCriterion;
  thresholds?: readonly number[];
  /** One per exit, aligned with net.exits. */
  costs: readonly ExitLeavingCost[];
}

/** 0, 0.02, ..., 1: both criteria's confidences lie in [0, 1]. */
export const DEFAULT_THRESHOLDS: readonly number[] = Array.from({ length: 51 }, (_, i) => i / 50);

/** Every exit's softmax on `set`, in batches whose intermediates are freed as they go. */
export async function exitProbabilities(
  net: MwNetwork,
  dataset: Dataset,
  set: ImageSet,
  batchSize = 256,
): Promise<ExitProbabilities> {
  const classes = net.description.classes;
  const probabilities = net.exits.map(() => new Float32Array(set.count * classes));
  for (let start = 0; start < set.count; start += batchSize) {
    const indices = Array.from({ length: Math.min(batchSize, set.count - start) }, (_, i) => start + i);
    const batch = tf.tidy(() =>
      net.predict(makeBatch(dataset, set, indices, null).x).map((logits) => tf.softmax(logits)),
    );
    const values = await Promise.all(batch.map((p) => p.data() as Promise<Float32Array>));
    tf.dispose(batch);
    values.forEach((v, k) => probabilities[k]!.set(v, start * classes));
  }
  return { classes, labels: set.labels.subarray(0, set.count), probabilities };
}

/** Whether a probability row passes the threshold under the criterion. */
export function isConfident(row: ArrayLike<number>, criterion: ExitCriterion, threshold: number): boolean {
  if (criterion === 'max-softmax') {
    let max = 0;
    for (let c = 0; c < row.length; c++) max = Math.max(max, row[c]!);
    return max >= threshold;
  }
  let entropy = 0;
  for (let c = 0; c < row.length; c++) if (row[c]! > 0) entropy -= row[c]! * Math.log(row[c]!);
  return entropy / Math.log(row.length) <= threshold;
}

function argMax(row: ArrayLike<number>): number {
  let best = 0;
  for (let c = 1; c < row.length; c++) if (row[c]! > row[best]!) best = c;
  return best;
}

/** Accuracy, mean cost and exit shares of the policy at each threshold. */
export function sweepThresholds(
  data: ExitProbabilities,
  criterion: ExitCriterion,
  thresholds: readonly number[],
  costs: readonly ExitLeavingCost[],
): EarlyExitSweep {
  const { classes, labels, probabilities } = data;
  const exits = probabilities.length;
  if (costs.length !== exits) throw new Error(`${costs.length} exit costs for ${exits} exits`);
  const samples = labels.length;
  const rows = probabilities.map((p) =>
    Array.from({ length: samples }, (_, i) => p.subarray(i * classes, (i + 1) * classes)),
  );
  const correct = rows.map((exitRows) => exitRows.map((row, i) => argMax(row) === labels[i]));
  const finalCost = costs[exits - 1]!;
  const mean = (total: number) => (samples ? total / samples : 0);
  const finalAccuracy = mean(correct[exits - 1]!.filter(Boolean).length);

  const points = thresholds.map((threshold): EarlyExitPoint => {
    const leaving = new Array<number>(exits).fill(0);
    let right = 0;
    for (let i = 0; i < samples; i++) {
      let exit = 0;
      while (exit < exits - 1 && !isConfident(rows[exit]![i]!, criterion, threshold)) exit++;
      leaving[exit]!++;
      if (correct[exit]![i]) right++;
    }
    const meanMacs = mean(leaving.reduce((sum, n, k) => sum + n * costs[k]!.macs, 0));
    const meanLatencyMs = mean(leaving.reduce((sum, n, k) => sum + n * costs[k]!.latencyMs, 0));
    return {
      threshold,
      accuracy: mean(right),
      meanMacs,
      meanLatencyMs,
      exitShares: leaving.map(mean),
      macsRatio: finalCost.macs ? meanMacs / finalCost.macs : 1,
      latencyRatio: finalCost.latencyMs ? meanLatencyMs / finalCost.latencyMs : 1,
    };
  });
  const equal = points.filter((p) => p.accuracy >= finalAccuracy - EQUAL_ACCURACY_TOLERANCE);
  const equalAccuracy = equal.reduce<EarlyExitPoint | null>(
    (best, p) => (!best || p.meanMacs < best.meanMacs ? p : best),
    null,
  );
  return {
    criterion,
    samples,
    final: { accuracy: finalAccuracy, macs: finalCost.macs, latencyMs: finalCost.latencyMs },
    points,
    equalAccuracy,
  };
}

export async function earlyExitSweep(
  net: MwNetwork,
  dataset: Dataset,
  set: ImageSet,
  options: EarlyExitOptions,
): Promise<EarlyExitSweep> {
  const data = await exitProbabilities(net, dataset, set);
  return sweepThresholds(data, options.criterion, options.thresholds ?? DEFAULT_THRESHOLDS, options.costs);
}
