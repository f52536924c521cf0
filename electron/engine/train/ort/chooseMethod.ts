/**
 * The training method a backend trains with: on `ort`, the compiled one-graph step (method.ts),
 * unless the network has a layer the graph cannot express; then wasm-ort's path (tfjs layers with
 * onnxruntime convolutions), with a warning that says why.
 */
import type { Method } from '../../../../shared/spec.js';
import { onnxConvolutionSupport } from '../../backend/ortConvolutions/index.js';
import type { MwNetwork } from '../../models/index.js';
import { createTrainingMethod, type Hyperparameters, type TrainingMethod } from '../methods.js';
import { UnsupportedStepError } from './layers.js';
import { OrtTrainingMethod } from './method.js';

export function createTrainingMethodOn(
  backend: string,
  method: Method,
  net: MwNetwork,
  h: Hyperparameters,
): TrainingMethod {
  const tfjs = createTrainingMethod(method, net, h);
  if (backend !== 'ort') return tfjs;
  try {
    return new OrtTrainingMethod(net, tfjs, h, onnxConvolutionSupport());
  } catch (error) {
    if (!(error instanceof UnsupportedStepError)) throw error;
    process.emitWarning(
      `ort cannot compile the training step of ${net.description.name} (${error.message}); it trains on wasm-ort's path`,
    );
    return tfjs;
  }
}
