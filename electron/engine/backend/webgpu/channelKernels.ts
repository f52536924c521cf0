/**
 * The fused kernels of ../wasm/channelKernels.ts (batch norm's and ReLU's element-wise steps and
 * per-channel sums) in WGSL, for tfjs's webgpu backend under the same kernel names, so
 * ../channelOps.ts takes them as it takes the wasm ones.
 *
 * Why: composed from tfjs ops, one batch norm took about twenty dispatches forward and a dozen
 * backward (tiles, broadcasts, per-channel sums through tfjs's reduction), 1500 dispatches in a
 * multi-way ResNet-8 step; each costs milliseconds on SwiftShader. Each kernel here is one
 * dispatch (the sums two), reading its inputs once, four values (one vec4) per invocation.
 */
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { FUSED_KERNELS } from '../wasm/channelKernels.js';
import { flatProgram, replaceKernel, runFlat, sumChunksProgram } from './program.js';

/** Rows (pixels) of channels one invocation of the per-channel sums adds. */
const ROWS_PER_CHUNK = 256;

/**
 * An element-wise kernel: full-size inputs `values` and per-channel vectors `channels` (read at
 * the invocation's channel vec4, `ch`), `expression` giving the output vec4 at invocation `i`.
 */
interface ElementWise {
  kernelName: string;
  values: string[];
  channels: string[];
  expression: string;
}

const ELEMENT_WISE: ElementWise[] = [
  {
    kernelName: FUSED_KERNELS.channelAffine,
    values: ['x'],
    channels: ['a', 'b'],
    expression: 'x[i] * a[ch] + b[ch]',
  },
  {
    kernelName: FUSED_KERNELS.channelAffine2,
    values: ['x', 'y'],
    channels: ['a', 'b', 'c'],
    expression: 'x[i] * a[ch] + y[i] * b[ch] + c[ch]',
  },
  {
    kernelName: FUSED_KERNELS.reluGrad,
    values: ['dy', 'y'],
    channels: [],
    expression: 'select(vec4<f32>(0.0), dy[i], y[i] > vec4<f32>(0.0))',
  },
];

function elementWiseKernel(kernel: ElementWise): KernelFunc {
  const names = [...kernel.values, ...kernel.channels];
  return ({ inputs, backend }) => {
    const named = inputs as Record<string, TensorInfo>;
    const operands = names.map((name) => named[name]!);
    const shape = operands[0]!.shape;
    const vec4s = shape.reduce((a, b) => a * b, 1) / 4;
    // Without per-channel vectors `ch` is unused: any positive count does.
    const channelVec4s = kernel.channels.length > 0 ? shape[shape.length - 1]! / 4 : 1;
    const program = flatProgram(
      {
        variableNames: names,
        variableComponents: names.map(() => 4),
        outputShape: shape,
        outputComponent: 4,
        shaderKey: `mw${kernel.kernelName}`,
        uniforms: 'channelVec4s : i32,',
        getUserCode: () => `
    fn main(i : i32) {
      if (i >= uniforms.invocations) { return; }
      let ch = i % uniforms.channelVec4s;
      result[i] = ${kernel.expression};
    }`,
      },
      vec4s,
    );
    return runFlat(backend as WebGPUBackend, program, operands, [[channelVec4s]], vec4s);
  };
}

/** MwChannelSums: [C] sums of x and of x * y over every axis but the last (C a multiple of 4). */
const channelSumsKernel: KernelFunc = ({ inputs, backend }) => {
  const webgpu = backend as WebGPUBackend;
  const { x, y } = inputs as Record<string, TensorInfo>;
  const channels = x!.shape[x!.shape.length - 1]!;
  const channelVec4s = channels / 4;
  const rows = x!.shape.reduce((a, b) => a * b, 1) / channels;
  const chunks = Math.ceil(rows / ROWS_PER_CHUNK);
  const partials = runFlat(
    webgpu,
    flatProgram(
      {
        variableNames: ['x', 'y'],
        variableComponents: [4, 4],
        outputShape: [chunks, 2 * channels],
        outputComponent: 4,
        shaderKey: 'mwChannelSumsPartial',
        uniforms: 'channelVec4s : i32, rows : i32, rowsPerChunk : i32,',
        // Partials [chunk][sum of x | sum of x * y][channel vec4].
        getUserCode: () => `
    fn main(index : i32) {
      if (index >= uniforms.invocations) { return; }
      let ch = index % uniforms.channelVec4s;
      let chunk = index / uniforms.channelVec4s;
      let first = chunk * uniforms.rowsPerChunk;
      let last = min(first + uniforms.rowsPerChunk, uniforms.rows);
      var sumX = vec4<f32>(0.0);
      var sumXY = vec4<f32>(0.0);
      for (var r = first; r < last; r = r + 1) {
        let xv = x[r * uniforms.channelVec4s + ch];
        sumX = sumX + xv;
        sumXY = sumXY + xv * y[r * uniforms.channelVec4s + ch];
      }
      result[(chunk * 2) * uniforms.channelVec4s + ch] = sumX;
      result[(chunk * 2 + 1) * uniforms.channelVec4s + ch] = sumXY;
    }`,
      },
      chunks * channelVec4s,
    ),
    [x!, y!],
    [[channelVec4s], [rows], [ROWS_PER_CHUNK]],
    chunks * channelVec4s,
  );
  const sums = [0, channelVec4s].map((offset) =>
    runFlat(
      webgpu,
      flatProgram(sumChunksProgram([channels]), channelVec4s),
      [partials],
      [[chunks], [2 * channelVec4s], [offset]],
      channelVec4s,
    ),
  );
  webgpu.disposeData(partials.dataId);
  return sums;
};

/** Registers the fused kernels on the webgpu backend. */
export function registerWebGpuChannelKernels(backendName: string): void {
  for (const kernel of ELEMENT_WISE) replaceKernel(kernel.kernelName, backendName, () => elementWiseKernel(kernel));
  replaceKernel(FUSED_KERNELS.channelSums, backendName, () => channelSumsKernel);
}
