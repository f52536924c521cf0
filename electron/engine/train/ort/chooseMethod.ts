/**
 * The training method a backend trains with: on `ort`, the compiled one-graph step (method.ts),
 * unless the network has a layer the graph cannot express, or is MobileNet; then wasm-ort's path
 * (tfjs layers with onnxruntime convolutions), with a warning that says why.
 *
 * MobileNet: its compiled step is exact (test/engine/ort.test.ts) but measured about 6x slower than
 * wasm-ort's path (MwMobileNet-0.5 32x32x3 plain: 4.6 against 28.1 img/s, `npm run bench -- --arch
 * mobilenet --width 0.5 --shape 32x32x3`): its depthwise convolutions run as grouped convolutions
 * between layout transposes, where wasm-ort runs them in XNNPACK. `compiledMobileNet` (the bench,
 * to measure it) takes the compiled step anyway.
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
  compiledMobileNet = false,
): TrainingMethod {
  const tfjs = createTrainingMethod(method, net, h);
  if (backend !== 'ort') return tfjs;
  if (net.description.family === 'mobilenet' && !compiledMobileNet) {
    process.emitWarning(
      `ort trains ${net.description.name} on wasm-ort's path: its depthwise convolutions are faster there than in the compiled step`,
    );
    return tfjs;
  }
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
