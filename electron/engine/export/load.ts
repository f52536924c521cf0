/** Loading an export folder back, checked against its model card. */
import type * as tfl from '@tensorflow/tfjs-layers';
import type * as ort from 'onnxruntime-node';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ExportError } from '../errors.js';
import { openOnnxSession } from '../onnx/runtime.js';
import { checkAgainstCard } from './checksums.js';
import { EXPORT_FILES } from './folder.js';
import { loadLayersModelFromFolder } from './tfjsFiles.js';

export type ExportedModel =
  { format: 'tfjs'; model: tfl.LayersModel } | { format: 'onnx'; session: ort.InferenceSession };

/**
 * Loads an export folder back (tfjs/multi: a LayersModel; ONNX: an onnxruntime session), every
 * failure an ExportError naming the file. Files that load but differ from their model card's
 * checksums are refused too.
 */
export async function loadExportedModel(dir: string): Promise<ExportedModel> {
  const has = async (file: string) => (await stat(join(dir, file)).catch(() => undefined))?.isFile() === true;
  let loaded: ExportedModel;
  if (await has(EXPORT_FILES.onnxModel))
    loaded = { format: 'onnx', session: await openOnnxSession(join(dir, EXPORT_FILES.onnxModel)) };
  else if (await has(EXPORT_FILES.layersModel))
    loaded = { format: 'tfjs', model: await loadLayersModelFromFolder(dir) };
  else
    throw new ExportError(
      `${dir}: no exported model here (neither ${EXPORT_FILES.layersModel} nor ${EXPORT_FILES.onnxModel})`,
    );
  try {
    await checkAgainstCard(dir);
  } catch (error) {
    if (loaded.format === 'onnx') await loaded.session.release();
    else loaded.model.dispose();
    throw error;
  }
  return loaded;
}
