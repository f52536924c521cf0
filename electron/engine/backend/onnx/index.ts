/**
 * The wasm-ort compute path: the wasm backend with its convolutions run by onnxruntime-node
 * (convolutions.ts on program.ts). Switching it on replaces kernel registrations of
 * tfjs's 'wasm' backend; switching it off puts the previous ones back.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { CONVOLUTION_KERNELS, PROBE, type ConvKernelName, convolutionKernel, maxDifference, probeConvolution, probeNchwcBlock } from './convolutions.js';
import { ProgramCache } from './program.js';

export { onnxKernelCalls } from './program.js';

export interface OnnxKernelsInfo {
  threads: number;
  /** MLAS's NCHWc block size, or undefined where the blocked operators are unavailable. */
  block: number | undefined;
}

interface Active extends OnnxKernelsInfo {
  cache: ProgramCache;
  /** The kernels replaced, as they were registered before. */
  replaced: KernelConfig[];
}

let active: Active | undefined;

/**
 * Routes the wasm backend's convolutions through onnxruntime. Checks first that a
 * plain onnxruntime convolution matches the wasm backend's own on a probe (an Error if not, and
 * nothing is changed). Idempotent.
 */
export function enableOnnxKernels(): OnnxKernelsInfo {
  if (active !== undefined) return { threads: active.threads, block: active.block };
  const threads = os.availableParallelism();
  const reference = probeConvolution(undefined, threads);
  const expected = tf.tidy(() => {
    const x = tf.tensor4d(PROBE.x, PROBE.xShape);
    const filter = tf.tensor4d(PROBE.filter, PROBE.filterShape);
    return tf.conv2d(x, filter, 1, 'same').dataSync() as Float32Array;
  });
  const difference = maxDifference(reference, expected);
  if (!(difference < 1e-4)) throw new Error(`onnxruntime's convolution disagrees with the wasm backend's (max difference ${difference})`);
  const block = probeNchwcBlock(threads, reference);
  const cache = new ProgramCache(threads);
  const replaced = CONVOLUTION_KERNELS.map((name) => {
    const previous = tf.getKernel(name, 'wasm');
    if (previous === undefined) throw new Error(`the wasm backend has no '${name}' kernel to replace`);
    return previous;
  });
  for (const previous of replaced) {
    tf.unregisterKernel(previous.kernelName, 'wasm');
    tf.registerKernel({ kernelName: previous.kernelName, backendName: 'wasm', kernelFunc: convolutionKernel(previous.kernelName as ConvKernelName, cache, block, previous.kernelFunc) });
  }
  active = { threads, block, cache, replaced };
  return { threads, block };
}

/** Puts back the kernels `enableOnnxKernels` replaced and frees the compiled graphs. */
export function disableOnnxKernels(): void {
  if (active === undefined) return;
  const { replaced, cache } = active;
  active = undefined;
  for (const previous of replaced) {
    tf.unregisterKernel(previous.kernelName, 'wasm');
    tf.registerKernel(previous);
  }
  cache.dispose();
}
