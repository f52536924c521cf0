/**
 * A dataset as the New-run page previews it before any training: classes and their counts (with
 * a warning when they are far apart), image size and channels, a few thumbnails per class, and
 * one training image under several draws of the run's augmentation.
 */
import { z } from 'zod';

/** Largest / smallest class count from which the preview warns about imbalance. */
export const IMBALANCE_WARNING_RATIO = 5;
/** Thumbnails shown per class, and augmentation draws of the one augmented image. */
export const PREVIEW_PER_CLASS = 4;
export const AUGMENTATION_DRAWS = 8;

const thumbnail = z.string().startsWith('data:image/png;base64,');
const count = z.number().int().nonnegative();

export const DatasetPreviewRequestSchema = z
  .object({
    /** 'embedded' or a path, as the run config names it. */
    dataset: z.string().min(1, 'dataset is required').max(4096),
    imageSize: z.number().int().min(4).max(512).optional(),
    augment: z.boolean().default(true),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(0),
  })
  .strict();

export const DatasetPreviewSchema = z.object({
  name: z.string(),
  shape: z.object({
    height: z.number().int().positive(),
    width: z.number().int().positive(),
    channels: z.number().int().positive(),
  }),
  /** Set when images were resized to one size: how many, to what, and why. */
  sizeNote: z.string().optional(),
  /** Per class, in output order: images in the training set (before the validation hold-out) and the test set, and a few thumbnails. */
  classes: z.array(z.object({ name: z.string(), train: count, test: count, thumbnails: z.array(thumbnail) })),
  /** "The largest class (Bag, 1200) is 6.0x the smallest (Coat, 200)" when at least IMBALANCE_WARNING_RATIO apart. */
  imbalanceWarning: z.string().optional(),
  /** One training image as stored, then under each augmentation draw (absent when augmentation is off). */
  augmentation: z.object({ original: thumbnail, draws: z.array(thumbnail) }).optional(),
});
export type DatasetPreview = z.infer<typeof DatasetPreviewSchema>;
