/**
 * The ONNX graphs of the convolution kernels that are convolutions themselves: the forward
 * convolution, the input gradient and the depthwise filter gradient (filterGradient.ts has the
 * ordinary filter gradient, a product per tap).
 */
import { intAttribute, intsAttribute, type OnnxAttribute } from '../../onnx/proto.js';
import type { ConvGeometry, Shape4D } from './geometry.js';
import { GraphBuilder, NCHWC_DOMAIN, type KernelGraph } from './program.js';

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
    return blockedConv(g, b, image, blockedFilter, attributes, [n, h, w, inChannels], [n, ho, wo, outChannels]);
  }
  const out = g.op('Conv', [g.transpose(image, [0, 3, 1, 2]), g.transpose(filter, [3, 2, 0, 1])], attributes);
  return g.transpose(out, [0, 2, 3, 1]);
}

/** An NCHWc convolution of NHWC `image` with a filter already in MLAS's blocked order; NHWC out. */
function blockedConv(
  g: GraphBuilder,
  b: number,
  image: string,
  blockedFilter: string,
  attributes: OnnxAttribute[],
  [n, h, w, inChannels]: Shape4D,
  [, ho, wo, outChannels]: Shape4D,
): string {
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

/**
 * A depthwise convolution in MLAS's NCHWc kernels where the channels fill whole blocks: the
 * [kh, kw, C, 1] filter as [C/b, kh, kw, b] (MLAS's OIHWBo order for depthwise filters). The
 * grouped NCHW convolution it replaces ran a small product per channel and image, between two
 * layout transposes (a 2x2x512 depthwise layer at batch 128 took 4 ms).
 */
function blockedDepthwise(
  g: GraphBuilder,
  b: number,
  image: string,
  filter: string,
  [kh, kw]: [number, number],
  attributes: OnnxAttribute[],
  inShape: Shape4D,
  outShape: Shape4D,
): string {
  const c = inShape[3];
  const blockedFilter = g.reshape(g.transpose(g.reshape(filter, [kh, kw, c / b, b]), [2, 0, 1, 3]), [c, 1, kh, kw]);
  return blockedConv(g, b, image, blockedFilter, attributes, inShape, outShape);
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

export function forwardGraph(geometry: ConvGeometry, block: number | undefined): KernelGraph {
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
  // A strided one stays a ConvTranspose: through the stride's grid it took as long (MwResNet-20 plain
  // 297 against 298 ms, multi-way 535 against 524, MwResNet-56 plain 990 against 1042).
  if (stride1 && layout.blocked && Math.max(top, bottom) < kh && Math.max(left, right) < kw) {
    // Swap I and O, then flip both spatial axes ([kh, kw] read backwards). The flip between the swap
    // and nhwcConv's blocked re-layout keeps onnxruntime from merging the two transposes into one
    // that moves single floats: 16 ms against 5 for a 512x512 3x3 filter, and resnet18's plain step
    // at 64x64 (batch 16) 300 -> 258 ms.
    const transposed = flipSpatially(g, g.transpose(filter, [0, 1, 3, 2]), [kh, kw]);
    const spread = spreadForInputGradient(g, { info, pads }, dy);
    output = nhwcConv(
      g,
      layout,
      spread.value,
      transposed,
      [kh, kw, outChannels, inChannels],
      convAttributes([kh, kw], [1, 1], [1, 1], spread.pads),
      spread.shape,
      info.inShape,
    );
  } else {
    // ConvTranspose's weight is [C_in of the transpose = Cout, Cin, kh, kw].
    const dxNchw = g.op(
      'ConvTranspose',
      [g.transpose(dy, [0, 3, 1, 2]), g.transpose(filter, [3, 2, 0, 1])],
      [...convAttributes([kh, kw], [info.strideHeight, info.strideWidth], [1, 1], pads), outputPadding({ info, pads })],
    );
    output = g.transpose(dxNchw, [0, 2, 3, 1]);
  }
  return output;
}

/** A [kh, kw, ...] filter read backwards along both spatial axes. */
function flipSpatially(g: GraphBuilder, filter: string, [kh, kw]: [number, number]): string {
  return g.slice(filter, [0, 1], [-1, -1], [-(kh + 1), -(kw + 1)], [-1, -1]);
}

/**
 * A ConvTranspose's output_padding for a convolution's image gradient: the rows and columns the
 * forward stride skipped at the end. It lies in [0, stride): that follows from computeGeometry's
 * check that an ONNX convolution gives tfjs's output size.
 */
function outputPadding({ info, pads }: ConvGeometry): OnnxAttribute {
  const [top, left, bottom, right] = pads as [number, number, number, number];
  return intsAttribute('output_padding', [
    info.inHeight - ((info.outHeight - 1) * info.strideHeight + info.filterHeight - top - bottom),
    info.inWidth - ((info.outWidth - 1) * info.strideWidth + info.filterWidth - left - right),
  ]);
}

/**
 * dy of a convolution made ready for its image's gradient as a stride-1 convolution with the
 * flipped filter: spread to the stride's grid (zeros between) and cut where the stride skipped the
 * image's last rows, with that convolution's pads (k-1-pad before, up to the image's size after).
 */
function spreadForInputGradient(
  g: GraphBuilder,
  { info, pads }: ConvGeometry,
  dy: string,
): { value: string; shape: Shape4D; pads: number[] } {
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const [n, ho, wo, c] = info.outShape;
  const [top, left] = pads as [number, number, number, number];
  const spread =
    sh === 1 && sw === 1
      ? dy
      : g.reshape(
          g.op('Pad', [g.reshape(dy, [n, ho, 1, wo, 1, c]), g.int64s([0, 0, 0, 0, 0, 0, 0, 0, sh - 1, 0, sw - 1, 0])]),
          [n, ho * sh, wo * sw, c],
        );
  const after = [info.inHeight - ho * sh + top, info.inWidth - wo * sw + left] as const;
  const rows = ho * sh + Math.min(0, after[0]);
  const cols = wo * sw + Math.min(0, after[1]);
  const value = rows < ho * sh || cols < wo * sw ? g.slice(spread, [1, 2], [0, 0], [rows, cols]) : spread;
  return {
    value,
    shape: [n, rows, cols, c],
    pads: [kh - 1 - top, kw - 1 - left, Math.max(0, after[0]), Math.max(0, after[1])],
  };
}

/** [kh, kw, C, 1] (tfjs's depthwise filter) -> ONNX's grouped filter [C, 1, kh, kw]. */
function groupedFilter(g: GraphBuilder, filter: string): string {
  return g.transpose(filter, [2, 3, 0, 1]);
}

function depthwiseAttributes({ info, pads }: ConvGeometry): OnnxAttribute[] {
  return [
    ...convAttributes([info.filterHeight, info.filterWidth], [info.strideHeight, info.strideWidth], [1, 1], pads),
    intAttribute('group', info.inChannels),
  ];
}

/**
 * The depthwise convolution (channel multiplier 1) of NHWC `x` with the [kh, kw, C, 1] `filter`:
 * in NCHWc blocks of `block` channels where C fills them (blockedDepthwise), else as a grouped one.
 */
export function emitDepthwiseForward(
  g: GraphBuilder,
  geometry: ConvGeometry,
  block: number | undefined,
  x: string,
  filter: string,
): string {
  const { info } = geometry;
  const layout = blockedIf(block, info.inChannels);
  if (layout.blocked) {
    const kernel: [number, number] = [info.filterHeight, info.filterWidth];
    return blockedDepthwise(
      g,
      layout.block,
      x,
      filter,
      kernel,
      depthwiseAttributes(geometry),
      info.inShape,
      info.outShape,
    );
  }
  const y = g.op('Conv', [g.transpose(x, [0, 3, 1, 2]), groupedFilter(g, filter)], depthwiseAttributes(geometry));
  return g.transpose(y, [0, 2, 3, 1]);
}

/** The gradient of emitDepthwiseForward's output `dy` with respect to its image, NHWC. */
export function emitDepthwiseInputGradient(
  g: GraphBuilder,
  geometry: ConvGeometry,
  block: number | undefined,
  dy: string,
  filter: string,
): string {
  const { info } = geometry;
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const layout = blockedIf(block, info.inChannels);
  if (layout.blocked || (sh === 1 && sw === 1)) {
    // dy through the same depthwise convolution with the filter flipped in space (spread to the
    // stride's grid first where strided: only the NCHWc kernels take that path).
    const flipped = flipSpatially(g, filter, [kh, kw]);
    const spread = spreadForInputGradient(g, geometry, dy);
    const attributes = [
      ...convAttributes([kh, kw], [1, 1], [1, 1], spread.pads),
      intAttribute('group', info.inChannels),
    ];
    if (layout.blocked)
      return blockedDepthwise(g, layout.block, spread.value, flipped, [kh, kw], attributes, spread.shape, info.inShape);
    const dx = g.op('Conv', [g.transpose(spread.value, [0, 3, 1, 2]), groupedFilter(g, flipped)], attributes);
    return g.transpose(dx, [0, 2, 3, 1]);
  }
  const dx = g.op(
    'ConvTranspose',
    [g.transpose(dy, [0, 3, 1, 2]), groupedFilter(g, filter)],
    [...depthwiseAttributes(geometry), outputPadding(geometry)],
  );
  return g.transpose(dx, [0, 2, 3, 1]);
}

export function inputGradientGraph(geometry: ConvGeometry, block: number | undefined): KernelGraph {
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
 * Depthwise filter gradient (channel multiplier 1) as one grouped convolution: per channel c,
 * dW[:, :, c] correlates x's channel c with dy's over every image, so x becomes one image of
 * C * N channels ([1, C*N, Hp, Wp], group c holding channel c of each image) and dy the kernel
 * [C, N, Ho, Wo], dilated by the stride; the output [1, C, kh', kw'] is sliced to kh x kw.
 * 52-69 ms against 142 ms for the composed wasm kernel (128x32x32x32, 3x3, stride 1).
 * `stack` gradients of the same x may come stacked on dy's batch axis (one per exit,
 * train/ort/step.ts): each group then has `stack` kernels ([C * stack, N, Ho, Wo]), and the
 * gradients come as [stack, kh, kw, C, 1].
 */
export function emitDepthwiseFilterGradient(
  g: GraphBuilder,
  geometry: ConvGeometry,
  image: string,
  dy: string,
  stack = 1,
): string {
  const { info } = geometry;
  const { batchSize: n, inChannels: c, outHeight: ho, outWidth: wo, filterHeight: kh, filterWidth: kw } = info;
  const [top, left, bottom, right] = geometry.pads as [number, number, number, number];
  const kernel =
    stack === 1
      ? g.transpose(dy, [3, 0, 1, 2])
      : g.reshape(g.transpose(g.reshape(dy, [stack, n, ho, wo, c]), [4, 0, 1, 2, 3]), [c * stack, n, ho, wo]);
  let taps = g.op(
    'Conv',
    [image, kernel],
    [
      ...convAttributes([ho, wo], [1, 1], [info.strideHeight, info.strideWidth], [0, 0, 0, 0]),
      intAttribute('group', c),
    ],
  );
  const rows = info.inHeight + top + bottom - (ho - 1) * info.strideHeight;
  const cols = info.inWidth + left + right - (wo - 1) * info.strideWidth;
  if (rows > kh || cols > kw) taps = g.slice(taps, [2, 3], [0, 0], [kh, kw]);
  if (stack === 1) return g.reshape(g.transpose(g.reshape(taps, [c, kh, kw]), [1, 2, 0]), [kh, kw, c, 1]);
  return g.reshape(g.transpose(g.reshape(taps, [c, stack, kh, kw]), [1, 2, 3, 0]), [stack, kh, kw, c, 1]);
}

/** x as emitDepthwiseFilterGradient's one image (emitted with x's forward: see emitFilterTaps). */
export function emitDepthwiseFilterImage(g: GraphBuilder, { info, pads }: ConvGeometry, x: string): string {
  const { batchSize: n, inChannels: c, inHeight: h, inWidth: w } = info;
  const [top, left, bottom, right] = pads as [number, number, number, number];
  return g.op('Pad', [
    g.reshape(g.transpose(x, [3, 0, 1, 2]), [1, c * n, h, w]),
    g.int64s([0, 0, top, left, 0, 0, bottom, right]),
  ]);
}

export function depthwiseFilterGradientGraph(geometry: ConvGeometry): KernelGraph {
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
        emitDepthwiseFilterGradient(g, geometry, emitDepthwiseFilterImage(g, geometry, 'x'), 'dy'),
        [info.filterHeight, info.filterWidth, info.inChannels, 1],
      ],
    ],
  };
}
