/** What the New-run page shows of a dataset before training (shared/preview.ts). */
import type { DatasetPreview } from '../../../shared/preview.js';
import { AUGMENTATION_DRAWS, IMBALANCE_WARNING_RATIO, PREVIEW_PER_CLASS } from '../../../shared/preview.js';
import { Random } from '../random.js';
import { makeBatch } from './batches.js';
import type { Dataset, ImageSet } from './dataset.js';
import { classCounts } from './sets.js';
import { thumbnailDataUrl } from './thumbnails.js';

/** The first `count` images of class `label`, in set order. */
function firstOfClass(set: ImageSet, label: number, count: number): number[] {
  const found: number[] = [];
  for (let i = 0; i < set.count && found.length < count; i++) if (set.labels[i] === label) found.push(i);
  return found;
}

export function imbalanceWarning(names: readonly string[], counts: readonly number[]): string | undefined {
  const largest = counts.indexOf(Math.max(...counts));
  const smallest = counts.indexOf(Math.min(...counts));
  const [most, least] = [counts[largest]!, counts[smallest]!];
  if (most < IMBALANCE_WARNING_RATIO * least) return undefined;
  const ratio = least ? `${(most / least).toFixed(1)}x` : 'many times';
  return `The largest class (${names[largest]}, ${most}) is ${ratio} the smallest (${names[smallest]}, ${least}): accuracy will favour the large classes; check the per-class recall after training`;
}

/**
 * One training image under `draws` augmentation draws, exactly as a training step cuts it
 * (makeBatch), then mapped back from normalised values to pixels for display.
 */
function augmentedThumbnails(dataset: Dataset, index: number, seed: number): string[] {
  const { mean, std } = dataset.normalization;
  const { channels } = dataset.shape;
  const thumbnails: string[] = [];
  const rng = new Random(seed);
  for (let draw = 0; draw < AUGMENTATION_DRAWS; draw++) {
    const { x, labels } = makeBatch(dataset, dataset.train, [index], rng);
    const values = x.dataSync();
    x.dispose();
    labels.dispose();
    const pixels = Uint8Array.from(values, (v, k) =>
      Math.round(Math.min(1, Math.max(0, v * std[k % channels]! + mean[k % channels]!)) * 255),
    );
    thumbnails.push(thumbnailDataUrl({ images: pixels, labels: new Uint8Array(1), count: 1 }, 0, dataset.shape));
  }
  return thumbnails;
}

/** `dataset` must be loaded without a validation hold-out, so the counts are the whole training set. */
export function previewDataset(dataset: Dataset, options: { augment: boolean; seed: number }): DatasetPreview {
  const train = classCounts(dataset.train.labels, dataset.classes.length);
  const test = classCounts(dataset.test.labels, dataset.classes.length);
  const warning = imbalanceWarning(dataset.classes, train);
  const augmented = dataset.train.count ? new Random(options.seed).int(dataset.train.count) : undefined;
  return {
    name: dataset.name,
    shape: dataset.shape,
    ...(dataset.sizeNote ? { sizeNote: dataset.sizeNote } : {}),
    classes: dataset.classes.map((name, c) => ({
      name,
      train: train[c]!,
      test: test[c]!,
      thumbnails: firstOfClass(dataset.train, c, PREVIEW_PER_CLASS).map((i) =>
        thumbnailDataUrl(dataset.train, i, dataset.shape),
      ),
    })),
    ...(warning ? { imbalanceWarning: warning } : {}),
    ...(options.augment && augmented !== undefined
      ? {
          augmentation: {
            original: thumbnailDataUrl(dataset.train, augmented, dataset.shape),
            draws: augmentedThumbnails(dataset, augmented, options.seed),
          },
        }
      : {}),
  };
}
