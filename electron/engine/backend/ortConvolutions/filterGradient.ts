/**
 * The filter gradient of a convolution as one MatMul per filter tap: through strided slices of x
 * (filterGradientGraph), or at stride 1 through views of one padded copy of x on the wasm heap
 * (shiftedFilterGradientGraph, run by runShiftedFilterGradient).
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { intAttribute } from '../../onnx/proto.js';
import type { Conv2DInfo, ConvGeometry, Shape4D } from './geometry.js';
import { GraphBuilder, type KernelGraph, type OnnxProgram } from './program.js';

/**
 * Filter gradient as one product per filter tap: for tap (i, j), dW[i, j] = (x shifted by the tap
 * and strided)^T [Cin, N*Ho*Wo] x dy [N*Ho*Wo, Cout], a MatMul (tapProducts).
 * Why not a convolution (x as [Cin, H, W, N] with dy as an Ho x Wo kernel, as before): MLAS's
 * convolution kernels are built for wide outputs, and this one is only kh x kw wide. At batch 128
 * the taps took 8.5 ms for 28x28x16 -> 16 against 18.7 ms, 0.6 against 8.7 ms for the 1x1 stride-2
 * shortcut, and never slower on the other MwResNet-20 shapes (scripts/bench-onnx-kernels.ts times them now).
 */
export function emitConvFilterGradient(
  g: GraphBuilder,
  geometry: ConvGeometry,
  x: string,
  dy: string,
  stack = 1,
): string {
  return emitTapProducts(g, geometry, emitFilterTaps(g, geometry, x), dy, stack);
}

/** x's side of a filter gradient: the taps, each [N, positions, Cin], and dy's row pitch if it needs one. */
export interface FilterTaps {
  taps: string[];
  positions: number;
  /** Stride 1: dy is read on x's padded row pitch (rowPitchTaps). */
  pitch?: number;
  /** The stride-1 convolution the taps were cut for, where it is not x's own (spaceToDepthTaps). */
  grid?: Conv2DInfo;
}

/**
 * The taps of x for emitTapProducts. A graph that trains emits them with x's forward, apart from
 * dy's side: onnxruntime orders nodes by a depth-first walk from the outputs that visits a node's
 * later-emitted inputs first, so taps emitted after dy would be computed before dy's whole
 * subtree and held through it (and so for every layer below: MwResNet-20's plain step held
 * 278 MiB at once).
 */
export function emitFilterTaps(g: GraphBuilder, geometry: ConvGeometry, x: string): FilterTaps {
  const { info, pads } = geometry;
  const { outHeight: ho, outWidth: wo, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  if (sh === 1 && sw === 1) return rowPitchTaps(g, geometry, x);
  if (
    sh === 2 &&
    sw === 2 &&
    info.inChannels < FEW_CHANNELS &&
    Math.ceil(kh / 2) * Math.ceil(kw / 2) > 1 &&
    !dilated(info)
  )
    return spaceToDepthTaps(g, geometry, x);
  const [top, left, bottom, right] = pads as [number, number, number, number];
  const padded =
    top + left + bottom + right > 0 ? g.op('Pad', [x, g.int64s([0, top, left, 0, 0, bottom, right, 0])]) : x;
  const taps: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++)
      taps.push(g.slice(padded, [1, 2], [i, j], [i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1], [sh, sw]));
  }
  return { taps, positions: ho * wo };
}

/**
 * Stride-1 taps (shiftedFilterGradientGraph's idea without heap views): x padded, with one zero
 * row more at the bottom, and flattened per image, so that x shifted by tap (i, j) is one run of
 * it from i * Wp + j on, copied in N blocks where a strided slice copies Cin values at a time. dy
 * gets the same row pitch (zero columns after its Wo), and the products run over Ho x Wp
 * positions instead of Ho x Wo (840 against 784 at 28x28). A 1x1 filter without padding takes x
 * as it is.
 */
function rowPitchTaps(g: GraphBuilder, { info, pads }: ConvGeometry, x: string): FilterTaps {
  const { batchSize: n, inHeight: h, inWidth: w, outHeight: ho, outWidth: wo, inChannels } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  const [top, left, bottom, right] = pads as [number, number, number, number];
  if (kh * kw === 1 && top + left + bottom + right === 0) return { taps: [x], positions: ho * wo };
  const pitch = w + left + right;
  const rows = h + top + bottom + 1;
  const flat = g.reshape(g.op('Pad', [x, g.int64s([0, top, left, 0, 0, bottom + 1, right, 0])]), [
    n,
    rows * pitch,
    inChannels,
  ]);
  const positions = ho * pitch;
  const taps: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) taps.push(g.slice(flat, [1], [i * pitch + j], [i * pitch + j + positions]));
  }
  return { taps, positions, ...(pitch > wo ? { pitch } : {}) };
}

/** The filter gradient from x's taps and dy (of `stack` stacked batches: tapProducts). */
export function emitTapProducts(
  g: GraphBuilder,
  { info }: ConvGeometry,
  { taps, positions, pitch, grid }: FilterTaps,
  dy: string,
  stack = 1,
): string {
  const dyOnPitch = pitch ? g.op('Pad', [dy, g.int64s([0, 0, 0, 0, 0, 0, pitch - info.outWidth, 0])]) : dy;
  const filters = tapProducts(g, grid ?? info, positions, dyOnPitch, taps, stack, info.inChannels < FEW_CHANNELS);
  return grid ? filterFromSpaceToDepth(g, info, grid, filters, stack) : filters;
}

function dilated(info: Conv2DInfo): boolean {
  return info.dilationHeight !== 1 || info.dilationWidth !== 1;
}

/**
 * Taps of a stride-2 convolution over few channels (an RGB stem) as a stride-1 one: x padded to
 * an even grid and folded 2x2 into channels (space to depth: [N, H/2, W/2, 4C], channels ordered
 * row phase, column phase, channel), where tap (2a + p, 2b + q) of the original filter is tap
 * (a, b) on phase (p, q). A kh x kw filter becomes ceil(kh/2) x ceil(kw/2) row-pitch taps of
 * whole runs (rowPitchTaps), where strided slices copied C values at a time, and the products
 * take them side by side. resnet18's 7x7 stem at 224 (batch 16, plain): its step's operators
 * 1247 -> 1163 ms (Slice 181 -> 116, Concat 52 -> 38).
 */
function spaceToDepthTaps(g: GraphBuilder, { info, pads }: ConvGeometry, x: string): FilterTaps {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, filterHeight: kh, filterWidth: kw } = info;
  const [top, left, bottom, right] = pads as [number, number, number, number];
  const rows = Math.ceil((h + top + bottom) / 2);
  const cols = Math.ceil((w + left + right) / 2);
  const padded = g.op('Pad', [x, g.int64s([0, top, left, 0, 0, 2 * rows - h - top, 2 * cols - w - left, 0])]);
  const folded = g.reshape(g.transpose(g.reshape(padded, [n, rows, 2, cols, 2, c]), [0, 1, 3, 2, 4, 5]), [
    n,
    rows,
    cols,
    4 * c,
  ]);
  // The stride-1 convolution over the folded grid, already padded, cut to the original output.
  const grid: Conv2DInfo = {
    ...info,
    inHeight: rows,
    inWidth: cols,
    inChannels: 4 * c,
    inShape: [n, rows, cols, 4 * c],
    filterHeight: Math.ceil(kh / 2),
    filterWidth: Math.ceil(kw / 2),
    strideHeight: 1,
    strideWidth: 1,
  };
  return { ...rowPitchTaps(g, { info: grid, pads: [0, 0, 0, 0] }, folded), grid };
}

/** The [kh, kw, C, Cout] filter gradient from spaceToDepthTaps' [kh', kw', 4C, Cout] (phases unfolded, the taps past kh x kw dropped). */
function filterFromSpaceToDepth(
  g: GraphBuilder,
  info: Conv2DInfo,
  grid: Conv2DInfo,
  filters: string,
  stack: number,
): string {
  const { filterHeight: kh, filterWidth: kw, inChannels: c, outChannels } = info;
  const { filterHeight: a, filterWidth: b } = grid;
  const phases = g.reshape(filters, [stack, a, b, 2, 2, c, outChannels]);
  const unfolded = g.reshape(g.transpose(phases, [0, 1, 3, 2, 4, 5, 6]), [stack, 2 * a, 2 * b, c, outChannels]);
  const cut = 2 * a === kh && 2 * b === kw ? unfolded : g.slice(unfolded, [1, 2], [0, 0], [kh, kw]);
  return g.reshape(cut, stack === 1 ? [kh, kw, c, outChannels] : [stack, kh, kw, c, outChannels]);
}

export function filterGradientGraph(geometry: ConvGeometry): KernelGraph {
  const g = new GraphBuilder();
  const { info } = geometry;
  return {
    g,
    inputs: [
      ['x', info.inShape],
      ['dy', info.outShape],
    ],
    outputs: [
      [
        emitConvFilterGradient(g, geometry, 'x', 'dy'),
        [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels],
      ],
    ],
  };
}

/**
 * Images per product in tapProducts: the fewest (a divisor of the batch) whose positions number
 * at least Cout, so each group's [Cout, Cin] product is no larger than its share of the input.
 * One product per image parallelises best (MLAS splits a batched MatMul by batch entry; one
 * product over the whole batch took 12-13 ms against 8.0-8.5 for 28x28x16 -> 16), but for
 * MobileNet's wide layers at 2x2 per-image products made a 512 MB intermediate (1024 x 1024 x
 * 128 images) and 2.8 s of a 5.5 s step.
 */
function imagesPerProduct(batch: number, positions: number, outChannels: number): number {
  let images = Math.min(batch, Math.ceil(outChannels / positions));
  while (batch % images !== 0) images++;
  return images;
}

/** Input channels under which tapProducts multiplies all taps at once. */
const FEW_CHANNELS = 8;

/**
 * tap^T x dy summed over the batch for each tap (dy holding N * positions rows of Cout values,
 * each tap N * positions rows of Cin), as a [kh, kw, Cin, Cout] filter: a batched MatMul over
 * groups of images, then a sum over the groups. `stack` gradients of the same x may come stacked
 * on dy's batch axis (one per exit, train/ort/step.ts): each product broadcasts the tap over
 * them, and the result is [stack, kh, kw, Cin, Cout]. `sideBySide`: the taps are of an image of
 * few channels (perhaps folded into more by spaceToDepthTaps).
 */
function tapProducts(
  g: GraphBuilder,
  info: Conv2DInfo,
  positions: number,
  dy: string,
  taps: string[],
  stack = 1,
  sideBySide = info.inChannels < FEW_CHANNELS,
): string {
  const { batchSize, inChannels, outChannels, filterHeight: kh, filterWidth: kw } = info;
  const filterShape = [kh, kw, inChannels, outChannels];
  const stackedShape = stack === 1 ? filterShape : [stack, ...filterShape];
  const images = imagesPerProduct(batchSize, positions, outChannels);
  const groups = batchSize / images;
  const rows = images * positions;
  const dyRows = g.reshape(dy, [stack, groups, rows, outChannels]);
  const taps3d = taps.map((tap) => g.reshape(tap, [groups, rows, inChannels]));
  if (sideBySide && taps.length > 1) {
    // Few input channels (an RGB or grey stem, or one folded by spaceToDepthTaps): the taps side
    // by side, one product of Cout rows against kh * kw * Cin columns, where a product per tap
    // would be nearly a matrix-vector one (12 rows per tap took 72 ms at 224 against 32).
    // Transposing only the last two axes lets onnxruntime fold it into the product (FusedMatMul's transA).
    const dyT = g.transpose(dyRows, [0, 1, 3, 2]);
    const columns = g.op('Concat', taps3d, [intAttribute('axis', 2)]);
    const summed = g.op('ReduceSum', [g.op('MatMul', [dyT, columns]), g.int64s([1])], [intAttribute('keepdims', 0)]);
    const filters = g.transpose(g.reshape(summed, [stack, outChannels, kh, kw, inChannels]), [0, 2, 3, 4, 1]);
    return g.reshape(filters, stackedShape);
  }
  // tap^T dy: [Cin, Cout] per tap as the filter stores it, where dy^T tap needed a transpose of
  // every filter gradient afterwards (7-12 ms for each of resnet18's 512x512 3x3 filters; its
  // plain step at 64x64, batch 16, 337 -> 260 ms, MwResNet-20 287 -> 279 ms).
  const products = taps3d.map((tap) => g.op('MatMul', [g.transpose(tap, [0, 2, 1]), dyRows]));
  const perGroup = g.reshape(products.length > 1 ? g.op('Concat', products, [intAttribute('axis', 0)]) : products[0]!, [
    kh * kw,
    stack,
    groups,
    inChannels,
    outChannels,
  ]);
  const summed = g.op('ReduceSum', [perGroup, g.int64s([2])], [intAttribute('keepdims', 0)]);
  return g.reshape(stack === 1 ? summed : g.transpose(summed, [1, 0, 2, 3]), stackedShape);
}

/** The padded grid of a stride-1 filter gradient: rows and columns of x with its padding. */
function paddedGrid({ info, pads }: ConvGeometry): { height: number; width: number } {
  const [top, left, bottom, right] = pads as [number, number, number, number];
  return { height: info.inHeight + top + bottom, width: info.inWidth + left + right };
}

/**
 * Stride-1 filter gradient without copying the taps. x is laid out once on its padded grid
 * (Hp x Wp, one zero image appended) and dy on the same row pitch (zeros after its Ho x Wo);
 * then x shifted by tap (i, j) is that same buffer read from position i * Wp + j on, so each
 * tap is a graph input viewing the wasm heap. The products run over Hp x Wp positions instead of
 * Ho x Wo (900 against 784 at 28x28), but the nine strided copies are gone: onnxruntime spent
 * 8.8 of the slicing graph's 16 ms in them. At batch 128, 28x28x16 -> 16 took 8.0-8.5 ms against
 * 10.6-14.1 ms, 14x14x32 6.0-6.7 against 7.0-8.4; 7x7x64 is even (scripts/bench-onnx-kernels.ts).
 */
export function shiftedFilterGradientGraph(geometry: ConvGeometry): KernelGraph {
  const { info } = geometry;
  const { height, width } = paddedGrid(geometry);
  const g = new GraphBuilder();
  const positions = height * width;
  const taps: [string, number[]][] = [];
  for (let i = 0; i < info.filterHeight; i++) {
    for (let j = 0; j < info.filterWidth; j++) taps.push([`x${i}_${j}`, [info.batchSize * positions, info.inChannels]]);
  }
  const output = tapProducts(
    g,
    info,
    positions,
    'dy',
    taps.map(([name]) => name),
  );
  return {
    g,
    inputs: [['dy', [info.batchSize * positions, info.outChannels]], ...taps],
    outputs: [[output, [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels]]],
  };
}

/**
 * Below this many input channels the row-by-row layout on the grid costs more than the copies it
 * saves (the one-channel stem: 1.8-2.0 ms shifted against 1.3-1.5 ms sliced).
 */
export const SHIFTED_MIN_CHANNELS = 8;

/** Copies NHWC `source` [n, h, w, c] into `target` [n', h', w', c] at row `top`, column `left`, zeros elsewhere. */
function placeOnGrid(
  source: Float32Array,
  [n, h, w, c]: Shape4D,
  target: Float32Array,
  [targetH, targetW]: [number, number],
  top: number,
  left: number,
): void {
  target.fill(0);
  const row = w * c;
  for (let image = 0; image < n; image++) {
    for (let y = 0; y < h; y++) {
      const from = (image * h + y) * row;
      target.set(source.subarray(from, from + row), ((image * targetH + top + y) * targetW + left) * c);
    }
  }
}

/** Runs the shifted-taps program: lays x and dy out on the padded grid, then views the taps. */
export function runShiftedFilterGradient(
  program: OnnxProgram,
  geometry: ConvGeometry,
  x: TensorInfo,
  dy: TensorInfo,
): (backend: BackendWasm) => TensorInfo {
  return (backend) => {
    const { info, pads } = geometry;
    const { height, width } = paddedGrid(geometry);
    const positions = height * width;
    const gridX = backend.makeOutput([info.batchSize + 1, height, width, info.inChannels], 'float32');
    const gridDy = backend.makeOutput([info.batchSize, height, width, info.outChannels], 'float32');
    const output = backend.makeOutput(
      [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels],
      'float32',
    );
    try {
      // Views only after every allocation: growing the wasm heap detaches earlier ones.
      const heap = (t: TensorInfo) => backend.typedArrayFromHeap(t) as Float32Array;
      const xGrid = heap(gridX);
      placeOnGrid(heap(x), info.inShape, xGrid, [height, width], pads[0]!, pads[1]!);
      placeOnGrid(heap(dy), info.outShape, heap(gridDy), [height, width], 0, 0);
      const taps: Float32Array[] = [];
      for (let i = 0; i < info.filterHeight; i++) {
        for (let j = 0; j < info.filterWidth; j++) {
          const start = (i * width + j) * info.inChannels;
          taps.push(xGrid.subarray(start, start + info.batchSize * positions * info.inChannels));
        }
      }
      program.run([heap(gridDy), ...taps], [heap(output)]);
    } finally {
      backend.disposeData(gridX.dataId);
      backend.disposeData(gridDy.dataId);
    }
    return output;
  };
}
