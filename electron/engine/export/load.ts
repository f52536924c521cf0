/** Loading an export folder back, checked against its model card. */
import type * as tfl from '@tensorflow/tfjs-layers';
import type * as ort from 'onnxruntime-node';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ExportError } from '../errors.js';
import { openOnnxSession } from '../onnx/runtime.js';
import { checkAgainstCard } from './checksums.js';
import { EXPORT_FILES } from './folder.js';
import { readModelCard, type ModelCard } from './modelCard.js';
import { loadLayersModelFromFolder } from './tfjsFiles.js';

type LoadedModel = { format: 'tfjs'; model: tfl.LayersModel } | { format: 'onnx'; session: ort.InferenceSession };

/** A loaded export and its model card (undefined for a folder without one: a model saved by other means). */
export type ExportedModel = LoadedModel & { card: ModelCard | undefined };

/** Frees what loading took (the tfjs model's tensors, or the onnxruntime session). */
export async function releaseExportedModel(loaded: LoadedModel): Promise<void> {
  if (loaded.format === 'onnx') await loaded.session.release();
  else loaded.model.dispose();
}

/**
 * Loads an export folder back (tfjs/multi: a LayersModel; ONNX: an onnxruntime session) with its
 * model card, every failure an ExportError naming the file. A malformed card, and files that load
 * but differ from their card's checksums, are refused too.
 */
export async function loadExportedModel(dir: string): Promise<ExportedModel> {
  const has = async (file: string) => (await stat(join(dir, file)).catch(() => undefined))?.isFile() === true;
  let loaded: LoadedModel;
  if (await has(EXPORT_FILES.onnxModel))
    loaded = { format: 'onnx', session: await openOnnxSession(join(dir, EXPORT_FILES.onnxModel)) };
  else if (await has(EXPORT_FILES.layersModel))
    loaded = { format: 'tfjs', model: await loadLayersModelFromFolder(dir) };
  else
    throw new ExportError(
      `${dir}: no exported model here (neither ${EXPORT_FILES.layersModel} nor ${EXPORT_FILES.onnxModel})`,
    );
  try {
    // A folder without a card (a model saved by other means) has nothing to check against.
    const card = (await has(EXPORT_FILES.cardJson)) ? await readModelCard(dir) : undefined;
    if (card !== undefined) await checkAgainstCard(dir, card);
    return { ...loaded, card };
  } catch (error) {
    await releaseExportedModel(loaded);
    throw error;
  }
}
