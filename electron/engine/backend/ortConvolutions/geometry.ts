/**
 * The geometry of one convolution kernel call as tfjs computes it (computeConv2DInfo), and whether
 * an ONNX graph reproduces it: the key a compiled graph is cached under.
 */
import { backend_util } from '@tensorflow/tfjs-core';
import type { NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';

export type Shape4D = [number, number, number, number];
export type Conv2DInfo = backend_util.Conv2DInfo;

/** Where a convolution's geometry comes from: tfjs's own computation, as the stock kernels use. */
export interface ConvGeometry {
  info: Conv2DInfo;
  /** [top, left, bottom, right], ONNX's order. */
  pads: number[];
}

export type ConvKernelName =
  'Conv2D' | 'Conv2DBackpropInput' | 'Conv2DBackpropFilter' | 'DepthwiseConv2dNativeBackpropFilter';

/** The tfjs inputs each kernel reads, in its graph's input order. */
export const KERNEL_INPUTS: Record<ConvKernelName, [string, string]> = {
  Conv2D: ['x', 'filter'],
  Conv2DBackpropInput: ['dy', 'filter'],
  Conv2DBackpropFilter: ['x', 'dy'],
  DepthwiseConv2dNativeBackpropFilter: ['x', 'dy'],
};

function shape4D(value: unknown): Shape4D | undefined {
  if (!Array.isArray(value) || value.length !== 4 || !value.every((d) => Number.isInteger(d) && d > 0))
    return undefined;
  return value as Shape4D;
}

/**
 * The geometry of one call, or undefined where our graphs would not reproduce the stock kernel:
 * NCHW data, dilated gradients, sizes an ONNX convolution would round differently, empty tensors.
 */
export function computeGeometry(
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

export function programKey(kernel: ConvKernelName, { info, pads }: ConvGeometry): string {
  return `${kernel} ${info.inShape} ${info.filterHeight}x${info.filterWidth}x${info.outChannels} s${info.strideHeight},${info.strideWidth} d${info.dilationHeight},${info.dilationWidth} p${pads}`;
}
