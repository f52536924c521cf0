/**
 * What an export reports about deployment, in its model card and to the face that asked for it:
 * the exported file's own accuracy on the run's held-out images, the on-disk size of every
 * format, and onnxruntime batch-1 latency of float32 against int8.
 */
import { z } from 'zod';
import { LatencySchema } from './metrics.js';

export const EXPORT_FORMATS = ['tfjs', 'onnx', 'onnx-int8', 'multi', 'multi-onnx-int8'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** How each format is written: the runtime that loads it, every exit up to the chosen one or that one alone, int8 weights. */
export const EXPORT_FORMAT_KINDS: Record<ExportFormat, { runtime: 'tfjs' | 'onnx'; multiExit: boolean; int8: boolean }> = {
  tfjs: { runtime: 'tfjs', multiExit: false, int8: false },
  onnx: { runtime: 'onnx', multiExit: false, int8: false },
  'onnx-int8': { runtime: 'onnx', multiExit: false, int8: true },
  multi: { runtime: 'tfjs', multiExit: true, int8: false },
  'multi-onnx-int8': { runtime: 'onnx', multiExit: true, int8: true },
};

/** An export more than this many top-1 points below the engine's own figure is flagged. */
export const ACCURACY_TOLERANCE_POINTS = 0.5;

const bytes = z.number().int().nonnegative();
const fraction = z.number().min(0).max(1);

export const DeploymentReportSchema = z.object({
  /** Top-1 of the exported file(s) at the chosen exit, by weight precision: float32 always, int8 when the export is int8. */
  accuracy: z.object({
    split: z.string(),
    images: z.number().int().nonnegative(),
    float32: fraction,
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
