/**
 * Images for the renderer: one image of a set as a small PNG data: URL. The renderer never sees
 * a file path (serve mode may face another machine's browser), only these encoded pixels.
 */
import { PNG } from 'pngjs';
import { imageBytes, type DatasetShape, type ImageSet } from './dataset.js';

export function thumbnailDataUrl(set: ImageSet, index: number, shape: DatasetShape): string {
  if (!(index >= 0 && index < set.count))
    throw new RangeError(`image index ${index} is outside the set of ${set.count}`);
  const { width, height, channels } = shape;
  const bytes = imageBytes(shape);
  const pixels = set.images.subarray(index * bytes, (index + 1) * bytes);
  const png = new PNG({ width, height, colorType: channels === 1 ? 0 : 2, inputColorType: 6, inputHasAlpha: true });
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) png.data[4 * p + c] = pixels[p * channels + (channels === 1 ? 0 : c)]!;
    png.data[4 * p + 3] = 255;
  }
  return `data:image/png;base64,${PNG.sync.write(png, { colorType: channels === 1 ? 0 : 2 }).toString('base64')}`;
}
