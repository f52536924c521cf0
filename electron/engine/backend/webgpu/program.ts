/**
 * What the engine's own WGSL kernels (convKernels.ts, channelKernels.ts) need from
 * tfjs-backend-webgpu: its program shape and a way to run one. tfjs wraps the code in a shader
 * with the inputs bound by name (`array<vec4<f32>>` where a component count of 4 is given), the
 * output as `result`, and a `uniforms` struct that ends with the program's own uniforms.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';

/** The parts of tfjs-backend-webgpu's WebGPUProgram (webgpu_program.d.ts, not exported by the package) used here. */
export interface Program {
  variableNames: string[];
  variableComponents?: number[];
  outputShape: number[];
  outputComponent?: number;
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms?: string;
  getUserCode: () => string;
}

/** A program as the kernels write it: flatProgram adds the dispatch. */
export type ProgramCode = Omit<Program, 'dispatch' | 'workgroupSize' | 'dispatchLayout'>;

const WORKGROUP = 64;
/** WebGPU's default maxComputeWorkgroupsPerDimension: a flat dispatch must stay under it. */
const MAX_WORKGROUPS = 65535;

/** Whether `invocations` fit one flat dispatch (beyond it a kernel falls back to tfjs's own). */
export function fitsFlatDispatch(invocations: number): boolean {
  return Math.ceil(invocations / WORKGROUP) <= MAX_WORKGROUPS;
}

/**
 * A program of `invocations` invocations, each called as `main(index)` with its flat index
 * (the code returns early past the last one: the uniform `invocations`, declared last).
 */
export function flatProgram(program: ProgramCode, invocations: number): Program {
  return {
    ...program,
    dispatchLayout: { x: program.outputShape.map((_, i) => i) },
    dispatch: [Math.ceil(invocations / WORKGROUP), 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    uniforms: `${program.uniforms ?? ''} invocations : i32,`,
  };
}

/**
 * Sums chunk partials: output vec4 i is the sum over chunks c of partials[c * stride + offset + i]
 * (uniforms chunks, stride, offset, in vec4s): the second pass of a split sum.
 */
export function sumChunksProgram(outputShape: number[]): ProgramCode {
  return {
    variableNames: ['partials'],
    variableComponents: [4],
    outputShape,
    outputComponent: 4,
    shaderKey: 'mwSumChunks',
    uniforms: 'chunks : i32, stride : i32, offset : i32,',
    getUserCode: () => `
    fn main(index : i32) {
      if (index >= uniforms.invocations) { return; }
      var sum = vec4<f32>(0.0);
      for (var c = 0; c < uniforms.chunks; c = c + 1) {
        sum = sum + partials[c * uniforms.stride + uniforms.offset + index];
      }
      result[index] = sum;
    }`,
  };
}

/**
 * Runs a flat program on `inputs`; `uniforms` are the program's own int32 uniforms in declaration
 * order (vec4s first, as WGSL aligns them), `invocations` is appended.
 */
export function runFlat(
  backend: WebGPUBackend,
  program: Program,
  inputs: TensorInfo[],
  uniforms: number[][],
  invocations: number,
): TensorInfo {
  const data = [...uniforms, [invocations]].map((values) => ({ type: 'int32', data: values }));
  return backend.runWebGPUProgram(program as never, inputs, 'float32', data as never);
}

/** Registers `kernelFunc` for `kernelName` on `backendName`, replacing what is there (once). */
export function replaceKernel(
  kernelName: string,
  backendName: string,
  make: (stock: KernelFunc | undefined) => KernelFunc,
): void {
  const current = tf.getKernel(kernelName, backendName);
  if ((current?.kernelFunc as { mw?: boolean } | undefined)?.mw) return;
  const kernelFunc = Object.assign(make(current?.kernelFunc), { mw: true });
  if (current) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({ kernelName, backendName, kernelFunc });
}
