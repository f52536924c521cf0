/** The WebGPU compute backend: tfjs-backend-webgpu (backend.ts) on a device from Dawn (adapter.ts), with our WGSL kernels. */
export { startWebGpuBackend, WEBGPU_BACKEND, webGpuRuntime } from './backend.js';
export { adapterName, type AdapterDescription } from './adapter.js';
