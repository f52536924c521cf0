/** The compute backends the engine can train on, and what a caller may ask for (choice.ts picks one). */
import { BackendError } from '../errors.js';

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

/** Every backend, fastest first as far as measured. */
export const BACKEND_NAMES: readonly BackendName[] = [
  'tensorflow-gpu',
  'webgpu',
  'tensorflow',
  'ort',
  'wasm-ort',
  'wasm',
  'cpu',
];

/**
 * Candidates in the order 'auto' tries them: every backend, fastest first. On the CPU 'ort' comes
 * before wasm-ort: its compiled steps trained 1.0-2.4x as fast on MwResNet-20 and -56, 1.7-2.4x on
 * MwMobileNet-0.5 and 2.8-4.6x on an imported resnet18 at 224x224 (`npm run bench -- --backend
 * ort`, plain / joint / multi-way; the README's table).
 */
export const AUTO_CANDIDATES: readonly BackendName[] = BACKEND_NAMES;

/** The candidates that need no native library, fastest first: each falls back to the ones after it. */
export const PORTABLE_NAMES: readonly BackendName[] = ['ort', 'wasm-ort', 'wasm', 'cpu'];

/** Every value `initBackend` (and MW_BACKEND) accepts. */
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', ...BACKEND_NAMES];

export function parseBackendPreference(value: string): BackendPreference {
  const preference = BACKEND_PREFERENCES.find((name) => name === value);
  if (preference === undefined) {
    throw new BackendError(
      `Unknown compute backend '${value}'. Valid values (argument or MW_BACKEND): ${BACKEND_PREFERENCES.join(', ')}.`,
    );
  }
  return preference;
}
