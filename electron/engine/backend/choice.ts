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
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '../errors.js';
import {
  oneLine,
  startCpu,
  startNative,
  startWasm,
  startOrt,
  startWasmOrt,
  startWebGpu,
  type Attempt,
  type StartOptions,
  type Started,
} from './candidates.js';
import { installCommand } from './description.js';
import { disableOnnxKernels, enableOnnxKernels } from './ortConvolutions/index.js';
import {
  AUTO_CANDIDATES,
  PORTABLE_NAMES,
  parseBackendPreference,
  type BackendInfo,
  type BackendName,
  type BackendPreference,
} from './preferences.js';
import { WEBGPU_BACKEND } from './webgpu/index.js';

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
    preference === 'auto' ? AUTO_CANDIDATES : portableFrom >= 0 ? PORTABLE_NAMES.slice(portableFrom) : [preference];
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
      return startOrt(() => attemptOnce('wasm-ort'));
    case 'wasm-ort':
      return startWasmOrt(() => attemptOnce('wasm'));
    case 'wasm':
      return startWasm();
    case 'cpu':
      return startCpu();
  }
}
