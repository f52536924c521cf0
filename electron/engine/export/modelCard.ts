/**
 * The model card written beside every export (model-card.json for programs, MODEL_CARD.md for
 * people): what the model is, how it was trained, how well and how fast it runs, and exactly
 * how to prepare its input. The schema below is the file's one description: the writer's type
 * is inferred from it and every reader parses with it (the folder may come from anywhere).
 * buildModelCard.ts fills it in, modelCardMarkdown.ts writes it for people.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { DeploymentReportSchema, EXPORT_FORMATS } from '../../../shared/deployment.js';
import { LatencySchema } from '../../../shared/metrics.js';
import { METHODS } from '../../../shared/spec.js';
import { ExportError, messageOf } from '../errors.js';
import { readJsonFile } from '../runs/files.js';
import { EXPORT_FILES } from './folder.js';

const count = z.number().int().nonnegative();
const probability = z.number().min(0).max(1);
const positiveInt = z.number().int().positive();

export const PreprocessingSchema = z.object({
  /** Name of the model's input. */
  input: z.string(),
  layout: z.literal('NHWC'),
  dtype: z.literal('float32'),
  /** [batch, height, width, channels]; the batch size is free. */
  shape: z.tuple([z.string(), positiveInt, positiveInt, positiveInt]),
  channelOrder: z.string(),
  /** Per channel, of pixels scaled to [0, 1], measured on the training images. */
  mean: z.array(z.number()),
  std: z.array(z.number().positive()),
  formula: z.string(),
});
export type Preprocessing = z.infer<typeof PreprocessingSchema>;

export const ExitCardSchema = z.object({
  index: count,
  block: count,
  layer: count,
  final: z.boolean(),
  label: z.string(),
  /** Name of the model output holding this exit's logits. */
  output: z.string(),
  params: count,
  macs: count,
  /** The exit's weight in the training loss (lambda). */
  lossWeight: z.number(),
  /** On the run's test set; absent until the run finished. */
  top1: probability.optional(),
  top5: probability.optional(),
  /** Top-1 of the exported file itself on the held-out images (deployment.accuracy says which), by weight precision. */
  exportedTop1: z.object({ float32: probability, float16: probability.optional(), int8: probability.optional() }),
  latencyMs: z.object({
    /**
     * Measured by the run on its backend (the sub-model alone), when it finished; `runtime` says
     * what ran it where not the backend's own kernels (wasm-ort: onnxruntime, the whole sub-model).
     */
    run: z
      .object({
        backend: z.string(),
        runtime: z.string().optional(),
        device: z.string(),
        batch1: LatencySchema,
        batch32: LatencySchema,
      })
      .optional(),
    /** Measured at export with onnxruntime-node on the CPU. */
    onnxruntime: z.object({ version: z.string(), device: z.string(), batch1: LatencySchema }).optional(),
  }),
});
export type ExitCard = z.infer<typeof ExitCardSchema>;

export const ModelCardSchema = z
  .object({
    title: z.string(),
    createdAt: z.string(),
    format: z.enum(EXPORT_FORMATS),
    /** The model's files in the folder (besides the two card files). */
    files: z.array(z.string()),
    /** Hex SHA-256 of each model file (early-exit metadata aside): loading refuses a file that differs. */
    sha256: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/, 'must be a hex SHA-256')),
    network: z.string(),
    run: z.object({
      folder: z.string(),
      method: z.enum(METHODS),
      methodLabel: z.string(),
      /** Loss-weight exponent the exit weights derive from. */
      gamma: z.number(),
      seed: z.number().int(),
      epochs: count,
      batchSize: positiveInt,
      learningRate: z.number().positive(),
      finishedAt: z.string().optional(),
    }),
    dataset: z.object({
      name: z.string(),
      source: z.string(),
      classes: z.array(z.string()).min(2),
      trainImages: count,
      testImages: count,
    }),
    /** Exported exits, shallowest first (one unless the format is 'multi'). */
    exits: z.array(ExitCardSchema).min(1),
    outputs: z.string(),
    preprocessing: PreprocessingSchema,
    earlyExit: z.object({ file: z.string(), threshold: z.number().gt(0).max(1) }).optional(),
    /** The exported model against the trained network on random inputs, before writing. */
    verification: z.object({ images: positiveInt, maxAbsDiff: z.number().nonnegative() }),
    /** Re-scored accuracy, sizes of every format, onnxruntime float32 / int8 latency. */
    deployment: DeploymentReportSchema,
  })
  .refine((card) => card.preprocessing.mean.length === card.preprocessing.shape[3], {
    message: 'preprocessing.mean must have one value per input channel',
    path: ['preprocessing', 'mean'],
  })
  .refine((card) => card.preprocessing.std.length === card.preprocessing.shape[3], {
    message: 'preprocessing.std must have one value per input channel',
    path: ['preprocessing', 'std'],
  });
export type ModelCard = z.infer<typeof ModelCardSchema>;

/** early-exit.json, beside a multi-exit model: how a runtime picks its answer from the model's outputs. */
export const EarlyExitFileSchema = z.object({
  /** The model file it applies to. */
  model: z.string(),
  threshold: z.number().gt(0).max(1),
  rule: z.string(),
  exits: z
    .array(
      ExitCardSchema.pick({
        output: true,
        index: true,
        block: true,
        layer: true,
        final: true,
        params: true,
        macs: true,
        top1: true,
      }),
    )
    .min(1),
  classes: z.array(z.string()).min(2),
  preprocessing: PreprocessingSchema,
});
export type EarlyExitFile = z.infer<typeof EarlyExitFileSchema>;

/** The model card of the export folder `dir`, validated: any problem is an ExportError naming the file. */
export async function readModelCard(dir: string): Promise<ModelCard> {
  return readJsonFile(join(dir, EXPORT_FILES.cardJson), ModelCardSchema).catch((error: unknown) => {
    throw new ExportError(`${messageOf(error)}: not a model card Mw Studio can read (export the model again)`);
  });
}
