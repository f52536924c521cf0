/**
 * Resizing decoded images to the size a run trains on: separable resampling with a triangle
 * (bilinear) filter whose support widens with the shrink factor, as PIL's antialiased BILINEAR
 * does, so a large photo is averaged down rather than point-sampled into noise. Written here
 * instead of pulling an image library into the data layer: it is the one operation needed.
 */

/** For each output position: the first source index and the normalised weights from there. */
interface Taps {
  first: Int32Array;
  weights: Float64Array[];
}

function taps(sourceSize: number, targetSize: number): Taps {
  const scale = sourceSize / targetSize;
  // Shrinking widens the filter to cover every source pixel; enlarging keeps plain bilinear.
  const support = Math.max(scale, 1);
  const first = new Int32Array(targetSize);
  const weights: Float64Array[] = [];
  for (let t = 0; t < targetSize; t++) {
    const center = (t + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support));
    const hi = Math.min(sourceSize, Math.ceil(center + support));
    const w = new Float64Array(hi - lo);
    let sum = 0;
    for (let s = lo; s < hi; s++) {
      const v = Math.max(0, 1 - Math.abs((s + 0.5 - center) / support));
      w[s - lo] = v;
      sum += v;
    }
    // The window always holds the source pixel under the centre, so sum > 0.
    for (let k = 0; k < w.length; k++) w[k]! /= sum;
    first[t] = lo;
    weights.push(w);
  }
  return { first, weights };
}

/**
 * `pixels` (height x width x channels, uint8) resampled to targetHeight x targetWidth, rounded
 * and clamped back to uint8. The same size returns a copy.
 */
export function resizeImage(
  pixels: Uint8Array,
  size: { width: number; height: number },
  channels: number,
  target: { width: number; height: number },
): Uint8Array {
  const { width, height } = size;
  if (width === target.width && height === target.height) return pixels.slice();
  const across = taps(width, target.width);
  const down = taps(height, target.height);
  // Horizontal pass into floats (height x targetWidth), then vertical into the result.
  const rows = new Float64Array(height * target.width * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < target.width; x++) {
      const w = across.weights[x]!;
      const from = (y * width + across.first[x]!) * channels;
      for (let c = 0; c < channels; c++) {
        let v = 0;
        for (let k = 0; k < w.length; k++) v += w[k]! * pixels[from + k * channels + c]!;
        rows[(y * target.width + x) * channels + c] = v;
      }
    }
  }
  const out = new Uint8Array(target.height * target.width * channels);
  const stride = target.width * channels;
  for (let y = 0; y < target.height; y++) {
    const w = down.weights[y]!;
    const from = down.first[y]! * stride;
    for (let i = 0; i < stride; i++) {
      let v = 0;
      for (let k = 0; k < w.length; k++) v += w[k]! * rows[from + k * stride + i]!;
      out[y * stride + i] = Math.min(255, Math.max(0, Math.round(v)));
    }
  }
  return out;
}
