/**
 * The backward pass of max and average pooling, one window tap at a time: for tap (i, j) of a
 * kh x kw window, the pixels it reads at every output position are a strided slice of the
 * padded input, and its share of the gradient goes back to the same pixels (phaseLayout), summed
 * over the taps in row-major order, then the padding cropped.
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
  return { input: [n, h, w, c], window, stride, pad, out };
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

/**
 * Where the taps' shares land, by phase of the stride grid: padded row a = r * s + i (output row
 * r, tap row i) is row r + floor(i / s) of phase i % s, so each share lands whole, shifted, on its
 * phase's grid; the phases interleaved make the padded grid. Every phase's grid is `rows` x
 * `cols`; a pixel sums the shares that reach it in tap order, as the taps one at a time would.
 */
export interface PhaseLayout {
  rows: number;
  cols: number;
  /** By phase row, then phase column: the taps that land there (their index in taps()) and their shift in output rows and columns. */
  phases: { tap: number; shift: [number, number] }[][][];
  /** Zero rows and columns after the interleaved grid, where the input reaches past every window. */
  extra: [number, number];
}

export function phaseLayout(geometry: PoolGeometry): PhaseLayout {
  const {
    input: [, h, w],
    window: [kh, kw],
    stride: s,
    pad,
    out: [ho, wo],
  } = geometry;
  const rows = ho + Math.floor((kh - 1) / s);
  const cols = wo + Math.floor((kw - 1) / s);
  const phases = Array.from({ length: s }, () =>
    Array.from({ length: s }, () => [] as { tap: number; shift: [number, number] }[]),
  );
  taps(geometry).forEach(([i, j], tap) =>
    phases[i % s]![j % s]!.push({ tap, shift: [Math.floor(i / s), Math.floor(j / s)] }),
  );
  return { rows, cols, phases, extra: [Math.max(0, pad + h - rows * s), Math.max(0, pad + w - cols * s)] };
}

/** The taps' shares ([N, Ho, Wo, C] each, in tap order) summed back onto the input's pixels (phaseLayout). */
function gather(geometry: PoolGeometry, shares: tf.Tensor[]): tf.Tensor {
  const { rows, cols, phases, extra } = phaseLayout(geometry);
  const { stride: s, pad } = geometry;
  const [ho, wo] = geometry.out;
  const [n, h, w, c] = geometry.input;
  const grid = (landing: PhaseLayout['phases'][number][number]) => {
    let sum: tf.Tensor | undefined;
    for (const { tap, shift } of landing) {
      const placed = tf.pad(shares[tap]!, [
        [0, 0],
        [shift[0], rows - ho - shift[0]],
        [shift[1], cols - wo - shift[1]],
        [0, 0],
      ]);
      sum = sum ? tf.add(sum, placed) : placed;
    }
    return sum ?? tf.zeros([n, rows, cols, c]);
  };
  // The inverse of phasesOf: each phase row's grids side by side on the channel axis, then the rows.
  const interleaved =
    s === 1
      ? grid(phases[0]![0]!)
      : tf.reshape(
          tf.concat(
            phases.map((phaseRow) => tf.reshape(tf.concat(phaseRow.map(grid), 3), [n * rows, 1, cols, s * c])),
            1,
          ),
          [n, rows * s, cols * s, c],
        );
  const full = tf.pad(interleaved, [
    [0, 0],
    [0, extra[0]],
    [0, extra[1]],
    [0, 0],
  ]);
  return tf.slice(full, [0, pad, pad, 0], [n, h, w, c]);
}

/**
 * x padded (with `fill`) and cut into the stride's phases: phase (qi, qj) holds the padded rows
 * qi, qi + s, ... and columns qj, qj + s, ..., so a tap's pixels are a plain slice of its phase.
 * (tfjs-wasm's strided slice took 240 ms per tap for resnet18's max pool at 224x224, batch 8.)
 */
function phasesOf(geometry: PoolGeometry, x: tf.Tensor, fill: number): tf.Tensor[][] {
  const {
    stride: s,
    pad,
    input: [n, h, w, c],
  } = geometry;
  const { rows, cols } = phaseLayout(geometry);
  const [rx, cx] = [Math.max(rows, Math.ceil((pad + h) / s)), Math.max(cols, Math.ceil((pad + w) / s))];
  const padded = tf.pad(
    x,
    [
      [0, 0],
      [pad, rx * s - pad - h],
      [pad, cx * s - pad - w],
      [0, 0],
    ],
    fill,
  );
  if (s === 1) return [[padded]];
  const split = tf.reshape(padded, [n * rx, s, cx, s * c]);
  const phase = (qi: number, qj: number) =>
    tf.reshape(tf.slice(split, [0, qi, 0, qj * c], [n * rx, 1, cx, c]), [n, rx, cx, c]);
  return Array.from({ length: s }, (_, qi) => Array.from({ length: s }, (_, qj) => phase(qi, qj)));
}

/** Max pooling's input gradient: each window's gradient to its first maximum (padding never is one). */
export function maxPoolGrad(geometry: PoolGeometry, x: tf.Tensor, y: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  const { stride: s, out } = geometry;
  const [n, , , c] = geometry.input;
  const phases = phasesOf(geometry, x, -Infinity);
  let taken: tf.Tensor | undefined;
  const shares = taps(geometry).map(([i, j]) => {
    const under = tf.slice(
      phases[i % s]![j % s]!,
      [0, Math.floor(i / s), Math.floor(j / s), 0],
      [n, out[0], out[1], c],
    );
    const isMax = tf.cast(tf.equal(under, y), 'float32');
    const first = taken ? tf.mul(isMax, tf.sub(1, taken)) : isMax;
    taken = taken ? tf.add(taken, first) : first;
    return tf.mul(dy, first);
  });
  return gather(geometry, shares);
}

/** Average pooling's input gradient: each window's gradient shared by the pixels it averaged. */
export function avgPoolGrad(geometry: PoolGeometry, dy: tf.Tensor): tf.Tensor {
  const share = tf.div(dy, tf.tensor4d(windowCounts(geometry), [1, ...geometry.out, 1]));
  return gather(
    geometry,
    taps(geometry).map(() => share),
  );
}
