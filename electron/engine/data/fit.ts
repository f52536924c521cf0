/**
 * Bringing a dataset to a pretrained backbone's input: every image resized to its side and
 * made 3-channel (gray replicated), still as uint8, so memory stays at size * size * 3 bytes
 * an image (150 KB at 224) and the float conversion and normalisation stay per batch
 * (batches.ts). It runs after the limits and the validation hold-out, so only the images a run
 * keeps are enlarged.
 */
import { imageBytes, type DatasetShape, type ImageSet } from './dataset.js';
import { fail } from './files.js';
import { resizeImage } from './resize.js';

/** A backbone's input: square side and channel count. */
export interface BackboneInput {
  size: number;
  channels: 3;
}

/** torchvision's ImageNet normalisation, which its pretrained weights (and timm's defaults) expect. */
export const IMAGENET_NORMALIZATION = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** The shape images take at the backbone's input. */
export function fittedShape(input: BackboneInput): DatasetShape {
  return { height: input.size, width: input.size, channels: input.channels };
}

/** The images of `set` (shape `from`) resized to the input's side and given 3 channels. */
export function fitImageSet(set: ImageSet, from: DatasetShape, input: BackboneInput, source: string): ImageSet {
  if (from.channels !== 1 && from.channels !== 3)
    fail(source, `has ${from.channels}-channel images; a backbone takes gray or RGB images`);
  const to = fittedShape(input);
  const inBytes = imageBytes(from);
  const outBytes = imageBytes(to);
  const images = new Uint8Array(set.count * outBytes);
  for (let i = 0; i < set.count; i++) {
    const resized = resizeImage(set.images.subarray(i * inBytes, (i + 1) * inBytes), from, from.channels, to);
    const out = images.subarray(i * outBytes, (i + 1) * outBytes);
    if (from.channels === 3) out.set(resized);
    else for (let p = 0; p < resized.length; p++) out.fill(resized[p]!, 3 * p, 3 * p + 3);
  }
  return { images, labels: set.labels, count: set.count };
}
