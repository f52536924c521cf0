/**
 * Results of the model-selection analyses of a trained run: the early-exit policy sweep, the
 * lesion study and the supervision shares. The engine computes them; the renderer draws them.
 */
import { z } from 'zod';
import { METHODS } from './spec.js';

const fraction = z.number().min(0).max(1);
const nonNegative = z.number().min(0);

export const EXIT_CRITERIA = ['max-softmax', 'entropy'] as const;
/** max-softmax: leave when the top probability >= t; entropy: leave when entropy / log(classes) <= t. */
export type ExitCriterion = (typeof EXIT_CRITERIA)[number];

/** Largest accuracy drop, as a fraction, still counted as "equal accuracy" to the final exit. */
export const EQUAL_ACCURACY_TOLERANCE = 0.005;

export const EarlyExitPointSchema = z.object({
  threshold: z.number(),
  accuracy: fraction,
  /** Mean multiply-accumulates per image: each image costs the sub-model of the exit it left at. */
  meanMacs: nonNegative,
  /** Mean batch-1 median latency per image, costed the same way. */
  meanLatencyMs: nonNegative,
  /** Share of the images leaving at each exit, shallowest first. */
  exitShares: z.array(fraction),
  /** meanMacs / final exit's MACs. */
  macsRatio: nonNegative,
  /** meanLatencyMs / final exit's latency. */
  latencyRatio: nonNegative,
});
export type EarlyExitPoint = z.infer<typeof EarlyExitPointSchema>;

export const EarlyExitSweepSchema = z.object({
  criterion: z.enum(EXIT_CRITERIA),
  samples: z.number().int().nonnegative(),
  /** Always leaving at the final exit: the reference of every saving. */
  final: z.object({ accuracy: fraction, macs: nonNegative, latencyMs: nonNegative }),
  /** One per threshold, in the order given. */
  points: z.array(EarlyExitPointSchema),
  /** Cheapest point (by mean MACs) within EQUAL_ACCURACY_TOLERANCE of the final accuracy; null if none. */
  equalAccuracy: EarlyExitPointSchema.nullable(),
});
export type EarlyExitSweep = z.infer<typeof EarlyExitSweepSchema>;

export const LesionStudySchema = z.object({
  samples: z.number().int().nonnegative(),
  /** 1-based block of each exit, shallowest first. */
  exitBlocks: z.array(z.number().int().positive()),
  /** Top-1 accuracy of each exit with nothing skipped. */
  baseline: z.array(fraction),
  /** One row per block: each exit's accuracy with that block skipped; null where the block cannot be skipped. */
  blocks: z.array(z.object({ block: z.number().int().positive(), accuracy: z.array(fraction).nullable() })),
});
export type LesionStudy = z.infer<typeof LesionStudySchema>;

export const SupervisionSharesSchema = z.object({
  method: z.enum(METHODS),
  /** Loss weight of each exit under the run's method. */
  weights: z.array(nonNegative),
  exitBlocks: z.array(z.number().int().positive()),
  batchSize: z.number().int().positive(),
  layers: z.array(
    z.object({
      /** "stem", "block 1", ... */
      name: z.string(),
      /** Norm of each exit's weighted-loss gradient w.r.t. the layer's parameters. */
      norms: z.array(nonNegative),
      /** norms / their sum (all 0 where no exit reaches the layer). */
      shares: z.array(fraction),
    }),
  ),
});
export type SupervisionShares = z.infer<typeof SupervisionSharesSchema>;
