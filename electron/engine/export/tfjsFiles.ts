/**
 * A tfjs IOHandler over a folder: model.json + weights.bin, the layout tf.loadLayersModel reads
 * over HTTP. (tfjs-core's file:// handler ships with tfjs-node, which the studio does not need.)
 * Loading checks what tfjs would otherwise report vaguely or not at all: unreadable JSON, weight
 * files outside the folder, missing or short weight files.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { WeightPrecision as DeploymentPrecision } from '../../../shared/deployment.js';
import { readJsonFile } from '../runs/files.js';
import { ExportError, messageOf } from '../errors.js';
import { EXPORT_FILES, writeFileFlushed } from './folder.js';

const BYTES_PER_ELEMENT = { float32: 4, int32: 4, float16: 2 } as const;

/** How weights are stored: as computed, or as float16 (half the bytes; tfjs decodes them back to float32). */
export type WeightPrecision = Exclude<DeploymentPrecision, 'int8'>;

const WeightSpecSchema = z.object({
  name: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  dtype: z.enum(['float32', 'int32']),
  quantization: z.object({ dtype: z.literal('float16') }).optional(),
});

/** Weight files are plain names inside the model's folder: model.json must not point elsewhere. */
const WeightFileSchema = z
  .string()
  .regex(/^(?!\.\.?$)[^/\\]+$/, 'weight files must be plain file names in the model folder');

const ModelJsonSchema = z.object({
  modelTopology: z.record(z.string(), z.unknown()),
  format: z.string().optional(),
  generatedBy: z.string().optional(),
  convertedBy: z.string().nullable().optional(),
  weightsManifest: z.array(z.object({ paths: z.array(WeightFileSchema).min(1), weights: z.array(WeightSpecSchema) })),
});

function byteSize(spec: z.infer<typeof WeightSpecSchema>): number {
  return spec.shape.reduce((n, d) => n * d, 1) * BYTES_PER_ELEMENT[spec.quantization?.dtype ?? spec.dtype];
}

const float32View = new Float32Array(1);
const bitsView = new Uint32Array(float32View.buffer);

/** IEEE half-precision bits of a float32, rounded to nearest even (what tfjs's float16 decoder reads back). */
export function float16Bits(value: number): number {
  float32View[0] = value;
  const bits = bitsView[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (((bits >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  if (exponent >= 31) return sign | 0x7c00;
  const roundedShift = (full: number, shift: number) => {
    const kept = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return rest > half || (rest === half && kept & 1) ? kept + 1 : kept;
  };
  if (exponent <= 0) return exponent < -10 ? sign : sign | roundedShift(mantissa | 0x800000, 14 - exponent);
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  return sign | roundedShift((exponent << 23) | mantissa, 13);
}

/** The weight specs and bytes of `artifacts` in `precision`: float32 weights become float16 halves. */
function storedWeights(
  artifacts: tf.io.ModelArtifacts,
  precision: WeightPrecision,
): { specs: tf.io.WeightsManifestEntry[]; bytes: Uint8Array } {
  const specs = artifacts.weightSpecs ?? [];
  const data = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
  if (precision === 'float32') return { specs, bytes: new Uint8Array(data) };
  if (specs.some((spec) => spec.dtype !== 'float32'))
    throw new ExportError('float16 weights: every weight must be float32');
  const halves = Uint16Array.from(new Float32Array(data), float16Bits);
  return {
    specs: specs.map((spec) => ({ ...spec, quantization: { dtype: 'float16' } })),
    bytes: new Uint8Array(halves.buffer),
  };
}

/** model.json's text and weights.bin's bytes of a layers model's artifacts, exactly as saved. */
export function layersModelFiles(
  artifacts: tf.io.ModelArtifacts,
  precision: WeightPrecision,
): { modelJson: string; weights: Uint8Array } {
  if (artifacts.modelTopology instanceof ArrayBuffer)
    throw new ExportError('only layers models (JSON topology) can be saved to a folder');
  const { specs, bytes } = storedWeights(artifacts, precision);
  const modelJson: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology ?? {},
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [EXPORT_FILES.layersWeights], weights: specs }],
  };
  return { modelJson: JSON.stringify(modelJson), weights: bytes };
}

async function readWeightFile(path: string, modelJson: string): Promise<ArrayBuffer> {
  try {
    const bytes = await readFile(path);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ExportError(`${path}: ${missing ? `file not found (${modelJson} lists it)` : messageOf(error)}`);
  }
}

/** Saves a layers model as model.json + weights.bin in `dir` (weights in `precision`), and loads one from there. */
export function layersFolderHandler(dir: string, precision: WeightPrecision = 'float32'): tf.io.IOHandler {
  const modelPath = join(dir, EXPORT_FILES.layersModel);
  return {
    async save(artifacts) {
      const { modelJson, weights } = layersModelFiles(artifacts, precision);
      await writeFileFlushed(join(dir, EXPORT_FILES.layersWeights), weights);
      await writeFileFlushed(modelPath, modelJson);
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },

    async load() {
      const modelJson = await readJsonFile(modelPath, ModelJsonSchema).catch((error: unknown) => {
        throw new ExportError(messageOf(error));
      });
      const buffers: ArrayBuffer[] = [];
      for (const group of modelJson.weightsManifest) {
        const paths = group.paths.map((name) => join(dir, name));
        const shards = await Promise.all(paths.map((path) => readWeightFile(path, modelPath)));
        const found = shards.reduce((n, shard) => n + shard.byteLength, 0);
        const expected = group.weights.reduce((n, spec) => n + byteSize(spec), 0);
        if (found !== expected) {
          throw new ExportError(
            `${paths.join(' + ')}: ${found} bytes, but ${modelPath} describes ${expected} bytes of weights (${found < expected ? 'truncated' : 'extra bytes'})`,
          );
        }
        buffers.push(...shards);
      }
      return {
        modelTopology: modelJson.modelTopology,
        format: modelJson.format,
        generatedBy: modelJson.generatedBy,
        convertedBy: modelJson.convertedBy,
        weightSpecs: modelJson.weightsManifest.flatMap((group) => group.weights),
        weightData: tf.io.CompositeArrayBuffer.join(buffers),
      };
    },
  };
}

/**
 * tf.loadLayersModel on a folder, any failure an ExportError naming the model file. The weights
 * are set in a second step so that a model whose weights do not fit is disposed, not leaked
 * (tf.loadLayersModel keeps a half-loaded model's variables when setting its weights fails).
 */
export async function loadLayersModelFromFolder(dir: string): Promise<tfl.LayersModel> {
  const fail = (error: unknown): never => {
    if (error instanceof ExportError) throw error;
    throw new ExportError(
      `${join(dir, EXPORT_FILES.layersModel)}: not a loadable TensorFlow.js layers model with its weights: ${messageOf(error)}`,
    );
  };
  const { weightData, weightSpecs, ...topology } = await layersFolderHandler(dir).load!();
  const model = await tfl.loadLayersModel(tf.io.fromMemory(topology)).catch(fail);
  try {
    const weights = tf.io.decodeWeights(weightData!, weightSpecs!);
    try {
      model.loadWeights(weights, true);
    } finally {
      tf.dispose(Object.values(weights));
    }
  } catch (error) {
    model.dispose();
    fail(error);
  }
  return model;
}
