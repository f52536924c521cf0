/**
 * Running exported ONNX models with onnxruntime-node (CPU execution provider): opening a file or
 * bytes with errors that name the file, inference on NHWC batches, and batch-1 latency.
 */
import * as ort from 'onnxruntime-node';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import type { Latency } from '../../../shared/metrics.js';
import type { FeatureShape } from '../models/layers.js';
import { ExportError, messageOf } from './errors.js';

/** Opens a model from a file or from bytes (`label` names them in errors). */
export async function openOnnxSession(source: string | Uint8Array, label = typeof source === 'string' ? source : 'the ONNX model'): Promise<ort.InferenceSession> {
  if (typeof source === 'string') {
    const info = await stat(source).catch(() => undefined);
    if (!info?.isFile()) throw new ExportError(`${label}: file not found`);
  }
  try {
    return typeof source === 'string' ? await ort.InferenceSession.create(source) : await ort.InferenceSession.create(source);
  } catch (error) {
    throw new ExportError(`${label}: onnxruntime cannot load it as an ONNX model: ${messageOf(error)}`);
  }
}

/** Every output of the session (in its output order) for one NHWC float32 batch. */
export async function runOnnx(session: ort.InferenceSession, images: Float32Array, shape: FeatureShape): Promise<Float32Array[]> {
  const batch = images.length / (shape[0] * shape[1] * shape[2]);
  const input = new ort.Tensor('float32', images, [batch, ...shape]);
  const results = await session.run({ [session.inputNames[0]!]: input });
  return session.outputNames.map((name) => results[name]!.data as Float32Array);
}

/** Median and p90 wall time of one batch-1 inference: a few untimed runs, then up to `budgetMs` of timed ones. */
export async function onnxLatency(session: ort.InferenceSession, shape: FeatureShape, budgetMs = 300): Promise<Latency> {
  const image = new Float32Array(shape[0] * shape[1] * shape[2]).map((_, i) => Math.sin(i));
  for (let i = 0; i < 3; i++) await runOnnx(session, image, shape);
  const times: number[] = [];
  const begin = performance.now();
  while (times.length < 10 || (times.length < 200 && performance.now() - begin < budgetMs)) {
    const start = performance.now();
    await runOnnx(session, image, shape);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const at = (p: number) => times[Math.min(times.length - 1, Math.round((times.length - 1) * p))]!;
  return { median: at(0.5), p90: at(0.9) };
}

/** What ran the ONNX timings, for the model card. */
export function onnxRuntimeInfo(): { version: string; device: string } {
  return { version: ort.env.versions.node ?? ort.env.versions.common, device: `${os.cpus()[0]?.model.trim() ?? os.arch()} (CPU execution provider)` };
}
