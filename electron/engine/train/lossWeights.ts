/**
 * Loss weights of method.md [code]: lambda_k = max(0.01, (l_k / l_last)^gamma) for the auxiliary
 * exits, l_last being the layer of the deepest auxiliary exit; the final output weighs 1.
 */
import type { Method } from '../../../shared/spec.js';
import type { ExitPoint } from '../models/index.js';

export function lossWeights(exits: readonly Pick<ExitPoint, 'layer' | 'final'>[], gamma: number): number[] {
  const auxiliary = exits.filter((e) => !e.final);
  const lastLayer = auxiliary.at(-1)?.layer ?? 1;
  return exits.map((e) => (e.final ? 1 : Math.max(0.01, (e.layer / lastLayer) ** gamma)));
}

/** Weight of each exit's loss in the backbone's training: plain BP learns from the final output only. */
export function methodLossWeights(
  method: Method,
  exits: readonly Pick<ExitPoint, 'layer' | 'final'>[],
  gamma: number,
): number[] {
  return method === 'plain' ? exits.map((e) => (e.final ? 1 : 0)) : lossWeights(exits, gamma);
}

/**
 * Learning rate of exit k's optimizer under multi-way BP: lr / sum of the auxiliary weights at
 * and above it (the final exit's optimizer keeps lr).
 */
export function multiWayLearningRates(
  weights: readonly number[],
  exits: readonly Pick<ExitPoint, 'final'>[],
  lr: number,
): number[] {
  return exits.map((exit, k) => {
    if (exit.final) return lr;
    const above = weights.slice(k).filter((_, j) => !exits[k + j]!.final);
    return lr / above.reduce((a, b) => a + b, 0);
  });
}
