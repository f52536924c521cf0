/**
 * The wasm-ort compute path: tfjs's wasm backend with its convolutions run by onnxruntime-node
 * (registration.ts switches it on and off; convolutions.ts builds the kernels on program.ts).
 */
export {
  disableOnnxKernels,
  enableOnnxKernels,
  onnxConvolutionSupport,
  onnxKernelsActive,
  type OnnxKernelsInfo,
} from './registration.js';
export { GraphBuilder, OnnxProgram, onnxKernelCalls } from './program.js';
// The graphs' pieces, for train/ort/'s whole-step graph.
export {
  emitConvForward,
  emitConvInputGradient,
  emitDepthwiseFilterGradient,
  emitDepthwiseFilterImage,
  emitDepthwiseForward,
  emitDepthwiseInputGradient,
} from './graphs.js';
export { emitFilterTaps, emitTapProducts, type FilterTaps } from './filterGradient.js';
export type { ConvGeometry } from './geometry.js';
