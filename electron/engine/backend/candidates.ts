/**
 * Starting each candidate backend (choice.ts decides which to try): a running candidate says what
 * runs the maths and on which device; a failure throws, with the reason in one line.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as wasm from '@tensorflow/tfjs-backend-wasm';
import { cudaMismatch } from './cuda.js';
import { GPU_REQUIREMENTS } from './description.js';
import { enableOnnxKernels, onnxConvolutionSupport, type OnnxKernelsInfo } from './ortConvolutions/index.js';
import { registerGradientKernels } from './portableConvGradients.js';
import type { BackendInfo, BackendName } from './preferences.js';
import { registerFusedKernels } from './wasm/channelKernels.js';
import { adapterName, startWebGpuBackend } from './webgpu/index.js';

/**
 * Both native packages `require('@tensorflow/tfjs')`, which requires '@tensorflow/tfjs-core' and
 * registers the backend under the name 'tensorflow' there. That only reaches our engine when it is
 * the same tfjs-core: tfjs-node(-gpu) 4.22.0 pins @tensorflow/tfjs 4.22.0, which pins tfjs-core
 * 4.22.0, so npm dedupes it with our own pinned 4.22.0. (tfjs-core also keeps its engine and
 * kernel registry on the global object, so a second copy would share them, but with mismatched
 * code; keep all @tensorflow/* versions identical when upgrading.)
 */
const NATIVE_PACKAGES = {
  'tensorflow-gpu': '@tensorflow/tfjs-node-gpu',
  tensorflow: '@tensorflow/tfjs-node',
} as const;

const require = createRequire(import.meta.url);

/** A running candidate: everything but the reasons earlier candidates were skipped. */
export type Started = Omit<BackendInfo, 'skipped'> & {
  /** Set when the candidate ran, but not as well as hoped (tfjs-node-gpu without a usable GPU). */
  shortfall?: { name: BackendName; reason: string };
};

/** A candidate's start, or why it cannot run here (an error's message, for `BackendInfo.skipped`). */
export type Attempt = { started: Started } | { unavailable: string };

export interface StartOptions {
  /** Run on a software GPU adapter too (webgpu only). */
  allowSoftware: boolean;
}

/** The part of tfjs-node's NodeJSKernelBackend we read (set from its binding at construction). */
interface NodeKernelBackend {
  isUsingGpuDevice?: boolean;
}

export async function startNative(name: keyof typeof NATIVE_PACKAGES): Promise<Started> {
  const pkg = NATIVE_PACKAGES[name];
  try {
    require.resolve(pkg);
  } catch {
    throw new Error(`${pkg} is not installed (its install downloads libtensorflow, which failed or was skipped)`);
  }
  // Both packages register kernels and a backend named 'tensorflow': only one can load per process.
  if (tf.findBackendFactory('tensorflow') != null) {
    throw new Error(`the other native package already provides the 'tensorflow' backend in this process`);
  }
  try {
    // Importing registers the 'tensorflow' backend and selects it. The specifier is a variable so
    // TypeScript does not require the optional package at build time.
    const specifier: string = pkg;
    await import(specifier);
  } catch (error) {
    const mismatch = name === 'tensorflow-gpu' ? await cudaMismatch() : undefined;
    throw new Error(`${mismatch ? `${mismatch}; ` : ''}${pkg} is installed but failed to load: ${oneLine(error)}`, {
      cause: error,
    });
  }
  if (!(await tf.setBackend('tensorflow'))) {
    throw new Error(`${pkg} loaded, but its 'tensorflow' backend failed to initialise (tfjs logged why above)`);
  }
  const cpu = cpuModel();
  if (name === 'tensorflow') {
    return { name, label: 'TensorFlow (native, CPU)', device: cpu, gpu: false, portable: false };
  }
  const backend = tf.findBackend('tensorflow') as NodeKernelBackend | null;
  if (backend?.isUsingGpuDevice !== true) {
    // The GPU build of libtensorflow quietly runs on the CPU when CUDA is missing: still native.
    return {
      name: 'tensorflow',
      label: 'TensorFlow (native, CPU; from the GPU package)',
      device: cpu,
      gpu: false,
      portable: false,
      shortfall: {
        name,
        reason:
          (await cudaMismatch()) ??
          `${pkg} loaded, but TensorFlow found no usable CUDA GPU (needs an NVIDIA driver and ${GPU_REQUIREMENTS} on the library path)`,
      },
    };
  }
  const gpuName = (await nvidiaGpuName()) ?? 'CUDA GPU';
  return { name, label: `TensorFlow (CUDA) on ${gpuName}`, device: gpuName, gpu: true, portable: false };
}

/**
 * The first GPU's name from nvidia-smi, or undefined when it is absent or slow. Best effort: the
 * binding only tells whether TensorFlow uses a GPU, not which.
 */
async function nvidiaGpuName(): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], {
      timeout: 3000,
    });
    return stdout
      .split('\n')
      .map((line) => line.trim())
      .find((line) => line.length > 0);
  } catch {
    return undefined;
  }
}

/**
 * WebAssembly in Node. The .wasm binaries are read from the installed package directory (the
 * Emscripten loader uses fs.readFileSync under Node), so nothing is fetched over the network.
 *
 * The backend picks tfjs-backend-wasm-simd.wasm when WebAssembly.validate accepts a SIMD probe
 * (flag WASM_HAS_SIMD_SUPPORT; Node 20 does). The threaded-SIMD build is never used in Node:
 * the WASM_HAS_MULTITHREAD_SUPPORT flag is hard-wired to false when IS_NODE (tfjs issue #3830),
 * and forcing it on fails under Node 20 because the backend starts its pthread workers from a
 * blob: URL, which worker_threads rejects (ERR_WORKER_PATH; tried with tfjs-backend-wasm 4.22.0).
 * So XNNPACK runs on one thread here.
 */
export async function startWasm(): Promise<Started> {
  const distDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep;
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const binary = simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm';
  if (!existsSync(distDir + binary)) throw new Error(`${binary} is missing from ${distDir}`);
  wasm.setWasmPaths(distDir);
  if (!(await tf.setBackend('wasm'))) {
    throw new Error(`the WebAssembly module ${binary} failed to initialise (tfjs logged why above)`);
  }
  registerGradientKernels('wasm');
  // Without them batch norm and ReLU run as several tfjs ops each: slower, same results.
  const fusedUnavailable = await registerFusedKernels();
  if (fusedUnavailable) process.emitWarning(`fused element-wise kernels are off: ${fusedUnavailable}`);
  const threads = wasm.getThreadsCount();
  return {
    name: 'wasm',
    label: `WebAssembly (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'})`,
    device: cpuModel(),
    gpu: false,
    portable: true,
  };
}

/**
 * wasm with onnxruntime's convolutions (ortConvolutions/): the same WebAssembly backend, so it
 * needs 'wasm' to start (`startWasmOnce`: choice.ts's one attempt at it); `enableOnnxKernels` checks
 * onnxruntime against wasm on a probe first.
 */
export async function startWasmOrt(startWasmOnce: () => Promise<Attempt>): Promise<Started> {
  const wasmAttempt = await startWasmOnce();
  if ('unavailable' in wasmAttempt) throw new Error(`it needs the wasm backend: ${wasmAttempt.unavailable}`);
  await tf.setBackend('wasm');
  let convolutions: OnnxKernelsInfo;
  try {
    convolutions = enableOnnxKernels();
  } catch (error) {
    throw new Error(`onnxruntime-node's kernels cannot run here: ${oneLine(error)}`, { cause: error });
  }
  const layout = convolutions.block === undefined ? 'NCHW' : `NCHWc${convolutions.block}`;
  const threads = `${convolutions.threads} thread${convolutions.threads === 1 ? '' : 's'}`;
  return {
    ...wasmAttempt.started,
    name: 'wasm-ort',
    label: `${wasmAttempt.started.label} + onnxruntime convolutions (${threads}, ${layout})`,
  };
}

/**
 * wasm-ort for everything tfjs runs, and each training step compiled into one onnxruntime graph
 * (train/ort/; where a network's step cannot be compiled the trainer says why and keeps wasm-ort's).
 * `startWasmOrtOnce` is choice.ts's one attempt at wasm-ort.
 */
export async function startOrt(startWasmOrtOnce: () => Promise<Attempt>): Promise<Started> {
  const wasmOrt = await startWasmOrtOnce();
  if ('unavailable' in wasmOrt) throw new Error(`it needs wasm-ort: ${wasmOrt.unavailable}`);
  const { threads } = onnxConvolutionSupport();
  return {
    ...wasmOrt.started,
    name: 'ort',
    label: `onnxruntime training steps (${threads} thread${threads === 1 ? '' : 's'}); ${wasmOrt.started.label} for the rest`,
  };
}

export async function startWebGpu(options: StartOptions): Promise<Started> {
  const adapter = await startWebGpuBackend(options);
  const name = adapterName(adapter);
  return {
    name: 'webgpu',
    label: `WebGPU (Dawn${adapter.software ? ', software adapter' : ''})`,
    device: name,
    gpu: !adapter.software,
    portable: false,
  };
}

export async function startCpu(): Promise<Started> {
  if (!(await tf.setBackend('cpu'))) throw new Error(`the tfjs cpu backend failed to initialise`);
  registerGradientKernels('cpu');
  return { name: 'cpu', label: 'JavaScript (tfjs cpu backend)', device: cpuModel(), gpu: false, portable: true };
}

function cpuModel(): string {
  const model = os.cpus()[0]?.model.trim() || `${os.arch()} CPU`;
  return `${model} (${os.availableParallelism()} logical cores)`;
}

export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, ' ').trim();
}
