/**
 * Turns what the user named (the embedded subset or a path) into a Dataset ready for training,
 * with limits, validation hold-out and normalization applied.
 */
import { basename, dirname, join } from 'node:path';
import { backboneInput, normalizationOf, type RunConfig } from '../../../shared/spec.js';
import { Random } from '../random.js';
import { resourcesDir } from '../resources.js';
import { findCifarFolder, isArchiveName, loadCifarArchive, loadCifarFolder } from './cifar.js';
import { imageBytes, type Dataset, type ImageSet, type RawDataset } from './dataset.js';
import { fail, statIfExists } from './files.js';
import { fitImageSet, fittedShape, IMAGENET_NORMALIZATION, type BackboneInput } from './fit.js';
import { loadImageFolder } from './imageFolder.js';
import { findIdxFiles, isIdxFileName, loadIdxFolder } from './idx.js';
import { channelStats, stratifiedSplit } from './sets.js';

/** The `dataset` value that names the Fashion-MNIST subset shipped with the studio. */
export const EMBEDDED_SOURCE = 'embedded';
export const EMBEDDED_NAME = 'Fashion-MNIST (embedded subset)';

/** The embedded subset's folder (written by scripts/make-embedded-dataset.ts). */
export function embeddedDatasetDir(): string {
  return join(resourcesDir(), 'datasets', 'fashion-mnist-subset');
}

export interface LoadOptions {
  /** Keep at most this many training images (before the validation hold-out), class-stratified. */
  limitTrain?: number;
  /** Keep at most this many test images, class-stratified. */
  limitTest?: number;
  /** Share of the (limited) training images held out as validation, class-stratified. */
  validationSplit?: number;
  /** Seeds every random selection; the same seed selects the same images. */
  seed?: number;
  /** Image folders: resize every image to this many pixels square (default: their most common size, capped). */
  imageSize?: number;
  /** A pretrained backbone's input: images brought to its size and 3 channels (fit.ts). */
  input?: BackboneInput;
  /** Normalise with ImageNet's mean and std instead of the training set's. */
  imagenet?: boolean;
}

/**
 * Loads `source`: 'embedded', or a path to an idx folder (or one of its files), a CIFAR-10/100
 * folder or archive, or an image folder. Errors are DatasetErrors naming the file at fault.
 */
export async function loadDataset(source: string, options: LoadOptions = {}): Promise<Dataset> {
  const raw = await loadRaw(source, options.imageSize);
  // One stream per selection, so changing one limit leaves the other selections as they were.
  const streams = new Random(options.seed ?? 0);
  const trainRng = new Random(streams.fork());
  const testRng = new Random(streams.fork());
  const validationRng = new Random(streams.fork());
  const bytesPerImage = imageBytes(raw.shape);
  const classCount = raw.classes.length;

  const limitedTrain = limit(raw.train, options.limitTrain, classCount, trainRng, bytesPerImage);
  const test = limit(raw.test, options.limitTest, classCount, testRng, bytesPerImage);
  const { train, validation } = holdOutValidation(
    limitedTrain,
    options.validationSplit ?? 0,
    classCount,
    validationRng,
    bytesPerImage,
  );
  if (train.count === 0) fail(raw.source, 'leaves no training images after the validation hold-out');
  const fitted = fitToInput({ ...raw, source, train, test, ...(validation ? { validation } : {}) }, options.input);
  return {
    ...fitted,
    normalization: options.imagenet ? IMAGENET_NORMALIZATION : channelStats(fitted.train, fitted.shape.channels),
  };
}

/** The dataset at the backbone's input size and channels; as it is without a backbone or when it already fits. */
function fitToInput(
  dataset: Omit<Dataset, 'normalization'>,
  input: BackboneInput | undefined,
): Omit<Dataset, 'normalization'> {
  const { shape } = dataset;
  if (!input || (shape.height === input.size && shape.width === input.size && shape.channels === input.channels))
    return dataset;
  const fit = (set: ImageSet) => fitImageSet(set, shape, input, dataset.source);
  const to = fittedShape(input);
  const note = `${shape.width}x${shape.height}x${shape.channels} images brought to the backbone's ${to.width}x${to.height}x${to.channels}`;
  return {
    ...dataset,
    shape: to,
    train: fit(dataset.train),
    test: fit(dataset.test),
    ...(dataset.validation ? { validation: fit(dataset.validation) } : {}),
    sizeNote: dataset.sizeNote ? `${dataset.sizeNote}; then ${note}` : note,
  };
}

async function loadRaw(source: string, imageSize: number | undefined): Promise<RawDataset> {
  const raw = await loadFormat(source, imageSize);
  if (imageSize !== undefined && raw.shape.height !== imageSize && !raw.sizeNote) {
    fail(
      source,
      `holds ${raw.name}, whose images are all ${raw.shape.width}x${raw.shape.height}; --image-size applies to image folders only`,
    );
  }
  return raw;
}

async function loadFormat(source: string, imageSize: number | undefined): Promise<RawDataset> {
  if (source === EMBEDDED_SOURCE) {
    return {
      ...(await loadIdxFolder(embeddedDatasetDir(), { name: EMBEDDED_NAME, fashion: true })),
      license: 'MIT, Copyright (c) 2017 Zalando SE',
    };
  }
  const info = await statIfExists(source);
  if (!info) fail(source, 'file not found');
  if (info.isFile()) {
    if (isIdxFileName(source)) return loadIdxFolder(dirname(source));
    if (isArchiveName(source)) return loadCifarArchive(source);
    fail(
      source,
      `is neither an idx file (${basename(source)} is not one of the official names) nor a CIFAR .tar.gz archive`,
    );
  }
  if (await findIdxFiles(source)) return loadIdxFolder(source);
  const cifarDir = await findCifarFolder(source);
  if (cifarDir) return loadCifarFolder(cifarDir);
  return loadImageFolder(source, imageSize === undefined ? {} : { imageSize });
}

/** At most `max` images of `set`, keeping its class balance; the set itself when it is no larger. */
function limit(
  set: ImageSet,
  max: number | undefined,
  classCount: number,
  rng: Random,
  bytesPerImage: number,
): ImageSet {
  if (max === undefined || max >= set.count) return set;
  return stratifiedSplit(set, max, classCount, rng, bytesPerImage).picked;
}

function holdOutValidation(
  set: ImageSet,
  share: number,
  classCount: number,
  rng: Random,
  bytesPerImage: number,
): { train: ImageSet; validation?: ImageSet } {
  if (share <= 0) return { train: set };
  // At least one image: a requested validation set is never silently empty.
  const count = Math.max(1, Math.round(set.count * share));
  const { picked, rest } = stratifiedSplit(set, count, classCount, rng, bytesPerImage);
  return { train: rest, validation: picked };
}

/** The run's dataset as it trained on it; `maxTest` caps the test images (analyses keep a class-balanced subset). */
export function loadRunDataset(config: RunConfig, maxTest = Infinity): Promise<Dataset> {
  const input = backboneInput(config.arch);
  return loadDataset(config.dataset, {
    limitTrain: config.limitTrain,
    limitTest: Math.min(config.limitTest ?? Infinity, maxTest),
    validationSplit: config.validationSplit,
    seed: config.seed,
    ...(config.imageSize !== undefined ? { imageSize: config.imageSize } : {}),
    ...(input ? { input } : {}),
    // A network from scratch learns with the training set's statistics; a pretrained RGB one
    // expects ImageNet's (a gray backbone, such as one of the studio's own exports, keeps the data's).
    imagenet: input?.channels === 3 && normalizationOf(config) === 'backbone',
  });
}

/**
 * The images model selection looks at (per-epoch accuracy, threshold sweeps, lesions): the
 * validation hold-out, so the test set stays unseen until the final table; the test set only
 * for a run that holds out nothing.
 */
export function selectionSet(dataset: Dataset): ImageSet {
  return dataset.validation ?? dataset.test;
}

/** One line: "Fashion-MNIST (embedded subset): 12000 train / 2000 test, 28x28x1, 10 classes". */
export function describeDataset(dataset: Dataset): string {
  const { height, width, channels } = dataset.shape;
  const sizes = [`${dataset.train.count} train`];
  if (dataset.validation) sizes.push(`${dataset.validation.count} validation`);
  sizes.push(`${dataset.test.count} test`);
  return `${dataset.name}: ${sizes.join(' / ')}, ${height}x${width}x${channels}, ${dataset.classes.length} classes`;
}
