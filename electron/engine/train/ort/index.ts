/** The ort backend's training step: the whole step as one onnxruntime graph (method.ts on step.ts and layers.ts). */
export { createTrainingMethodOn } from './chooseMethod.js';
export { OrtTrainingMethod } from './method.js';
export { UnsupportedStepError } from './layers.js';
