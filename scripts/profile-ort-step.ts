/**
 * Where the ort backend's compiled training step spends its time, per ONNX operator type:
 *   npx tsx scripts/profile-ort-step.ts [method=multiway] [arch=resnet20|resnet56|mobilenet|FILE.onnx] [batch=128]
 * Runs a few steps with onnxruntime's profiler on (MwResNet: 28x28x1, exits after the first and
 * second stage; resnet56 and mobilenet (width 0.5, exits 4, 8): 32x32x3; an imported backbone at
 * its own input size with its default exits), then sums the node
 * events of the last step by operator and prints their shares of the step, and the slowest nodes.
 */
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { ArchSpec, Method } from '../shared/spec.js';
import { initBackend } from '../electron/engine/backend/index.js';
import { onnxConvolutionSupport } from '../electron/engine/backend/ortConvolutions/index.js';
import { buildNetwork } from '../electron/engine/models/index.js';
import { inspectBackbone } from '../electron/engine/models/import/network.js';
import { createTrainingMethod } from '../electron/engine/train/methods.js';
import { OrtTrainingMethod } from '../electron/engine/train/ort/method.js';

const method = (process.argv[2] ?? 'multiway') as Method;
const which = process.argv[3] ?? 'resnet20';
const batch = Number(process.argv[4] ?? 128);
const steps = 3;
const ARCHS: Record<string, { arch: ArchSpec; shape: [number, number, number] }> = {
  resnet20: { arch: { family: 'resnet', depth: 20, width: 1, exits: [3, 6] }, shape: [28, 28, 1] },
  resnet56: { arch: { family: 'resnet', depth: 56, width: 1, exits: [9, 18] }, shape: [32, 32, 3] },
  mobilenet: { arch: { family: 'mobilenet', width: 0.5, exits: [4, 8] }, shape: [32, 32, 3] },
};
await initBackend('ort');
const { arch, shape } = which.endsWith('.onnx')
  ? { arch: { family: 'imported', backbone: which } as ArchSpec, shape: inspectBackbone(which).inputShape }
  : ARCHS[which]!;
const net = buildNetwork(arch, shape, 10, 0);
const hyper = { lr: 0.1, momentum: 0.9, weightDecay: 1e-4, gamma: 2 };
const prefix = join(tmpdir(), `ort-step-${process.pid}`);
const training = new OrtTrainingMethod(net, createTrainingMethod(method, net, hyper), hyper, {
  ...onnxConvolutionSupport(),
  session: { enableProfiling: true, profileFilePrefix: prefix },
});
const x = tf.randomNormal([batch, ...shape]) as tf.Tensor4D;
const labels = tf.tensor1d(
  Array.from({ length: batch }, (_, i) => i % 10),
  'int32',
);
const wall: number[] = [];
for (let s = 0; s < steps; s++) {
  const start = performance.now();
  tf.dispose(Object.values(training.step(x, labels, 1)));
  wall.push(performance.now() - start);
}
training.endProfiling();

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string; input_type_shape?: Record<string, number[]>[] };
}
const file = (await import('node:fs')).readdirSync(tmpdir()).find((f) => f.startsWith(`ort-step-${process.pid}`))!;
const events = JSON.parse(await readFile(join(tmpdir(), file), 'utf8')) as ProfileEvent[];
await rm(join(tmpdir(), file));
const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
const lastRun = runs.at(-1)!;
// Node events of the last run: they follow the previous model_run in the file.
const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
const perRun = nodes.length / runs.length;
const last = nodes.slice(nodes.length - perRun);
const byOp = new Map<string, { us: number; count: number }>();
for (const e of last) {
  const op = e.args?.op_name ?? '?';
  const entry = byOp.get(op) ?? { us: 0, count: 0 };
  entry.us += e.dur;
  entry.count++;
  byOp.set(op, entry);
}
const total = [...byOp.values()].reduce((a, b) => a + b.us, 0);
console.log(
  `${net.description.name} ${method}, batch ${batch}: step ${wall.at(-1)!.toFixed(1)} ms wall, onnxruntime run ${(lastRun.dur / 1000).toFixed(1)} ms, operators ${(total / 1000).toFixed(1)} ms (${last.length} nodes)`,
);
for (const [op, { us, count }] of [...byOp].sort((a, b) => b[1].us - a[1].us)) {
  console.log(
    `${op.padEnd(22)} ${(us / 1000).toFixed(1).padStart(8)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${count} nodes`,
  );
}
// The slowest single nodes, with their input shapes: which layer an operator's share comes from.
const shapes = (e: ProfileEvent) =>
  (e.args?.input_type_shape ?? []).map((t) => Object.values(t)[0]!.join('x')).join(', ');
console.log('\nslowest nodes:');
for (const e of [...last].sort((a, b) => b.dur - a.dur).slice(0, 15))
  console.log(`${(e.dur / 1000).toFixed(1).padStart(8)} ms  ${(e.args?.op_name ?? '?').padEnd(14)} ${shapes(e)}`);
training.release();
for (const opt of training.optimizers) opt.disposeState();
net.dispose();
