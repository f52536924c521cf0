/** The chosen backend in words (`mw-studio info`), and the part of it that run files record. */
import type { BackendSummary } from '../../../shared/metrics.js';
import { BACKEND_PREFERENCES, type BackendInfo, type BackendName, type BackendPreference } from './preferences.js';

/**
 * libtensorflow 2.9.1 (what tfjs-node-gpu 4.22.0 downloads, see its scripts/deps-constants.js) was
 * built against CUDA 11.2 and cuDNN 8; later CUDA 11.x runtimes are compatible with it.
 */
export const GPU_REQUIREMENTS = 'CUDA 11.2 or a later 11.x such as 11.8, and cuDNN 8';

export function installCommand(name: BackendPreference): string {
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
