/**
 * The backward pass of max and average pooling, one window tap at a time: for tap (i, j) of a
 * kh x kw window, the pixels it reads at every output position are a strided slice of the
 * padded input, and its share of the gradient goes back to the same pixels (spread by the stride,
 * then padded into place). Summed over the taps in row-major order, then the padding cropped.
 * train/ort/importedLayers.ts writes the same steps as ONNX nodes, in the same order.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface PoolGeometry {
  /** The input's [N, H, W, C]. */
  input: [number, number, number, number];
  window: [number, number];
  stride: number;
  pad: number;
  /** Output height and width (floor rounding). */
  out: [number, number];
  /** Height and width of the input with its padding. */
  padded: [number, number];
}

export function poolGeometry(
  shape: readonly number[],
  window: [number, number],
  stride: number,
  pad: number,
): PoolGeometry {
  const [n, h, w, c] = shape as [number, number, number, number];
  const out: [number, number] = [
    Math.floor((h + 2 * pad - window[0]) / stride) + 1,
    Math.floor((w + 2 * pad - window[1]) / stride) + 1,
  ];
  return { input: [n, h, w, c], window, stride, pad, out, padded: [h + 2 * pad, w + 2 * pad] };
}

/** The window's taps, row-major: where each starts in the padded input. */
export function taps({ window: [kh, kw] }: PoolGeometry): [number, number][] {
  const all: [number, number][] = [];
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) all.push([i, j]);
  return all;
}

/** Rows (or columns) tap `start` reads: from it, one every stride, one per output position. */
export function span({ stride }: PoolGeometry, outputs: number): number {
  return (outputs - 1) * stride + 1;
}

/** How many pixels of the image (padding excluded) each output position averages: [1, Ho, Wo, 1]. */
export function windowCounts(geometry: PoolGeometry): Float32Array {
  const {
    input: [, h, w],
    window: [kh, kw],
    stride,
    pad,
    out: [ho, wo],
  } = geometry;
  const inside = (start: number, size: number, k: number) => Math.min(start + k, size) - Math.max(start, 0);
  const counts = new Float32Array(ho * wo);
  for (let r = 0; r < ho; r++)
    for (let q = 0; q < wo; q++) counts[r * wo + q] = inside(r * stride - pad, h, kh) * inside(q * stride - pad, w, kw);
  return counts;
}

/** [N, Ho, Wo, C] values put back on the padded grid at tap (i, j)'s pixels, zeros elsewhere. */
function place(geometry: PoolGeometry, v: tf.Tensor, [i, j]: [number, number]): tf.Tensor {
  const { stride: s, out, padded } = geometry;
  const [n, ho, wo, c] = v.shape as [number, number, number, number];
  const [rows, cols] = [span(geometry, out[0]), span(geometry, out[1])];
  const spread =
    s === 1
      ? v
      : tf.slice(
          tf.reshape(
            tf.pad(tf.reshape(v, [n, ho, 1, wo, 1, c]), [
              [0, 0],
              [0, 0],
              [0, s - 1],
              [0, 0],
              [0, s - 1],
              [0, 0],
            ]),
            [n, ho * s, wo * s, c],
          ),
          [0, 0, 0, 0],
          [n, rows, cols, c],
        );
  return tf.pad(spread, [
    [0, 0],
    [i, padded[0] - i - rows],
    [j, padded[1] - j - cols],
    [0, 0],
  ]);
}

/** The sum of each tap's share placed back, the padding cropped. */
function gather(geometry: PoolGeometry, share: (tap: [number, number]) => tf.Tensor): tf.Tensor {
  let sum: tf.Tensor | undefined;
  for (const tap of taps(geometry)) {
    const placed = place(geometry, share(tap), tap);
    sum = sum ? tf.add(sum, placed) : placed;
  }
  const [n, h, w, c] = geometry.input;
  return tf.slice(sum!, [0, geometry.pad, geometry.pad, 0], [n, h, w, c]);
}

/** Max pooling's input gradient: each window's gradient to its first maximum (padding never is one). */
export function maxPoolGrad(geometry: PoolGeometry, x: tf.Tensor, y: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  const { pad, stride: s, out } = geometry;
  const [n, , , c] = geometry.input;
  const padded = tf.pad(
    x,
    [
      [0, 0],
      [pad, pad],
      [pad, pad],
      [0, 0],
    ],
    -Infinity,
  );
  let taken: tf.Tensor | undefined;
  return gather(geometry, ([i, j]) => {
    const under = tf.stridedSlice(
      padded,
      [0, i, j, 0],
      [n, i + span(geometry, out[0]), j + span(geometry, out[1]), c],
      [1, s, s, 1],
    );
    const isMax = tf.cast(tf.equal(under, y), 'float32');
    const first = taken ? tf.mul(isMax, tf.sub(1, taken)) : isMax;
    taken = taken ? tf.add(taken, first) : first;
    return tf.mul(dy, first);
  });
}

/** Average pooling's input gradient: each window's gradient shared by the pixels it averaged. */
export function avgPoolGrad(geometry: PoolGeometry, dy: tf.Tensor): tf.Tensor {
  const share = tf.div(dy, tf.tensor4d(windowCounts(geometry), [1, ...geometry.out, 1]));
  return gather(geometry, () => share);
}
