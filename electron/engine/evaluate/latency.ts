/**
 * Latency of each exit's sub-model measured on the active backend (on wasm-ort: in onnxruntime,
 * as one graph; on webgpu: on the GPU, read back to finish).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ExitReport, Latency } from '../../../shared/metrics.js';
import type { MwNetwork } from '../models/network.js';
import { onnxKernelsActive } from '../backend/ortConvolutions/index.js';
import { webGpuRuntime } from '../backend/webgpu/index.js';
import { ONNX_TIMING, onnxBatchLatency } from '../onnx/runtime.js';
import { openSubModelSession } from '../models/onnxSubModel.js';
import { timeRepeated, type LatencyOptions } from '../timing.js';

/**
 * Median and p90 wall time of `forward`, including reading its outputs back, which is what
 * makes an asynchronous backend (GPU) finish the work being timed.
 */
export async function measureLatency(forward: () => tf.Tensor[], options: LatencyOptions = {}): Promise<Latency> {
  return timeRepeated(async () => {
    const outputs = tf.tidy(forward);
    await Promise.all(outputs.map((t) => t.data()));
    tf.dispose(outputs);
  }, options);
}

/** What runs inference where onnxruntime's kernels are on (wasm-ort), and the label latencies carry. */
export const SUB_MODEL_RUNTIME = 'onnxruntime CPU, whole sub-model';

/**
 * Latency of exit k's standalone sub-model at batch 1 and 32, on random input of the network's
 * shape. On the portable path (wasm-ort) the sub-model runs as one onnxruntime graph built from
 * the current weights: calling onnxruntime once per tfjs kernel took 8-9x as long at batch 1
 * (npm run bench), and a whole graph is also how the exported model runs.
 */
export async function exitLatency(
  net: MwNetwork,
  exit: number,
  options: LatencyOptions = {},
): Promise<ExitReport['latencyMs']> {
  const [h, w, c] = net.description.inputShape;
  if (onnxKernelsActive()) {
    const session = await openSubModelSession(net, [exit]);
    try {
      const timeAt = (batch: number) => onnxBatchLatency(session, [h, w, c], batch, { ...ONNX_TIMING, ...options });
      return { batch1: await timeAt(1), batch32: await timeAt(32), runtime: SUB_MODEL_RUNTIME };
    } finally {
      await session.release();
    }
  }
  const timeAt = async (batch: number) => {
    // Made before the clock starts; measureLatency's read-back is what waits for a GPU to finish.
    const x = tf.randomNormal([batch, h, w, c]);
    try {
      return await measureLatency(() => net.predict(x, { upToExit: exit, onlyLast: true }), options);
    } finally {
      x.dispose();
    }
  };
  const runtime = webGpuRuntime();
  return { batch1: await timeAt(1), batch32: await timeAt(32), ...(runtime ? { runtime } : {}) };
}
