/**
 * The wasm-ort compute path: tfjs's wasm backend with its convolutions run by onnxruntime-node
 * (registration.ts switches it on and off; convolutions.ts builds the kernels on program.ts).
 */
export { disableOnnxKernels, enableOnnxKernels, onnxKernelsActive, type OnnxKernelsInfo } from './registration.js';
export { onnxKernelCalls } from './program.js';
