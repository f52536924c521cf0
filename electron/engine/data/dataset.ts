/**
 * In-memory image datasets as the loaders produce them: uint8 pixels in NHWC order, one
 * label per image. Kept as plain typed arrays (not tensors) so loading never touches the
 * compute backend and batches are cut, augmented and normalised per step.
 */
export interface ImageSet {
  /** N * height * width * channels bytes, NHWC. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export interface DatasetShape {
  height: number;
  width: number;
  channels: number;
}

export interface Dataset {
  /** Display name: "Fashion-MNIST (embedded subset)", "CIFAR-10", a folder name. */
  name: string;
  /** Where it came from: 'embedded' or the path the user gave. */
  source: string;
  shape: DatasetShape;
  classes: string[];
  train: ImageSet;
  test: ImageSet;
  /** Held out from train when a validation split is asked for. */
  validation?: ImageSet;
  /** Per-channel mean and std of the training pixels scaled to [0, 1]. */
  normalization: { mean: number[]; std: number[] };
  /** Whether a horizontal flip keeps the label meaningful (clothes, objects: yes; digits: no). */
  flipAugment: boolean;
  license?: string;
  /** Set when images were resized to one size: how many, to what, and why. */
  sizeNote?: string;
}

/** Raised for any unreadable or inconsistent dataset input; the message names the file. */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
}

/**
 * What a format loader returns: the images as stored. The loading pipeline (load.ts) then
 * applies limits, holds out validation and measures normalization on the final training set.
 */
export type RawDataset = Omit<Dataset, 'normalization' | 'validation'>;

/** Bytes of one image: height * width * channels. */
export function imageBytes(shape: DatasetShape): number {
  return shape.height * shape.width * shape.channels;
}
