/**
 * The wasm-ort compute path: the wasm backend with its convolutions run by onnxruntime-node
 * (convolutions.ts on program.ts). Switching it on replaces kernel registrations of
 * tfjs's 'wasm' backend; switching it off puts the previous ones back.
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { CONVOLUTION_KERNELS, convolutionKernel } from './convolutions.js';
import { probeOnnxConvolutions } from './probe.js';
import { ProgramCache } from './program.js';

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

/** The probe's findings: they depend on the machine only, so switching back on does not probe again. */
let probed: OnnxKernelsInfo | undefined;

/**
 * Routes the wasm backend's convolutions through onnxruntime. Checks first, once per process,
 * that a plain onnxruntime convolution matches the wasm backend's own on a probe (an Error if
 * not, and nothing is changed). Idempotent.
 */
export function enableOnnxKernels(): OnnxKernelsInfo {
  if (active !== undefined) return { threads: active.threads, block: active.block };
  const { threads, block } = onnxConvolutionSupport();
  const cache = new ProgramCache(threads);
  const replaced = CONVOLUTION_KERNELS.map((name) => {
    const previous = tf.getKernel(name, 'wasm');
    if (previous === undefined) throw new Error(`the wasm backend has no '${name}' kernel to replace`);
    return previous;
  });
  CONVOLUTION_KERNELS.forEach((name, i) => {
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({
      kernelName: name,
      backendName: 'wasm',
      kernelFunc: convolutionKernel(name, cache, block, replaced[i]!.kernelFunc),
    });
  });
  active = { threads, block, cache, replaced };
  return { threads, block };
}

/**
 * Threads and NCHWc block for onnxruntime convolutions on this machine, checked once per process
 * against the active tfjs backend on a probe (an Error if onnxruntime disagrees or cannot run).
 */
export function onnxConvolutionSupport(): OnnxKernelsInfo {
  if (probed === undefined) {
    const threads = os.availableParallelism();
    probed = { threads, ...probeOnnxConvolutions(threads) };
  }
  return probed;
}

/** Whether the wasm backend's kernels are onnxruntime's now (the wasm-ort path). */
export function onnxKernelsActive(): boolean {
  return active !== undefined;
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
