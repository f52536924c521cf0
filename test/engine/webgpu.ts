/**
 * Whether the WebGPU tests run here: they need an adapter, which on a machine without a GPU is
 * SwiftShader from Debian's chromium (the backend finds it on its own when webgpu is forced).
 * Without one they are skipped with one printed line saying why; under CI=true, where chromium
 * is installed by .ci/run, a missing adapter fails instead.
 */
import { initBackend, type BackendInfo } from '../../electron/engine/backend/index.js';

export async function webGpuForTests(): Promise<BackendInfo | undefined> {
  try {
    return await initBackend('webgpu');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (process.env.CI === 'true')
      throw new Error(`CI=true requires a WebGPU adapter (apt-get install chromium for SwiftShader): ${reason}`, {
        cause: error,
      });
    console.log(`skipped: WebGPU tests (no adapter; apt-get install chromium for SwiftShader): ${reason}`);
    return undefined;
  }
}
