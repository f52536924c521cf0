/**
 * The engine's front door: everything the faces (CLI, bench, desktop shell, serve mode) use of
 * the engine comes through here, so the folders behind it can move without touching them.
 * Layers, lowest first (a folder imports only from its own layer or below):
 *   root helpers (errors, random, timing, resources) -> onnx -> backend -> models -> data, runs
 *   -> evaluate -> train -> export, analysis -> session, study, slurm, host, worker.
 * ONNX by layer: onnx/ (the format: protobuf subset, onnxruntime sessions, int8 quantisation),
 * backend/ortConvolutions/ (training kernels run in onnxruntime) and, where the network's types are
 * needed, models/: onnxSubModel.ts (a sub-model as ONNX) and import/ (an ONNX file as a backbone).
 * This file and every folder's index.ts only re-export (eslint.config.js refuses code in them).
 */
export { BACKEND_PREFERENCES, describeBackend, initBackend, summarizeBackend } from './backend/index.js';
export { makeBatch } from './data/batches.js';
export { DatasetError } from './data/dataset.js';
export { loadDataset } from './data/index.js';
export { BackboneFetchError, BackendError, ExportError, ImportError, SlurmError } from './errors.js';
export { exitLatency, measureLatency } from './evaluate/index.js';
export { cachedEvaluation, evaluateRun } from './evaluate/runEvaluation.js';
export { exportExit, predictImages, type Prediction } from './export/index.js';
export { buildNetwork } from './models/index.js';
export { inspectBackbone } from './models/import/network.js';
export { openSubModelSession } from './models/onnxSubModel.js';
export { onnxLatency } from './onnx/runtime.js';
export { fetchBackbone, listBackbones } from './onnx/zoo.js';
export { Random } from './random.js';
export { resourcesDir } from './resources.js';
export { FileError } from '../base/files.js';
export { RunFolder, listRuns } from './runs/store.js';
export { openRun, type RunRequest } from './session.js';
export { createStudy, listStudies, readStudy, runStudy, studyPath, studyView } from './study.js';
export { checkSlurmSettings, sbatchOnPath } from './slurm.js';
export { runSlurmStudy, slurmFolder } from './slurmStudy.js';
export { createTrainingMethod } from './train/methods.js';
