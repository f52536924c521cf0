/**
 * The wasm backend's convolution kernels (Conv2D and its two gradients) computed by
 * onnxruntime-node's CPU kernels (MLAS) instead of single-threaded XNNPACK.
 *
 * Why: on the portable path the three convolution kernels took 74% of a multi-way training step
 * (scripts/profile-step.ts: Conv2DBackpropFilter 42%, Conv2DBackpropInput 24%, Conv2D 8.5%), and
 * tfjs-wasm runs on one thread under Node (see index.ts). onnxruntime-node is already a dependency
 * (model export), installs from npm alone, and its kernels use every core and AVX2/AVX-512.
 *
 * How: each kernel call runs a small ONNX graph (program.ts), built once per shape and cached.
 * Where channel counts are multiples of MLAS's NCHWc block (16 with AVX-512,
 * 8 with AVX2; found by `probeOnnxConvolutions`), the graph uses onnxruntime's blocked-layout operators
 * (domain com.microsoft.nchwc: ReorderInput, Conv, ReorderOutput). onnxruntime's optimizer only
 * produces those for constant weights; ours change every step, so the graph blocks them itself
 * with Reshape/Transpose. Elsewhere the graph is a plain Transpose/Conv/ConvTranspose one.
 *
 * Gradients as convolutions (NHWC x [N,H,W,Cin], filter [kh,kw,Cin,Cout], dy [N,Ho,Wo,Cout];
 * pads from tfjs's computeConv2DInfo, as the stock kernels):
 *   input gradient, stride 1: a convolution of dy with the filter flipped in space and its
 *     channel axes swapped, padded by k-1-pad; other strides: ConvTranspose with output_padding.
 *   filter gradient: per filter tap, a MatMul of dy with x shifted by the tap; at stride 1
 *     the shifted x are views of one padded copy (shiftedFilterGradientGraph), else strided
 *     slices (filterGradientGraph).
 *
 * A call the graphs do not cover (dilated gradients, NCHW data, rounding modes that change the
 * output size, non-float data), and single-channel forward convolutions, which XNNPACK does
 * faster, run the kernel registered before, so nothing is lost.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { intAttribute, intsAttribute, type OnnxAttribute } from '../../onnx/proto.js';
import { GraphBuilder, NCHWC_DOMAIN, OnnxProgram, onnxKernel, type KernelGraph, type ProgramCache } from './program.js';

type Shape4D = [number, number, number, number];
type Conv2DInfo = backend_util.Conv2DInfo;

/** Where a convolution's geometry comes from: tfjs's own computation, as the stock kernels use. */
export interface ConvGeometry {
  info: Conv2DInfo;
  /** [top, left, bottom, right], ONNX's order. */
  pads: number[];
}

/** How a graph lays out a convolution: MLAS's NCHWc blocks of `block` channels, or plain NCHW. */
type ConvLayout = { blocked: true; block: number } | { blocked: false };

/**
 * conv(image, filter) where the image is NHWC and the filter [kh, kw, I, O] (tfjs's layout), the
 * output NHWC. `attributes` are the ONNX Conv's strides/pads/dilations/kernel_shape; the shapes
 * are the image's and the output's (NHWC).
 */
function nhwcConv(
  g: GraphBuilder,
  layout: ConvLayout,
  image: string,
  filter: string,
  filterShape: Shape4D,
  attributes: OnnxAttribute[],
  [n, h, w]: Shape4D,
  [, ho, wo]: Shape4D,
): string {
  const [kh, kw, inChannels, outChannels] = filterShape;
  if (layout.blocked) {
    const b = layout.block;
    // [kh,kw,I,O] -> [O/b, I/b, kh, kw, b(I), b(O)]: MLAS's OIHWBiBo filter order, as a 4-D tensor.
    const split = g.reshape(filter, [kh, kw, inChannels / b, b, outChannels / b, b]);
    const blockedFilter = g.reshape(g.transpose(split, [4, 2, 0, 1, 3, 5]), [outChannels, inChannels, kh, kw]);
    // With exactly one block of channels, NHWC memory already is the blocked layout
    // ([N, 1, H, W, b]): a reshape relabels it, where a reorder would copy the whole tensor.
    const blockedImage =
      inChannels === b
        ? g.reshape(image, [n, b, h, w])
        : g.op('ReorderInput', [image], [intAttribute('channels_last', 1)], NCHWC_DOMAIN);
    const blockedOut = g.op('Conv', [blockedImage, blockedFilter], attributes, NCHWC_DOMAIN);
    if (outChannels === b) return g.reshape(blockedOut, [n, ho, wo, b]);
    return g.op(
      'ReorderOutput',
      [blockedOut],
      [intAttribute('channels_last', 1), intAttribute('channels', outChannels)],
      NCHWC_DOMAIN,
    );
  }
  const out = g.op('Conv', [g.transpose(image, [0, 3, 1, 2]), g.transpose(filter, [3, 2, 0, 1])], attributes);
  return g.transpose(out, [0, 2, 3, 1]);
}

function convAttributes(
  kernel: [number, number],
  strides: [number, number],
  dilations: [number, number],
  pads: number[],
): OnnxAttribute[] {
  return [
    intsAttribute('kernel_shape', kernel),
    intsAttribute('strides', strides),
    intsAttribute('dilations', dilations),
    intsAttribute('pads', pads),
  ];
}

function blockedIf(block: number | undefined, ...channelCounts: number[]): ConvLayout {
  return block !== undefined && channelCounts.every((c) => c % block === 0)
    ? { blocked: true, block }
    : { blocked: false };
}

/** The convolution of NHWC `x` with the [kh, kw, I, O] `filter` into `g`; returns the NHWC output. */
export function emitConvForward(
  g: GraphBuilder,
  { info, pads }: ConvGeometry,
  block: number | undefined,
  x: string,
  filter: string,
): string {
  const filterShape: Shape4D = [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels];
  const layout = blockedIf(block, info.inChannels, info.outChannels);
  const attributes = convAttributes(
    [info.filterHeight, info.filterWidth],
    [info.strideHeight, info.strideWidth],
    [info.dilationHeight, info.dilationWidth],
    pads,
  );
  return nhwcConv(g, layout, x, filter, filterShape, attributes, info.inShape, info.outShape);
}

function forwardGraph(geometry: ConvGeometry, block: number | undefined): KernelGraph {
  const g = new GraphBuilder();
  const { info } = geometry;
  return {
    g,
    inputs: [
      ['x', info.inShape],
      ['filter', [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels]],
    ],
    outputs: [[emitConvForward(g, geometry, block, 'x', 'filter'), info.outShape]],
  };
}

/** The gradient of emitConvForward's output `dy` with respect to its image, NHWC. */
export function emitConvInputGradient(
  g: GraphBuilder,
  { info, pads }: ConvGeometry,
  block: number | undefined,
  dy: string,
  filter: string,
): string {
  const { filterHeight: kh, filterWidth: kw, inChannels, outChannels } = info;
  const [top, left, bottom, right] = pads as [number, number, number, number];
  const stride1 = info.strideHeight === 1 && info.strideWidth === 1;
  const layout = blockedIf(block, inChannels, outChannels);
  let output: string;
  if (stride1 && layout.blocked && Math.max(top, bottom) < kh && Math.max(left, right) < kw) {
    // Flip both spatial axes ([kh, kw] read backwards), then swap I and O.
    const flipped = g.slice(filter, [0, 1], [-1, -1], [-(kh + 1), -(kw + 1)], [-1, -1]);
    const transposed = g.transpose(flipped, [0, 1, 3, 2]);
    const fullPads = [kh - 1 - top, kw - 1 - left, kh - 1 - bottom, kw - 1 - right];
    output = nhwcConv(
      g,
      layout,
      dy,
      transposed,
      [kh, kw, outChannels, inChannels],
      convAttributes([kh, kw], [1, 1], [1, 1], fullPads),
      info.outShape,
      info.inShape,
    );
  } else {
    // ConvTranspose's weight is [C_in of the transpose = Cout, Cin, kh, kw]; output_padding adds
    // the rows/columns the forward stride skipped at the end. It lies in [0, stride): that follows
    // from computeGeometry's check that an ONNX convolution gives tfjs's output size.
    const outputPadding = [
      info.inHeight - ((info.outHeight - 1) * info.strideHeight + kh - top - bottom),
      info.inWidth - ((info.outWidth - 1) * info.strideWidth + kw - left - right),
    ];
    const dxNchw = g.op(
      'ConvTranspose',
      [g.transpose(dy, [0, 3, 1, 2]), g.transpose(filter, [3, 2, 0, 1])],
      [
        ...convAttributes([kh, kw], [info.strideHeight, info.strideWidth], [1, 1], pads),
        intsAttribute('output_padding', outputPadding),
      ],
    );
    output = g.transpose(dxNchw, [0, 2, 3, 1]);
  }
  return output;
}

function inputGradientGraph(geometry: ConvGeometry, block: number | undefined): KernelGraph {
  const g = new GraphBuilder();
  const { info } = geometry;
  return {
    g,
    inputs: [
      ['dy', info.outShape],
      ['filter', [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels]],
    ],
    outputs: [[emitConvInputGradient(g, geometry, block, 'dy', 'filter'), info.inShape]],
  };
}

/**
 * Filter gradient as one product per filter tap: for tap (i, j), dW[i, j] = dy^T [Cout, N*Ho*Wo]
 * x (x shifted by the tap and strided) [N*Ho*Wo, Cin], a MatMul (tapProducts).
 * Why not a convolution (x as [Cin, H, W, N] with dy as an Ho x Wo kernel, as before): MLAS's
 * convolution kernels are built for wide outputs, and this one is only kh x kw wide. At batch 128
 * the taps took 8.5 ms for 28x28x16 -> 16 against 18.7 ms, 0.6 against 8.7 ms for the 1x1 stride-2
 * shortcut, and never slower on the other MwResNet-20 shapes (scripts/bench-onnx-kernels.ts times them now).
 */
export function emitConvFilterGradient(g: GraphBuilder, { info, pads }: ConvGeometry, x: string, dy: string): string {
  const { outHeight: ho, outWidth: wo, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const [top, left, bottom, right] = pads as [number, number, number, number];
  const padded =
    top + left + bottom + right > 0 ? g.op('Pad', [x, g.int64s([0, top, left, 0, 0, bottom, right, 0])]) : x;
  const taps: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++)
      taps.push(g.slice(padded, [1, 2], [i, j], [i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1], [sh, sw]));
  }
  return tapProducts(g, info, ho * wo, dy, taps);
}

function filterGradientGraph(geometry: ConvGeometry): KernelGraph {
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

/**
 * dy^T x tap summed over the batch for each tap (dy holding N * positions rows of Cout values,
 * each tap N * positions rows of Cin), as a [kh, kw, Cin, Cout] filter: a batched MatMul over groups of images, then a sum
 * over the groups.
 */
function tapProducts(g: GraphBuilder, info: Conv2DInfo, positions: number, dy: string, taps: string[]): string {
  const { batchSize, inChannels, outChannels, filterHeight: kh, filterWidth: kw } = info;
  const images = imagesPerProduct(batchSize, positions, outChannels);
  const groups = batchSize / images;
  const rows = images * positions;
  const dyT = g.transpose(g.reshape(dy, [groups, rows, outChannels]), [0, 2, 1]);
  const products = taps.map((tap) => g.op('MatMul', [dyT, g.reshape(tap, [groups, rows, inChannels])]));
  const perGroup = g.reshape(products.length > 1 ? g.op('Concat', products, [intAttribute('axis', 0)]) : products[0]!, [
    kh * kw,
    groups,
    outChannels,
    inChannels,
  ]);
  const summed = g.op('ReduceSum', [perGroup, g.int64s([1])], [intAttribute('keepdims', 0)]);
  return g.reshape(g.transpose(summed, [0, 2, 1]), [kh, kw, inChannels, outChannels]);
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
function shiftedFilterGradientGraph(geometry: ConvGeometry): KernelGraph {
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
const SHIFTED_MIN_CHANNELS = 8;

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
function runShiftedFilterGradient(
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

/**
 * Depthwise filter gradient (channel multiplier 1) as one grouped convolution: per channel c,
 * dW[:, :, c] correlates x's channel c with dy's over every image, so x becomes one image of
 * C * N channels ([1, C*N, Hp, Wp], group c holding channel c of each image) and dy the kernel
 * [C, N, Ho, Wo], dilated by the stride; the output [1, C, kh', kw'] is sliced to kh x kw.
 * 52-69 ms against 142 ms for the composed wasm kernel (128x32x32x32, 3x3, stride 1).
 */
export function emitDepthwiseFilterGradient(
  g: GraphBuilder,
  { info, pads }: ConvGeometry,
  x: string,
  dy: string,
): string {
  const {
    batchSize: n,
    inChannels: c,
    inHeight: h,
    inWidth: w,
    outHeight: ho,
    outWidth: wo,
    filterHeight: kh,
    filterWidth: kw,
  } = info;
  const [top, left, bottom, right] = pads as [number, number, number, number];
  const image = g.op('Pad', [
    g.reshape(g.transpose(x, [3, 0, 1, 2]), [1, c * n, h, w]),
    g.int64s([0, 0, top, left, 0, 0, bottom, right]),
  ]);
  const kernel = g.transpose(dy, [3, 0, 1, 2]);
  let taps = g.op(
    'Conv',
    [image, kernel],
    [
      ...convAttributes([ho, wo], [1, 1], [info.strideHeight, info.strideWidth], [0, 0, 0, 0]),
      intAttribute('group', c),
    ],
  );
  const rows = h + top + bottom - (ho - 1) * info.strideHeight;
  const cols = w + left + right - (wo - 1) * info.strideWidth;
  if (rows > kh || cols > kw) taps = g.slice(taps, [2, 3], [0, 0], [kh, kw]);
  return g.reshape(g.transpose(g.reshape(taps, [c, kh, kw]), [1, 2, 0]), [kh, kw, c, 1]);
}

function depthwiseFilterGradientGraph(geometry: ConvGeometry): KernelGraph {
  const g = new GraphBuilder();
  const { info } = geometry;
  return {
    g,
    inputs: [
      ['x', info.inShape],
      ['dy', info.outShape],
    ],
    outputs: [
      [emitDepthwiseFilterGradient(g, geometry, 'x', 'dy'), [info.filterHeight, info.filterWidth, info.inChannels, 1]],
    ],
  };
}

export type ConvKernelName =
  'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter' | 'DepthwiseConv2dNativeBackpropFilter';

const GRAPHS: Record<ConvKernelName, (geometry: ConvGeometry, block: number | undefined) => KernelGraph> = {
  Conv2D: forwardGraph,
  Conv2DBackpropInput: inputGradientGraph,
  Conv2DBackpropFilter: filterGradientGraph,
  DepthwiseConv2dNativeBackpropFilter: depthwiseFilterGradientGraph,
};

/** The tfjs inputs each kernel reads, in its graph's input order. */
const KERNEL_INPUTS: Record<ConvKernelName, [string, string]> = {
  Conv2D: ['x', 'filter'],
  Conv2DBackpropInput: ['dy', 'filter'],
  Conv2DBackpropFilter: ['x', 'dy'],
  DepthwiseConv2dNativeBackpropFilter: ['x', 'dy'],
};

export const CONVOLUTION_KERNELS = Object.keys(GRAPHS) as ConvKernelName[];

function shape4D(value: unknown): Shape4D | undefined {
  if (!Array.isArray(value) || value.length !== 4 || !value.every((d) => Number.isInteger(d) && d > 0))
    return undefined;
  return value as Shape4D;
}

/**
 * The geometry of one call, or undefined where our graphs would not reproduce the stock kernel:
 * NCHW data, dilated gradients, sizes an ONNX convolution would round differently, empty tensors.
 */
function computeGeometry(
  kernel: ConvKernelName,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap,
): ConvGeometry | undefined {
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') return undefined;
  const [first, second] = KERNEL_INPUTS[kernel].map((name) => inputs[name]);
  if (first === undefined || second === undefined || first.dtype !== 'float32' || second.dtype !== 'float32')
    return undefined;
  const strides = attrs.strides as number | [number, number];
  const dilations = (attrs.dilations ?? 1) as number | [number, number];
  const pad = attrs.pad as backend_util.ExplicitPadding | 'same' | 'valid' | number;
  const rounding = attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined;
  let xShape: Shape4D | undefined;
  let filterShape: Shape4D | undefined;
  if (kernel === 'Conv2D') {
    xShape = shape4D(first.shape);
    filterShape = shape4D(second.shape);
  } else if (kernel === 'Conv2DBackpropInput') {
    xShape = shape4D(attrs.inputShape);
    filterShape = shape4D(second.shape);
  } else {
    xShape = shape4D(first.shape);
    filterShape = shape4D(attrs.filterShape);
  }
  if (xShape === undefined || filterShape === undefined) return undefined;
  const depthwise = kernel === 'DepthwiseConv2dNativeBackpropFilter';
  // Channel multipliers above 1 (never in our networks) keep the composed kernel.
  if (depthwise && filterShape[3] !== 1) return undefined;
  const info = backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    strides,
    dilations,
    pad,
    rounding,
    depthwise,
    'channelsLast',
  );
  if (kernel !== 'Conv2D' && (info.dilationHeight !== 1 || info.dilationWidth !== 1)) return undefined;
  const { top, left, bottom, right } = info.padInfo;
  if (Math.min(top, left, bottom, right) < 0 || info.outHeight <= 0 || info.outWidth <= 0) return undefined;
  const onnxOut = (size: number, before: number, after: number, k: number, dilation: number, stride: number) =>
    Math.floor((size + before + after - ((k - 1) * dilation + 1)) / stride) + 1;
  if (onnxOut(info.inHeight, top, bottom, info.filterHeight, info.dilationHeight, info.strideHeight) !== info.outHeight)
    return undefined;
  if (onnxOut(info.inWidth, left, right, info.filterWidth, info.dilationWidth, info.strideWidth) !== info.outWidth)
    return undefined;
  return { info, pads: [top, left, bottom, right] };
}

function programKey(kernel: ConvKernelName, { info, pads }: ConvGeometry): string {
  return `${kernel} ${info.inShape} ${info.filterHeight}x${info.filterWidth}x${info.outChannels} s${info.strideHeight},${info.strideWidth} d${info.dilationHeight},${info.dilationWidth} p${pads}`;
}

/**
 * The onnxruntime version of `kernel`, compiling into `cache`; `fallback` (the kernel it replaces)
 * runs the calls the graphs do not cover. `block` is MLAS's NCHWc block size, if any.
 */
export function convolutionKernel(
  kernel: ConvKernelName,
  cache: ProgramCache,
  block: number | undefined,
  fallback: KernelFunc,
): KernelFunc {
  return onnxKernel(({ inputs, attrs }) => {
    const geometry = computeGeometry(kernel, inputs as Record<string, TensorInfo>, attrs ?? {});
    if (geometry === undefined) return undefined;
    const { info } = geometry;
    // One input channel (a grayscale image layer): XNNPACK's NHWC convolution took 3.9 ms where
    // onnxruntime's NCHW one took 12.4 (128x32x32x1 -> 16); from 3 channels on onnxruntime is faster.
    if (kernel === 'Conv2D' && info.inChannels === 1) return undefined;
    if (
      kernel === 'Conv2DBackpropFilter' &&
      info.strideHeight === 1 &&
      info.strideWidth === 1 &&
      info.inChannels >= SHIFTED_MIN_CHANNELS
    ) {
      const program = cache.get(`${programKey(kernel, geometry)} shifted`, () => shiftedFilterGradientGraph(geometry));
      return { run: runShiftedFilterGradient(program, geometry, inputs.x!, inputs.dy!) };
    }
    const program = cache.get(programKey(kernel, geometry), () => GRAPHS[kernel](geometry, block));
    return { program, inputs: KERNEL_INPUTS[kernel].map((name) => inputs[name]!) };
  }, fallback);
}

function randomArray(size: number, seed: number): Float32Array {
  return Float32Array.from({ length: size }, (_, i) => Math.sin(seed + i * 12.9898) * 0.5);
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** The probe convolution: 16 -> 16 channels, 3x3, 'same', on deterministic values. */
const PROBE = {
  xShape: [2, 5, 5, 16] as Shape4D,
  filterShape: [3, 3, 16, 16] as Shape4D,
  x: randomArray(2 * 5 * 5 * 16, 1),
  filter: randomArray(9 * 16 * 16, 2),
};

/** The probe convolution through onnxruntime, blocked by `block` or plain. */
function probeConvolution(block: number | undefined, threads: number): Float32Array {
  const info = backend_util.computeConv2DInfo(PROBE.xShape, PROBE.filterShape, 1, 1, 'same');
  const program = new OnnxProgram(forwardGraph({ info, pads: [1, 1, 1, 1] }, block), threads);
  try {
    const out = new Float32Array(info.outShape.reduce((a, b) => a * b, 1));
    program.run([PROBE.x, PROBE.filter], [out]);
    return out;
  } finally {
    program.dispose();
  }
}

/**
 * Checks onnxruntime's plain convolution against the active tfjs backend's on the probe (an Error
 * if they disagree), then finds MLAS's NCHWc block size on this CPU by trying: the blocked graph
 * must reproduce the plain one. The block is undefined when no candidate does (or the blocked
 * operators are missing, as on CPUs without AVX2), and then every graph is a plain one.
 */
export function probeOnnxConvolutions(threads: number): { block: number | undefined } {
  const reference = probeConvolution(undefined, threads);
  const expected = tf.tidy(() => {
    const x = tf.tensor4d(PROBE.x, PROBE.xShape);
    const filter = tf.tensor4d(PROBE.filter, PROBE.filterShape);
    return tf.conv2d(x, filter, 1, 'same').dataSync() as Float32Array;
  });
  const difference = maxDifference(reference, expected);
  if (!(difference < 1e-4))
    throw new Error(
      `onnxruntime's convolution disagrees with the ${tf.getBackend()} backend's (max difference ${difference})`,
    );
  for (const block of [16, 8]) {
    try {
      if (maxDifference(probeConvolution(block, threads), reference) < 1e-4) return { block };
    } catch {
      // The blocked operators are not available here.
    }
  }
  return { block: undefined };
}
