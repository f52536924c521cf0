/**
 * Picks the compute backend the engine trains on, fastest first:
 *
 *   tensorflow-gpu  @tensorflow/tfjs-node-gpu: libtensorflow with CUDA
 *   webgpu          @tensorflow/tfjs-backend-webgpu on Dawn (the npm package webgpu): any vendor's
 *                   GPU through Vulkan, Metal or D3D12; 'auto' takes a hardware adapter only,
 *                   a software one (SwiftShader) runs when forced (webgpu/)
 *   tensorflow      @tensorflow/tfjs-node: libtensorflow on the CPU
 *   ort             wasm-ort for tfjs, and each whole training step as one onnxruntime graph
 *                   (train/ort/; portable like wasm-ort, on every core)
 *   wasm-ort        wasm, with its convolutions run by onnxruntime-node's multi-threaded
 *                   CPU kernels (portable: onnxruntime-node ships its CPU library in the npm package)
 *   wasm            @tensorflow/tfjs-backend-wasm: XNNPACK compiled to WebAssembly (portable)
 *   cpu             @tensorflow/tfjs-backend-cpu: plain JavaScript (portable, always works)
 *
 * The two native packages are optional dependencies: their install script downloads libtensorflow
 * (and a prebuilt addon), and npm drops the package when that fails. So "not installed" is a normal
 * outcome, reported in `BackendInfo.skipped` rather than treated as an error.
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
import type { BackendSummary } from '../../../shared/metrics.js';
import { BackendError } from '../errors.js';
import { cudaMismatch } from './cuda.js';
import { disableOnnxKernels, enableOnnxKernels, onnxConvolutionSupport, type OnnxKernelsInfo } from './onnx/index.js';
import { registerFusedKernels } from './fused/channelKernels.js';
import { registerGradientKernels } from './wasmGradients.js';
import { adapterName, startWebGpuBackend, WEBGPU_BACKEND } from './webgpu/index.js';

export type BackendName = 'tensorflow-gpu' | 'webgpu' | 'tensorflow' | 'ort' | 'wasm-ort' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | BackendName;

export interface BackendInfo {
  name: BackendName;
  /** What runs the maths, e.g. "TensorFlow (CUDA) on NVIDIA H100" or "WebAssembly (SIMD, 1 thread)". */
  label: string;
  /** The GPU's name when there is one, else the CPU model. */
  device: string;
  gpu: boolean;
  /** True when no native library is involved (wasm, cpu): works on any machine Node runs on. */
  portable: boolean;
  /** Faster candidates that were not used, and why. */
  skipped: { name: string; reason: string }[];
}

/** Candidates in the order 'auto' tries them. */
const BACKEND_NAMES: readonly BackendName[] = [
  'tensorflow-gpu',
  'webgpu',
  'tensorflow',
  'ort',
  'wasm-ort',
  'wasm',
  'cpu',
];

/** The candidates that need no native library, fastest first: each falls back to the ones after it. */
const PORTABLE_NAMES: readonly BackendName[] = ['ort', 'wasm-ort', 'wasm', 'cpu'];

/** Every value `initBackend` (and MW_BACKEND) accepts. */
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', ...BACKEND_NAMES];

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

/** The tfjs engine's name for each candidate: both native packages register 'tensorflow'. */
const ENGINE_BACKEND: Record<BackendName, string> = {
  'tensorflow-gpu': 'tensorflow',
  webgpu: WEBGPU_BACKEND,
  tensorflow: 'tensorflow',
  ort: 'wasm',
  'wasm-ort': 'wasm',
  wasm: 'wasm',
  cpu: 'cpu',
};

/**
 * libtensorflow 2.9.1 (what tfjs-node-gpu 4.22.0 downloads, see its scripts/deps-constants.js) was
 * built against CUDA 11.2 and cuDNN 8; later CUDA 11.x runtimes are compatible with it.
 */
const GPU_REQUIREMENTS = 'CUDA 11.2 or a later 11.x such as 11.8, and cuDNN 8';

const require = createRequire(import.meta.url);

/** A running candidate: everything but the reasons earlier candidates were skipped. */
type Started = Omit<BackendInfo, 'skipped'> & {
  /** Set when the candidate ran, but not as well as hoped (tfjs-node-gpu without a usable GPU). */
  shortfall?: { name: BackendName; reason: string };
};

/** A candidate's start, or why it cannot run here (an error's message, for `BackendInfo.skipped`). */
type Attempt = { started: Started } | { unavailable: string };

export function parseBackendPreference(value: string): BackendPreference {
  const preference = BACKEND_PREFERENCES.find((name) => name === value);
  if (preference === undefined) {
    throw new BackendError(
      `Unknown compute backend '${value}'. Valid values (argument or MW_BACKEND): ${BACKEND_PREFERENCES.join(', ')}.`,
    );
  }
  return preference;
}

/**
 * Sets up the compute backend and says which one runs. 'auto' takes the fastest that works here;
 * naming a native backend or webgpu insists on it (an Error says why it cannot run), while a portable one
 * falls back to the portable ones after it ('ort' -> 'wasm-ort' -> 'wasm' -> 'cpu'). Results are cached:
 * the same preference returns the same info, and makes its backend the active one again.
 * An empty MW_BACKEND counts as unset.
 */
const initialised = new Map<BackendPreference, Promise<BackendInfo>>();

export async function initBackend(preference: string = process.env.MW_BACKEND || 'auto'): Promise<BackendInfo> {
  const wanted = parseBackendPreference(preference);
  let pending = initialised.get(wanted);
  if (pending === undefined) {
    pending = choose(wanted);
    initialised.set(wanted, pending);
  }
  const info = await pending;
  // Another preference may have switched backends since; switching back to an initialised one is cheap.
  if (tf.getBackend() !== ENGINE_BACKEND[info.name]) await tf.setBackend(ENGINE_BACKEND[info.name]);
  // wasm, wasm-ort and ort share tfjs's 'wasm' backend and differ only in some of its kernels.
  if (info.name === 'wasm-ort' || info.name === 'ort') enableOnnxKernels();
  else if (info.name === 'wasm') disableOnnxKernels();
  return info;
}

async function choose(preference: BackendPreference): Promise<BackendInfo> {
  const portableFrom = PORTABLE_NAMES.indexOf(preference as BackendName);
  const candidates: readonly BackendName[] =
    preference === 'auto' ? BACKEND_NAMES : portableFrom >= 0 ? PORTABLE_NAMES.slice(portableFrom) : [preference];
  const skipped: BackendInfo['skipped'] = [];
  for (const name of candidates) {
    // Only a forced webgpu may run on a software adapter: slower than wasm-ort.
    const attempt = await attemptOnce(name, { allowSoftware: preference === 'webgpu' });
    if ('unavailable' in attempt) {
      skipped.push({ name, reason: attempt.unavailable });
      continue;
    }
    const { shortfall, ...info } = attempt.started;
    if (shortfall !== undefined) skipped.push(shortfall);
    return { ...info, skipped };
  }
  // Only an explicitly named native backend or webgpu gets here: 'cpu' always starts.
  const reasons = skipped.map(({ name, reason }) => `${name}: ${reason}`).join('; ');
  throw new BackendError(
    `Compute backend '${preference}' cannot run here: ${reasons}. To use it: ${installCommand(preference)}.`,
  );
}

interface StartOptions {
  /** Run on a software GPU adapter too (webgpu only). */
  allowSoftware: boolean;
}

const attempts = new Map<string, Promise<Attempt>>();

/**
 * Each candidate is set up at most once per process (imports and wasm paths are one-shot), per
 * start options. Any failure makes it unavailable, so 'auto' still ends on a backend that works,
 * and says why.
 */
function attemptOnce(name: BackendName, options: StartOptions = { allowSoftware: false }): Promise<Attempt> {
  const key = name === 'webgpu' && options.allowSoftware ? `${name}+software` : name;
  let attempt = attempts.get(key);
  if (attempt === undefined) {
    attempt = start(name, options).then(
      (started) => ({ started }),
      (error: unknown) => ({ unavailable: oneLine(error) }),
    );
    attempts.set(key, attempt);
  }
  return attempt;
}

function start(name: BackendName, options: StartOptions): Promise<Started> {
  switch (name) {
    case 'tensorflow-gpu':
    case 'tensorflow':
      return startNative(name);
    case 'webgpu':
      return startWebGpu(options);
    case 'ort':
      return startOrt();
    case 'wasm-ort':
      return startWasmOrt();
    case 'wasm':
      return startWasm();
    case 'cpu':
      return startCpu();
  }
}

/** The part of tfjs-node's NodeJSKernelBackend we read (set from its binding at construction). */
interface NodeKernelBackend {
  isUsingGpuDevice?: boolean;
}

async function startNative(name: keyof typeof NATIVE_PACKAGES): Promise<Started> {
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
async function startWasm(): Promise<Started> {
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
 * wasm with onnxruntime's convolutions (onnx/): the same WebAssembly backend, so it
 * needs 'wasm' to start; `enableOnnxKernels` checks onnxruntime against wasm on a probe first.
 */
async function startWasmOrt(): Promise<Started> {
  const wasmAttempt = await attemptOnce('wasm');
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
 */
async function startOrt(): Promise<Started> {
  const wasmOrt = await attemptOnce('wasm-ort');
  if ('unavailable' in wasmOrt) throw new Error(`it needs wasm-ort: ${wasmOrt.unavailable}`);
  const { threads } = onnxConvolutionSupport();
  return {
    ...wasmOrt.started,
    name: 'ort',
    label: `onnxruntime training steps (${threads} thread${threads === 1 ? '' : 's'}); ${wasmOrt.started.label} for the rest`,
  };
}

async function startWebGpu(options: StartOptions): Promise<Started> {
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

async function startCpu(): Promise<Started> {
  if (!(await tf.setBackend('cpu'))) throw new Error(`the tfjs cpu backend failed to initialise`);
  registerGradientKernels('cpu');
  return { name: 'cpu', label: 'JavaScript (tfjs cpu backend)', device: cpuModel(), gpu: false, portable: true };
}

function cpuModel(): string {
  const model = os.cpus()[0]?.model.trim() || `${os.arch()} CPU`;
  return `${model} (${os.availableParallelism()} logical cores)`;
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, ' ').trim();
}

function installCommand(name: BackendPreference): string {
  if (name === 'webgpu') return 'a GPU with its Vulkan (Linux: and libvulkan1), Metal or Direct3D 12 driver';
  const command =
    name === 'tensorflow-gpu' ? 'npm install @tensorflow/tfjs-node-gpu' : 'npm install @tensorflow/tfjs-node';
  const requirements = name === 'tensorflow-gpu' ? ` (${GPU_REQUIREMENTS} for the GPU)` : '';
  return `${command} on a machine that can download libtensorflow${requirements}`;
}

/** How to get something faster than `name`, if anything is. */
function fasterHint(name: BackendName): string | undefined {
  switch (name) {
    case 'tensorflow-gpu':
      return undefined;
    case 'webgpu':
      return undefined;
    case 'tensorflow':
      return `For the GPU: ${installCommand('tensorflow-gpu')}.`;
    case 'ort':
    case 'wasm-ort':
    case 'wasm':
    case 'cpu':
      return `For native speed: ${installCommand('tensorflow-gpu')}, or @tensorflow/tfjs-node for the CPU only.`;
  }
}

/** Multi-line text for `mw-studio info`. */
export function describeBackend(info: BackendInfo): string {
  const lines = [
    `Compute backend: ${info.label} [${info.name}]`,
    `Device:          ${info.device}`,
    `Portable:        ${info.portable ? 'yes (no native libraries)' : info.name === 'webgpu' ? "no (Dawn's native module, shipped in the npm package)" : 'no (native libtensorflow)'}`,
  ];
  if (info.skipped.length > 0) {
    lines.push('Not used:');
    for (const { name, reason } of info.skipped) lines.push(`  ${name}: ${reason}`);
  }
  const hint = fasterHint(info.name);
  if (hint !== undefined) lines.push(hint);
  lines.push(`Choose with MW_BACKEND=${BACKEND_PREFERENCES.join('|')} (default auto: fastest that works).`);
  return lines.join('\n');
}

/** The part of BackendInfo that run files and events record. */
export function summarizeBackend(info: BackendInfo): BackendSummary {
  return { name: info.name, label: info.label, device: info.device, gpu: info.gpu };
}
