/**
 * The wasm backend's convolution kernels (Conv2D and its two gradients) computed by
 * onnxruntime-node's CPU kernels (MLAS) instead of single-threaded XNNPACK.
 *
 * Why: on the portable path the three convolution kernels took 74% of a multi-way training step
 * (scripts/profile-step.ts: Conv2DBackpropFilter 42%, Conv2DBackpropInput 24%, Conv2D 8.5%), and
 * tfjs-wasm runs on one thread under Node (see ../candidates.ts). onnxruntime-node is already a dependency
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
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { computeGeometry, KERNEL_INPUTS, programKey, type ConvGeometry, type ConvKernelName } from './geometry.js';
import {
  filterGradientGraph,
  runShiftedFilterGradient,
  shiftedFilterGradientGraph,
  SHIFTED_MIN_CHANNELS,
} from './filterGradient.js';
import { depthwiseFilterGradientGraph, forwardGraph, inputGradientGraph } from './graphs.js';
import { onnxKernel, type KernelGraph, type ProgramCache } from './program.js';

const GRAPHS: Record<ConvKernelName, (geometry: ConvGeometry, block: number | undefined) => KernelGraph> = {
  Conv2D: forwardGraph,
  Conv2DBackpropInput: inputGradientGraph,
  Conv2DBackpropFilter: filterGradientGraph,
  DepthwiseConv2dNativeBackpropFilter: depthwiseFilterGradientGraph,
};

export const CONVOLUTION_KERNELS = Object.keys(GRAPHS) as ConvKernelName[];

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
