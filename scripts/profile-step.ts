/**
 * Where a training step's time goes, per kernel:
 *   npx tsx scripts/profile-step.ts [method=multiway] [batch=128] [backend=auto] [depth=20]
 * Uses tf.profile on one MwResNet step (exits after the first and second stage) after a warm-up
 * step. On webgpu the kernel times come from GPU timestamps (SwiftShader has them too), and the
 * step is timed until its losses are read back.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Method } from '../shared/spec.js';
import { initBackend, type BackendPreference } from '../electron/engine/backend/index.js';
import { buildNetwork } from '../electron/engine/models/index.js';
import { createTrainingMethod } from '../electron/engine/train/methods.js';

const method = (process.argv[2] ?? 'multiway') as Method;
const batch = Number(process.argv[3] ?? 128);
const backend = await initBackend((process.argv[4] ?? 'auto') as BackendPreference);
const depth = Number(process.argv[5] ?? 20);
const stage = (depth - 2) / 6;
const net = buildNetwork({ family: 'resnet', depth, width: 1, exits: [stage, 2 * stage] }, [28, 28, 1], 10, 0);
const training = createTrainingMethod(method, net, { lr: 0.1, momentum: 0.9, weightDecay: 1e-4, gamma: 2 });
const x = tf.randomNormal([batch, 28, 28, 1]) as tf.Tensor4D;
const labels = tf.tensor1d(
  Array.from({ length: batch }, (_, i) => i % 10),
  'int32',
);
/** One step, until its losses are read (what a GPU step costs includes waiting for it). */
async function step(): Promise<void> {
  const result = training.step(x, labels, 1);
  await result.losses.data();
  tf.dispose(Object.values(result));
}
await step();
const start = performance.now();
const info = await tf.profile(step);
const wall = performance.now() - start;
const byKernel = new Map<string, { ms: number; calls: number }>();
for (const k of info.kernels) {
  const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
  // A promise on webgpu (GPU timestamps), a number elsewhere.
  entry.ms += Number(await k.kernelTimeMs);
  entry.calls++;
  byKernel.set(k.name, entry);
}
const rows = [...byKernel].sort((a, b) => b[1].ms - a[1].ms);
const total = rows.reduce((s, [, v]) => s + v.ms, 0);
console.log(
  `${backend.label}: ${method} step, batch ${batch}: ${wall.toFixed(0)} ms wall (profiled), kernels ${total.toFixed(0)} ms`,
);
for (const [name, v] of rows.slice(0, 20))
  console.log(
    `${name.padEnd(40)} ${v.ms.toFixed(1).padStart(8)} ms ${((100 * v.ms) / total).toFixed(1).padStart(5)}%  ${v.calls} calls`,
  );
