/**
 * Bringing a dataset to a pretrained backbone's input: every image resized to its side and
 * given its channel count (gray replicated to RGB; RGB made gray by luma for a gray backbone,
 * such as one of the studio's own exports), still as uint8, so memory stays at size * size * 3 bytes
 * an image (150 KB at 224) and the float conversion and normalisation stay per batch
 * (batches.ts). It runs after the limits and the validation hold-out, so only the images a run
 * keeps are enlarged.
 */
import { DatasetError, imageBytes, type DatasetShape, type ImageSet } from './dataset.js';
import { fail } from './files.js';
import { resizeImage } from './resize.js';

/** A backbone's input: square side and channel count (1 or 3). */
export interface BackboneInput {
  size: number;
  channels: number;
}

/** torchvision's ImageNet normalisation, which its pretrained weights (and timm's defaults) expect. */
export const IMAGENET_NORMALIZATION = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** The shape images take at the backbone's input. */
export function fittedShape(input: BackboneInput): DatasetShape {
  return { height: input.size, width: input.size, channels: input.channels };
}

/** The images of `set` (shape `from`) resized to the input's side and given its channels. */
export function fitImageSet(set: ImageSet, from: DatasetShape, input: BackboneInput, source: string): ImageSet {
  if (from.channels !== 1 && from.channels !== 3)
    fail(source, `has ${from.channels}-channel images; a backbone takes gray or RGB images`);
  if (input.channels !== 1 && input.channels !== 3)
    throw new DatasetError(
      `the backbone takes ${input.channels}-channel images; only gray and RGB backbones are supported`,
    );
  const to = fittedShape(input);
  const inBytes = imageBytes(from);
  const outBytes = imageBytes(to);
  const images = new Uint8Array(set.count * outBytes);
  for (let i = 0; i < set.count; i++) {
    const resized = resizeImage(set.images.subarray(i * inBytes, (i + 1) * inBytes), from, from.channels, to);
    const out = images.subarray(i * outBytes, (i + 1) * outBytes);
    if (from.channels === input.channels) out.set(resized);
    else if (input.channels === 3) for (let p = 0; p < resized.length; p++) out.fill(resized[p]!, 3 * p, 3 * p + 3);
    else
      for (let p = 0; p < out.length; p++)
        out[p] = Math.round(0.299 * resized[3 * p]! + 0.587 * resized[3 * p + 1]! + 0.114 * resized[3 * p + 2]!);
  }
  return { images, labels: set.labels, count: set.count };
}
