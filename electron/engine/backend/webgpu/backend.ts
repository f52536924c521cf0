/**
 * tfjs's WebGPU backend (@tensorflow/tfjs-backend-webgpu) on a device from Dawn (adapter.ts).
 *
 * The package registers its kernels on import, and its own backend factory when `navigator.gpu`
 * exists, picking an adapter itself. Here the factory is ours, on the device adapter.ts chose.
 * The backend still checks that `navigator.gpu` exists, and reads the WebGPU constants
 * (GPUBufferUsage, GPUMapMode, ...) as globals: both come from Dawn's module.
 *
 * In Node, tfjs-backend-webgpu can only read tensors back asynchronously (its readSync needs
 * OffscreenCanvas): the engine reads with data()/array(), never dataSync().
 */
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { BackendError } from '../../errors.js';
import { adapterName, openDevice, softwareRefused, type AdapterDescription } from './adapter.js';
import { registerWebGpuChannelKernels } from './channelKernels.js';
import { registerWebGpuConvKernels } from './convKernels.js';

/** tfjs's name for the backend. */
export const WEBGPU_BACKEND = 'webgpu';

let registered: AdapterDescription | undefined;

/**
 * The first error Dawn reported outside an error scope (tfjs opens none): a kernel whose shader
 * or pipeline failed validation, an out-of-memory, or the device lost. Dawn only prints these and
 * the kernel's output is left as zeros, so every read after one fails, saying why, rather than
 * training on garbage. It stays for the process: the device's kernels cannot be trusted again.
 */
let deviceFailure: BackendError | undefined;

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim();
}

function watchDevice(device: GPUDevice, adapter: string): void {
  device.onuncapturederror = (event) => {
    deviceFailure ??= new BackendError(
      `WebGPU on ${adapter} reported a ${event.error.constructor.name}: ${firstLine(event.error.message)}; its results cannot be trusted, so the run stops (restart the studio, or train on another backend)`,
    );
  };
  void device.lost.then((lost) => {
    if (lost.reason !== 'destroyed')
      deviceFailure ??= new BackendError(
        `the WebGPU device on ${adapter} was lost: ${firstLine(lost.message)} (restart the studio, or train on another backend)`,
      );
  });
}

/**
 * Registers and selects the 'webgpu' backend on the best adapter (a software one only when
 * allowed). One device per process: later calls reuse it, but still refuse a software adapter
 * when software is not allowed. Throws, with the reason in one line, when it cannot run.
 */
export async function startWebGpuBackend({ allowSoftware }: { allowSoftware: boolean }): Promise<AdapterDescription> {
  if (registered === undefined) {
    const opened = await openDevice({ allowSoftware });
    // Only what is missing: Node's own globals (navigator, EventTarget) stay as they are.
    for (const [name, value] of Object.entries(opened.globals)) {
      if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
    }
    // Node 21+ has a navigator (without gpu); Node 20 has none.
    const navigator = (globalThis as { navigator?: object }).navigator;
    if (navigator === undefined)
      Object.defineProperty(globalThis, 'navigator', {
        value: { gpu: opened.gpu },
        configurable: true,
        writable: true,
      });
    else Object.defineProperty(navigator, 'gpu', { value: opened.gpu, configurable: true, writable: true });
    const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
    /** Every tensor read (the trainer reads each step's losses) fails once the device has. */
    class CheckedWebGPUBackend extends WebGPUBackend {
      override async read(dataId: object): Promise<tf.backend_util.BackendValues> {
        const values = await super.read(dataId);
        if (deviceFailure) throw deviceFailure;
        return values;
      }
    }
    watchDevice(opened.device, adapterName(opened.described));
    if (tf.findBackendFactory(WEBGPU_BACKEND) != null) tf.removeBackend(WEBGPU_BACKEND);
    tf.registerBackend(WEBGPU_BACKEND, () => new CheckedWebGPUBackend(opened.device, opened.adapter.info), 0);
    registerWebGpuConvKernels(WEBGPU_BACKEND, opened.described.software);
    registerWebGpuChannelKernels(WEBGPU_BACKEND);
    registered = opened.described;
  } else if (registered.software && !allowSoftware) {
    throw softwareRefused(registered);
  }
  if (!(await tf.setBackend(WEBGPU_BACKEND))) {
    throw new Error(`tfjs-backend-webgpu failed to initialise on ${adapterName(registered)} (tfjs logged why above)`);
  }
  return registered;
}

/** The active backend when it is WebGPU, for what must not read tensors synchronously. */
export function activeWebGpu(): WebGPUBackend | undefined {
  return tf.getBackend() === WEBGPU_BACKEND ? (tf.backend() as WebGPUBackend) : undefined;
}

/** "webgpu <adapter>" while WebGPU is the active backend: the runtime that latencies measured on it carry. */
export function webGpuRuntime(): string | undefined {
  return activeWebGpu() && registered && `webgpu ${adapterName(registered)}`;
}
