/**
 * WGSL convolutions for tfjs's webgpu backend: its filter gradient (Conv2DBackpropFilter) and,
 * on software adapters, its forward convolution (Conv2D) are replaced.
 *
 * Why: tfjs-backend-webgpu 4.22 computes a filter gradient with one invocation per filter value,
 * each looping over every pixel of the batch with per-value index arithmetic: 2304 invocations
 * for a 3x3x16x16 filter, a few dozen workgroups, far too little parallelism for a GPU, and on
 * SwiftShader it ran at 0.07 GFLOP/s, half of a multi-way ResNet-8 step
 * (`npx tsx scripts/profile-step.ts multiway 32 webgpu 8`).
 *
 * How: the sum over pixels is split into chunks (split-K). Each invocation takes one filter tap,
 * four input channels and four output channels (a 4x4 block of the gradient, 16 multiply-adds per
 * two vec4 loads) over one chunk of pixels, and writes its partial sums; a second pass adds the
 * chunks. No workgroup memory and no barriers, so it also runs well on software adapters.
 * Tensors are NHWC, filters [height, width, in, out]. Shapes the kernels do not take (output
 * channels not a multiple of 4, NCHW, dilation) go to the stock kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import {
  fitsFlatDispatch,
  flatProgram,
  replaceKernel,
  runFlat,
  sumChunksProgram,
  type ProgramCode,
} from './program.js';

/** Pixels one invocation sums: enough work per invocation, enough invocations for a GPU. */
const PIXELS_PER_CHUNK = 256;

/**
 * Partial filter gradients, [chunks, kh * kw * in * out] as vec4s over output channels. `inBlock`
 * input channels per invocation: 4 (loaded as one vec4) when the input channels allow, else 1.
 */
function partialFilterGradProgram(chunks: number, filterSize: number, inBlock: 1 | 4): ProgramCode {
  const xAt = 'x[((n * uniforms.geometry.x + xr) * uniforms.geometry.y + xc) * uniforms.work.x + cib]';
  const accumulate =
    inBlock === 4
      ? `let xv = ${xAt};
            a0 = a0 + xv.x * dv; a1 = a1 + xv.y * dv; a2 = a2 + xv.z * dv; a3 = a3 + xv.w * dv;`
      : `a0 = a0 + ${xAt} * dv;`;
  const stores = Array.from(
    { length: inBlock },
    (_, j) => `result[((chunk * taps + tap) * inChannels + cib * ${inBlock} + ${j}) * uniforms.work.y + cob] = a${j};`,
  ).join('\n      ');
  return {
    variableNames: ['x', 'dy'],
    variableComponents: [inBlock, 4],
    outputShape: [chunks, filterSize],
    outputComponent: 4,
    shaderKey: `mwConv2DFilterGradPartial_${inBlock}`,
    // geometry: in height, in width, out height, out width; conv: stride, pad top, pad left, filter
    // width; work: input channel blocks, output channel vec4s, pixels per chunk, pixels (batch * out
    // height * out width).
    uniforms: 'geometry : vec4<i32>, conv : vec4<i32>, work : vec4<i32>, taps : i32,',
    getUserCode: () => `
    fn main(index : i32) {
      if (index >= uniforms.invocations) { return; }
      let taps = uniforms.taps;
      let inChannels = uniforms.work.x * ${inBlock};
      let cob = index % uniforms.work.y;
      var rest = index / uniforms.work.y;
      let cib = rest % uniforms.work.x;
      rest = rest / uniforms.work.x;
      let tap = rest % taps;
      let chunk = rest / taps;
      let kh = tap / uniforms.conv.w;
      let kw = tap % uniforms.conv.w;
      let outPixels = uniforms.geometry.z * uniforms.geometry.w;
      let first = chunk * uniforms.work.z;
      let last = min(first + uniforms.work.z, uniforms.work.w);
      var a0 = vec4<f32>(0.0);
      var a1 = vec4<f32>(0.0);
      var a2 = vec4<f32>(0.0);
      var a3 = vec4<f32>(0.0);
      var n = first / outPixels;
      let q = first % outPixels;
      var yr = q / uniforms.geometry.w;
      var yc = q % uniforms.geometry.w;
      for (var p = first; p < last; p = p + 1) {
        let xr = yr * uniforms.conv.x - uniforms.conv.y + kh;
        let xc = yc * uniforms.conv.x - uniforms.conv.z + kw;
        if (xr >= 0 && xr < uniforms.geometry.x && xc >= 0 && xc < uniforms.geometry.y) {
          let dv = dy[p * uniforms.work.y + cob];
          ${accumulate}
        }
        yc = yc + 1;
        if (yc == uniforms.geometry.w) {
          yc = 0;
          yr = yr + 1;
          if (yr == uniforms.geometry.z) { yr = 0; n = n + 1; }
        }
      }
      ${stores}
    }`,
  };
}

/**
 * A direct convolution (Conv2D): one invocation per output pixel and four output channels (a
 * vec4), summing over taps and input channels, `inBlock` of them per load (4 as a vec4, else 1).
 */
function directConvProgram(outputShape: number[], inBlock: 1 | 4): ProgramCode {
  const multiplyAdd =
    inBlock === 4
      ? `let w0 = (wBase + cib * 4) * uniforms.work.y + cob;
            acc = acc + xv.x * w[w0] + xv.y * w[w0 + uniforms.work.y]
                + xv.z * w[w0 + 2 * uniforms.work.y] + xv.w * w[w0 + 3 * uniforms.work.y];`
      : `acc = acc + xv * w[(wBase + cib) * uniforms.work.y + cob];`;
  return {
    variableNames: ['x', 'w'],
    variableComponents: [inBlock, 4],
    outputShape,
    outputComponent: 4,
    shaderKey: `mwDirectConv_${inBlock}`,
    // geometry: in height, in width, out height, out width; conv: stride, pad top, pad left,
    // filter height; work: input-channel blocks, output vec4s per pixel.
    uniforms: 'geometry : vec4<i32>, conv : vec4<i32>, work : vec2<i32>, filterWidth : i32,',
    getUserCode: () => `
    fn main(index : i32) {
      if (index >= uniforms.invocations) { return; }
      let cob = index % uniforms.work.y;
      let p = index / uniforms.work.y;
      let outPixels = uniforms.geometry.z * uniforms.geometry.w;
      let n = p / outPixels;
      let q = p % outPixels;
      let yr = q / uniforms.geometry.w;
      let yc = q % uniforms.geometry.w;
      var acc = vec4<f32>(0.0);
      for (var kh = 0; kh < uniforms.conv.w; kh = kh + 1) {
        let xr = yr * uniforms.conv.x - uniforms.conv.y + kh;
        if (xr < 0 || xr >= uniforms.geometry.x) { continue; }
        for (var kw = 0; kw < uniforms.filterWidth; kw = kw + 1) {
          let xc = yc * uniforms.conv.x - uniforms.conv.z + kw;
          if (xc < 0 || xc >= uniforms.geometry.y) { continue; }
          let xBase = ((n * uniforms.geometry.x + xr) * uniforms.geometry.y + xc) * uniforms.work.x;
          let wBase = (kh * uniforms.filterWidth + kw) * uniforms.work.x * ${inBlock};
          for (var cib = 0; cib < uniforms.work.x; cib = cib + 1) {
            let xv = x[xBase + cib];
            ${multiplyAdd}
          }
        }
      }
      result[index] = acc;
    }`,
  };
}

type ConvAttrs = {
  strides: [number, number] | number;
  pad: tf.backend_util.ExplicitPadding | 'same' | 'valid' | number;
  dataFormat: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

type Shape4 = [number, number, number, number];

function convInfo(xShape: Shape4, filterShape: Shape4, attrs: ConvAttrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape,
    filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/** Whether the kernels here take a convolution: NHWC float32, equal strides, no dilation, a flat dispatch. */
function takes(info: tf.backend_util.Conv2DInfo, attrs: ConvAttrs, dtype: string, invocations: number): boolean {
  const dilated = attrs.dilations !== undefined && [attrs.dilations].flat().some((d) => d !== 1);
  return (
    attrs.dataFormat === 'NHWC' &&
    !dilated &&
    info.strideHeight === info.strideWidth &&
    info.outChannels % 4 === 0 &&
    dtype === 'float32' &&
    fitsFlatDispatch(invocations)
  );
}

/** Conv2DBackpropFilter on webgpu: the split-K kernel where it applies, else `stock`. */
function filterGradKernel(stock: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as WebGPUBackend;
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs & { filterShape: Shape4 };
    const info = convInfo(x.shape as Shape4, attrs.filterShape, attrs);
    const [kh, kw, inChannels, outChannels] = attrs.filterShape;
    const pixels = info.batchSize * info.outHeight * info.outWidth;
    const chunks = Math.ceil(pixels / PIXELS_PER_CHUNK);
    const inBlock = inChannels % 4 === 0 ? 4 : 1;
    const filterSize = kh * kw * inChannels * outChannels;
    const invocations = (chunks * kh * kw * (inChannels / inBlock) * outChannels) / 4;
    if (!takes(info, attrs, x.dtype, invocations)) return stock(args);
    const partials = runFlat(
      backend,
      flatProgram(partialFilterGradProgram(chunks, filterSize, inBlock), invocations),
      [x, dy],
      [
        [info.inHeight, info.inWidth, info.outHeight, info.outWidth],
        [info.strideHeight, info.padInfo.top, info.padInfo.left, kw],
        [inChannels / inBlock, outChannels / 4, PIXELS_PER_CHUNK, pixels],
        [kh * kw],
      ],
      invocations,
    );
    const summed = runFlat(
      backend,
      flatProgram(sumChunksProgram(attrs.filterShape), filterSize / 4),
      [partials],
      [[chunks], [filterSize / 4], [0]],
      filterSize / 4,
    );
    backend.disposeData(partials.dataId);
    return summed;
  };
}

/** Conv2D on webgpu: the direct kernel where it applies, else `stock`. */
function convKernel(stock: KernelFunc): KernelFunc {
  return (args) => {
    const backend = args.backend as WebGPUBackend;
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs;
    const info = convInfo(x.shape as Shape4, filter.shape as Shape4, attrs);
    const inBlock = info.inChannels % 4 === 0 ? 4 : 1;
    const invocations = (info.batchSize * info.outHeight * info.outWidth * info.outChannels) / 4;
    if (!takes(info, attrs, x.dtype, invocations)) return stock(args);
    return runFlat(
      backend,
      flatProgram(directConvProgram(info.outShape, inBlock), invocations),
      [x, filter],
      [
        [info.inHeight, info.inWidth, info.outHeight, info.outWidth],
        [info.strideHeight, info.padInfo.top, info.padInfo.left, info.filterHeight],
        [info.inChannels / inBlock, info.outChannels / 4],
        [info.filterWidth],
      ],
      invocations,
    );
  };
}

/**
 * Replaces the webgpu backend's filter gradient, and on a software adapter its forward
 * convolution too; the stock kernels stay the fallback. The direct forward kernel ran 5-10x
 * faster than tfjs's tiled one on SwiftShader (40x for the one-channel stem), where workgroup
 * barriers are expensive; on a GPU tfjs's tiled matrix product is the tuned choice.
 */
export function registerWebGpuConvKernels(backendName: string, software: boolean): void {
  replaceKernel('Conv2DBackpropFilter', backendName, (stock) => filterGradKernel(stock!));
  if (software) replaceKernel('Conv2D', backendName, (stock) => convKernel(stock!));
}
