/**
 * Evaluation of a trained run, per exit, on its validation or test split: per-class precision,
 * recall and support, the confusion matrix, top-1 (top-5 from 20 classes), and between every
 * pair of exits the images that depth breaks ("overthinking", Kaya et al. 2019) or fixes.
 * The engine computes it and caches it in the run folder; the CLI prints it with --json; the
 * renderer draws it and asks for the images behind any cell as encoded thumbnails.
 */
import { z } from 'zod';

export const EVALUATION_SPLITS = ['validation', 'test'] as const;
export type EvaluationSplit = (typeof EVALUATION_SPLITS)[number];

const count = z.number().int().nonnegative();
const fraction = z.number().min(0).max(1);
const exitIndex = count;

export const ClassMetricsSchema = z.object({
  /** Class index, as the network's outputs are ordered. */
  class: count,
  name: z.string(),
  /** Of the images predicted as this class, the share that are; 0 when none is predicted as it. */
  precision: fraction,
  /** Of the images of this class, the share predicted as it; 0 when the split has none. */
  recall: fraction,
  /** Images of this class in the split. */
  support: count,
});
export type ClassMetrics = z.infer<typeof ClassMetricsSchema>;

export const ExitEvaluationSchema = z.object({
  index: exitIndex,
  block: z.number().int().positive(),
  final: z.boolean(),
  /** Equals the confusion matrix's diagonal over its total. */
  top1: fraction,
  /** Only for 20 or more classes. */
  top5: fraction.optional(),
  perClass: z.array(ClassMetricsSchema),
  /** confusion[true class][predicted class] = images. */
  confusion: z.array(z.array(count)),
});
export type ExitEvaluation = z.infer<typeof ExitEvaluationSchema>;

export const ExitPairSchema = z.object({
  /** Exit indices, shallow < deep. */
  shallow: exitIndex,
  deep: exitIndex,
  /** Images the shallow exit gets right and the deep one wrong. */
  overthinking: count,
  /** Images the shallow exit gets wrong and the deep one right. */
  rescued: count,
});
export type ExitPair = z.infer<typeof ExitPairSchema>;

export const OverthinkingSchema = z.object({
  /** Every pair of exits, shallow before deep, ordered by shallow then deep. */
  pairs: z.array(ExitPairSchema),
  /**
   * oracle[j]: share of images some exit up to j gets right, the ceiling of any early-exit
   * policy that stops by exit j.
   */
  oracle: z.array(fraction),
});
export type Overthinking = z.infer<typeof OverthinkingSchema>;

export const EvaluationSchema = z.object({
  run: z.string(),
  split: z.enum(EVALUATION_SPLITS),
  /** Training step of the checkpoint evaluated: a cached evaluation of an older one is stale. */
  step: count,
  samples: count,
  classes: z.array(z.string()),
  exits: z.array(ExitEvaluationSchema),
  overthinking: OverthinkingSchema,
});
export type Evaluation = z.infer<typeof EvaluationSchema>;

/** Which images to show: one confusion cell of one exit, or one side of one pair of exits. */
export const ImageSelectionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('confusion'), exit: exitIndex, actual: count, predicted: count }).strict(),
  z.object({ kind: z.enum(['overthinking', 'rescued']), shallow: exitIndex, deep: exitIndex }).strict(),
]);
export type ImageSelection = z.infer<typeof ImageSelectionSchema>;

/** Most thumbnails one call returns; the grid pages through larger cells. */
export const MAX_THUMBNAILS = 200;

export const EvaluatedImageSchema = z.object({
  /** Position in the split. */
  index: count,
  label: count,
  /** A small PNG as a data: URL, never a file path. */
  thumbnail: z.string().startsWith('data:image/png;base64,'),
  /** Every exit's prediction, shallowest first, with its softmax probability. */
  predictions: z.array(z.object({ predicted: count, confidence: fraction })),
});
export type EvaluatedImage = z.infer<typeof EvaluatedImageSchema>;

export const EvaluationImagesSchema = z.object({
  /** Images in the selection; `images` is the page from `offset`. */
  total: count,
  offset: count,
  images: z.array(EvaluatedImageSchema),
});
export type EvaluationImages = z.infer<typeof EvaluationImagesSchema>;
