/**
 * Running exported ONNX models with onnxruntime-node (CPU execution provider): opening a file or
 * bytes with errors that name the file, inference on NHWC batches, and batch-1 latency.
 */
import * as ort from 'onnxruntime-node';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import type { Latency } from '../../../shared/metrics.js';
import { ExportError, messageOf } from '../errors.js';
import { timeRepeated, type LatencyOptions } from '../timing.js';

/** Height, width, channels of one NHWC image. */
export type ImageShape = readonly [number, number, number];

/** Opens a model from a file or from bytes (`label` names them in errors). */
export async function openOnnxSession(
  source: string | Uint8Array,
  label = typeof source === 'string' ? source : 'the ONNX model',
): Promise<ort.InferenceSession> {
  if (typeof source === 'string') {
    const info = await stat(source).catch(() => undefined);
    if (!info?.isFile()) throw new ExportError(`${label}: file not found`);
  }
  try {
    return typeof source === 'string'
      ? await ort.InferenceSession.create(source)
      : await ort.InferenceSession.create(source);
  } catch (error) {
    throw new ExportError(`${label}: onnxruntime cannot load it as an ONNX model: ${messageOf(error)}`);
  }
}

/** Every output of the session (in its output order) for one NHWC float32 batch. */
export async function runOnnx(
  session: ort.InferenceSession,
  images: Float32Array,
  shape: ImageShape,
): Promise<Float32Array[]> {
  const batch = images.length / (shape[0] * shape[1] * shape[2]);
  const input = new ort.Tensor('float32', images, [batch, ...shape]);
  const results = await session.run({ [session.inputNames[0]!]: input });
  return session.outputNames.map((name) => results[name]!.data as Float32Array);
}

/** How onnxruntime latencies are timed: a fresh session's first runs set up its memory arenas. */
export const ONNX_TIMING: LatencyOptions = { warmup: 3, minRepeats: 10, maxRepeats: 200, budgetMs: 300 };

/** Median and p90 wall time of one batch-1 inference: a few untimed runs, then up to `budgetMs` of timed ones. */
export async function onnxLatency(session: ort.InferenceSession, shape: ImageShape, budgetMs = 300): Promise<Latency> {
  return onnxBatchLatency(session, shape, 1, { ...ONNX_TIMING, budgetMs });
}

/** Median and p90 wall time of one inference on a batch of `batch` images. */
export async function onnxBatchLatency(
  session: ort.InferenceSession,
  shape: ImageShape,
  batch: number,
  options: LatencyOptions = {},
): Promise<Latency> {
  const images = new Float32Array(batch * shape[0] * shape[1] * shape[2]).map((_, i) => Math.sin(i));
  return timeRepeated(async () => void (await runOnnx(session, images, shape)), options);
}

/** What ran the ONNX timings, for the model card. */
export function onnxRuntimeInfo(): { version: string; device: string } {
  return {
    version: ort.env.versions.node ?? ort.env.versions.common,
    device: `${os.cpus()[0]?.model.trim() ?? os.arch()} (CPU execution provider)`,
  };
}
