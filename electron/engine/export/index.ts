/**
 * Exporting a trained run's exit as a standalone model (exportExit.ts), loading an export back
 * (load.ts) and predicting image files with it (predict.ts).
 */
export { exportExit, type ExportRequest } from './exportExit.js';
export { loadExportedModel, type ExportedModel } from './load.js';
export { predictImages, type Prediction } from './predict.js';
export { ExportError } from '../errors.js';
export { DEMO_FILES, EXPORT_FILES } from './folder.js';
export { layersFolderHandler } from './tfjsFiles.js';
export { EarlyExitFileSchema, ModelCardSchema, readModelCard, type ModelCard } from './modelCard.js';
export { argmax } from './heldOut.js';
