/**
 * What an export reports about deployment, in its model card and to the face that asked for it:
 * the exported file's own accuracy on the run's held-out images, the on-disk size of every
 * format, and onnxruntime batch-1 latency of float32 against int8.
 */
import { z } from 'zod';
import { LatencySchema } from './metrics.js';

export const EXPORT_FORMATS = ['tfjs', 'tfjs-float16', 'onnx', 'onnx-int8', 'multi', 'multi-onnx-int8'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Precision of a format's stored weights. */
export type WeightPrecision = 'float32' | 'float16' | 'int8';

/** How each format is written: the runtime that loads it, every exit up to the chosen one or that one alone, its weights. */
export const EXPORT_FORMAT_KINDS: Record<
  ExportFormat,
  { runtime: 'tfjs' | 'onnx'; multiExit: boolean; weights: WeightPrecision }
> = {
  tfjs: { runtime: 'tfjs', multiExit: false, weights: 'float32' },
  'tfjs-float16': { runtime: 'tfjs', multiExit: false, weights: 'float16' },
  onnx: { runtime: 'onnx', multiExit: false, weights: 'float32' },
  'onnx-int8': { runtime: 'onnx', multiExit: false, weights: 'int8' },
  multi: { runtime: 'tfjs', multiExit: true, weights: 'float32' },
  'multi-onnx-int8': { runtime: 'onnx', multiExit: true, weights: 'int8' },
};

/** An export more than this many top-1 points below the engine's own figure is flagged. */
export const ACCURACY_TOLERANCE_POINTS = 0.5;

const bytes = z.number().int().nonnegative();
const fraction = z.number().min(0).max(1);

export const DeploymentReportSchema = z.object({
  /**
   * Top-1 at the chosen exit by weight precision: the exported file's own, and for a float16 or
   * int8 export also the float32 model it was made from.
   */
  accuracy: z.object({
    split: z.string(),
    images: z.number().int().nonnegative(),
    float32: fraction,
    float16: fraction.optional(),
    int8: fraction.optional(),
    /** The engine's own top-1 for the exit, when the run finished. */
    engine: fraction.optional(),
  }),
  /** One line per exported exit and precision more than ACCURACY_TOLERANCE_POINTS below the engine. */
  warnings: z.array(z.string()),
  /** Bytes on disk of the model files in each format (the card files aside). */
  sizes: z.object({ onnxFloat32: bytes, onnxInt8: bytes, tfjsFloat32: bytes, tfjsFloat16: bytes }),
  /** onnxruntime-node on this machine's CPU, batch 1, the exported sub-model. */
  onnxruntimeBatch1: z.object({ float32: LatencySchema, int8: LatencySchema, version: z.string(), device: z.string() }),
});
export type DeploymentReport = z.infer<typeof DeploymentReportSchema>;
