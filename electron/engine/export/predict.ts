/**
 * Running an export folder on image files, the way a deployment would: the model card says how
 * to prepare the input and what the classes are; a multi-exit export answers with the first exit
 * whose highest softmax probability reaches the card's threshold (else the last), and says which.
 */
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { readImageFile } from '../data/imageFolder.js';
import { ExportError } from '../errors.js';
import { runOnnx } from '../onnx/runtime.js';
import { EXPORT_FILES } from './folder.js';
import { argmax } from './heldOut.js';
import { loadExportedModel, releaseExportedModel, type ExportedModel } from './load.js';
import type { ModelCard } from './modelCard.js';

export interface Prediction {
  file: string;
  /** The most probable classes, most probable first. */
  top: { label: string; probability: number }[];
  /** Multi-exit exports: the exit that answered, and its cost. */
  exit?: { label: string; macs: number; params: number; confidence: number };
}

/**
 * The image as the model's input: nearest-pixel resized to the model's size when it differs,
 * RGB averaged to gray for a 1-channel model, then (pixel / 255 - mean[c]) / std[c].
 */
export function preprocessImage(
  image: { width: number; height: number; rgb: Uint8Array },
  card: ModelCard,
): Float32Array {
  const [, height, width, channels] = card.preprocessing.shape;
  const { mean, std } = card.preprocessing;
  const x = new Float32Array(height * width * channels);
  for (let h = 0; h < height; h++) {
    const sy = Math.min(image.height - 1, Math.floor((h * image.height) / height));
    for (let w = 0; w < width; w++) {
      const sx = Math.min(image.width - 1, Math.floor((w * image.width) / width));
      const p = (sy * image.width + sx) * 3;
      for (let c = 0; c < channels; c++) {
        const pixel = channels === 1 ? (image.rgb[p]! + image.rgb[p + 1]! + image.rgb[p + 2]!) / 3 : image.rgb[p + c]!;
        x[(h * width + w) * channels + c] = (pixel / 255 - mean[c]!) / std[c]!;
      }
    }
  }
  return x;
}

export function softmax(logits: ArrayLike<number>): number[] {
  const largest = Math.max(...Array.from(logits));
  const exps = Array.from(logits, (v) => Math.exp(v - largest));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** The answering output of one image: the first reaching the threshold, else the last. */
function answer(outputs: number[][], threshold: number | undefined): number {
  if (threshold === undefined) return outputs.length - 1;
  const found = outputs.findIndex((probabilities) => Math.max(...probabilities) >= threshold);
  return found === -1 ? outputs.length - 1 : found;
}

async function logitsOf(model: ExportedModel, x: Float32Array, card: ModelCard): Promise<Float32Array[]> {
  const [, height, width, channels] = card.preprocessing.shape;
  if (model.format === 'onnx') return runOnnx(model.session, x, [height, width, channels]);
  const input = tf.tensor4d(x, [1, height, width, channels]);
  const outputs = [model.model.predict(input)].flat();
  try {
    return outputs.map((t) => t.dataSync() as Float32Array);
  } finally {
    tf.dispose([input, ...outputs]);
  }
}

/** The `topK` most probable classes of each image file under the loaded export. */
async function predictWith(
  model: ExportedModel,
  card: ModelCard,
  files: readonly string[],
  topK = 3,
): Promise<Prediction[]> {
  const predictions: Prediction[] = [];
  for (const file of files) {
    const x = preprocessImage(await readImageFile(file), card);
    const outputs = (await logitsOf(model, x, card)).map(softmax);
    if (outputs.length !== card.exits.length)
      throw new ExportError(
        `the model has ${outputs.length} outputs but its model card lists ${card.exits.length} exits`,
      );
    const chosen = answer(outputs, card.earlyExit?.threshold);
    const probabilities = outputs[chosen]!;
    const order = probabilities.map((p, i) => [p, i] as const).sort((a, b) => b[0] - a[0]);
    const top = order
      .slice(0, topK)
      .map(([probability, i]) => ({ label: card.dataset.classes[i] ?? `class ${i}`, probability }));
    const exit = card.exits[chosen]!;
    predictions.push({
      file,
      top,
      ...(card.exits.length > 1
        ? {
            exit: {
              label: exit.label,
              macs: exit.macs,
              params: exit.params,
              confidence: probabilities[argmax(probabilities, 0, probabilities.length)]!,
            },
          }
        : {}),
    });
  }
  return predictions;
}

/** Loads the export folder `dir` and predicts each image file (PNG or JPEG) with it. */
export async function predictImages(dir: string, files: readonly string[], topK?: number): Promise<Prediction[]> {
  const model = await loadExportedModel(dir);
  try {
    const cardPath = join(dir, EXPORT_FILES.cardJson);
    if (model.card === undefined)
      throw new ExportError(`${cardPath}: file not found: an export folder needs its model card to predict`);
    const channels = model.card.preprocessing.shape[3];
    if (channels !== 1 && channels !== 3)
      throw new ExportError(
        `${cardPath}: the model takes ${channels}-channel input; predicting from image files needs 1 (gray) or 3 (RGB)`,
      );
    return await predictWith(model, model.card, files, topK);
  } finally {
    await releaseExportedModel(model);
  }
}
