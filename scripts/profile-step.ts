/**
 * Where a training step's time goes, per kernel, on the active backend:
 *   npx tsx scripts/profile-step.ts [method=multiway] [batch=128]
 * Uses tf.profile on one MwResNet-20 (exits 3,6) step after a warm-up step.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Method } from '../shared/spec.js';
import { initBackend } from '../electron/engine/backend/index.js';
import { buildNetwork } from '../electron/engine/models/index.js';
import { createTrainingMethod } from '../electron/engine/train/methods.js';

const method = (process.argv[2] ?? 'multiway') as Method;
const batch = Number(process.argv[3] ?? 128);
const backend = await initBackend();
const net = buildNetwork({ family: 'resnet', depth: 20, width: 1, exits: [3, 6] }, [28, 28, 1], 10, 0);
const training = createTrainingMethod(method, net, { lr: 0.1, momentum: 0.9, weightDecay: 1e-4, gamma: 2 });
const x = tf.randomNormal([batch, 28, 28, 1]) as tf.Tensor4D;
const labels = tf.tensor1d(
  Array.from({ length: batch }, (_, i) => i % 10),
  'int32',
);
tf.dispose(Object.values(training.step(x, labels, 1)));
const start = performance.now();
const info = await tf.profile(() => {
  tf.dispose(Object.values(training.step(x, labels, 1)));
});
const wall = performance.now() - start;
const byKernel = new Map<string, { ms: number; calls: number }>();
for (const k of info.kernels) {
  const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
  entry.ms += Number(k.kernelTimeMs);
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
