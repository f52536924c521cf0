/**
 * The webgpu backend on a real adapter (SwiftShader where there is no GPU, so sizes stay tiny:
 * it runs convolutions at about 0.2 GFLOP/s): the kernels training uses against the cpu
 * backend, one step of every method against wasm (an imported torchvision network's too), the
 * analyses against wasm, and a run that trains, stops and resumes, leaking nothing. Skipped with one line where no adapter can be created; a failure under CI=true.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import type { LesionStudy, SupervisionShares } from '../../shared/analysis.js';
import type { ArchSpec, Method, RunConfigInput } from '../../shared/spec.js';
import type { RunEvent } from '../../shared/metrics.js';
import { exitProbabilities, lesionStudy, supervisionShares } from '../../electron/engine/analysis/index.js';
import { initBackend, summarizeBackend } from '../../electron/engine/backend/index.js';
import {
  channelAffine,
  channelAffine2,
  channelSum,
  channelSums,
  reluGrad,
} from '../../electron/engine/backend/channelOps.js';
import {
  conv2dFilterGrad,
  conv2dInputGrad,
  depthwiseFilterGrad,
  depthwiseInputGrad,
  type ExplicitPad,
} from '../../electron/engine/backend/convGradientOps.js';
import { loadDataset, makeBatch } from '../../electron/engine/data/index.js';
import { IDX_FILES, encodeIdx } from '../../electron/engine/data/idx.js';
import { buildNetwork } from '../../electron/engine/models/index.js';
import { Random } from '../../electron/engine/random.js';
import { RunFolder } from '../../electron/engine/runs/store.js';
import { openRun } from '../../electron/engine/session.js';
import { createTrainingMethod } from '../../electron/engine/train/methods.js';
import type { Trainer } from '../../electron/engine/train/trainer.js';
import { expectSameWeights } from './helpers.js';
import { exportTorchvision, type ExportRequest } from './import/torchvision.js';
import { webGpuForTests } from './webgpu.js';

const webgpu = await webGpuForTests();
/**
 * A small torchvision network (a quarter of mobilenet_v3_small's width) at 64x64, where its last
 * maps are 2x2: at 32x32 they are 1x1, and batch norm over 4 values makes the step chaotic.
 * Opset 17 exports hard-swish as one operator; batch norm stays as nodes.
 */
const IMPORTED: ExportRequest = {
  name: 'mobilenet_v3_small',
  kwargs: { width_mult: 0.25 },
  opset: 17,
  fold: false,
  size: 64,
  batch: 1,
};
const imported = webgpu ? exportTorchvision([IMPORTED], 'an imported network on webgpu') : undefined;
afterAll(() => imported?.dispose());

function randomValues(size: number, seed: number, scale = 1): Float32Array {
  const rng = new Random(seed);
  return Float32Array.from({ length: size }, () => (rng.next() * 2 - 1) * scale);
}

/** Runs `compute` on tfjs backend `name` and reads its outputs back (asynchronously: webgpu cannot read synchronously in Node). */
async function valuesOn(name: string, compute: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(name);
  const outputs = tf.tidy(compute);
  const values = await Promise.all(outputs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outputs);
  return values;
}

/** Largest |a - b| over the largest |b| of each pair (at least `floor`). */
function worstRelative(actual: Float32Array[], expected: Float32Array[], floor = 1e-6): number {
  expect(actual.map((a) => a.length)).toEqual(expected.map((e) => e.length));
  let worst = 0;
  actual.forEach((a, k) => {
    const e = expected[k]!;
    const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), floor);
    a.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - e[i]!) / scale)));
  });
  return worst;
}

const SAME_3X3: ExplicitPad = [
  [0, 0],
  [1, 1],
  [1, 1],
  [0, 0],
];

describe.runIf(webgpu)('webgpu kernels against the cpu backend', () => {
  // 13x13: 338 pixels, more than one chunk of the split filter gradient (convKernels.ts); one
  // input channel: the stem's scalar loads.
  for (const { stride, size, cin } of [
    { stride: 1, size: 6, cin: 4 },
    { stride: 2, size: 7, cin: 4 },
    { stride: 2, size: 6, cin: 4 },
    { stride: 1, size: 13, cin: 1 },
  ]) {
    it(`convolutions and their gradients, ${size}x${size}x${cin}, stride ${stride}`, async () => {
      const [n, cout] = [2, 8];
      const out = Math.ceil(size / stride);
      const x = randomValues(n * size * size * cin, 1);
      const filter = randomValues(9 * cin * cout, 2, 0.5);
      const depthwiseFilter = randomValues(9 * cin, 3, 0.5);
      const dy = randomValues(n * out * out * cout, 4);
      const dyDepthwise = randomValues(n * out * out * cin, 5);
      const xShape: [number, number, number, number] = [n, size, size, cin];
      const compute = () => {
        const xt = tf.tensor4d(x, xShape);
        const ft = tf.tensor4d(filter, [3, 3, cin, cout]);
        const dt = tf.tensor4d(depthwiseFilter, [3, 3, cin, 1]);
        const dyt = tf.tensor4d(dy, [n, out, out, cout]);
        const dydt = tf.tensor4d(dyDepthwise, [n, out, out, cin]);
        return [
          tf.conv2d(xt, ft, stride, SAME_3X3),
          conv2dFilterGrad(xt, dyt, [3, 3, cin, cout], stride, SAME_3X3),
          conv2dInputGrad(xShape, dyt, ft, stride, SAME_3X3),
          tf.depthwiseConv2d(xt, dt, stride, SAME_3X3),
          depthwiseFilterGrad(xt, dydt, [3, 3, cin, 1], stride, SAME_3X3),
          depthwiseInputGrad(xShape, dydt, dt, stride, SAME_3X3),
        ];
      };
      const expected = await valuesOn('cpu', compute);
      const actual = await valuesOn('webgpu', compute);
      expect(worstRelative(actual, expected)).toBeLessThan(1e-5);
    });
  }

  // [2,13,13,8]: 338 rows of channels, more than one chunk of the WGSL per-channel sums.
  for (const shape of [
    [2, 5, 5, 8],
    [2, 13, 13, 8],
  ])
    it(`batch norm's and ReLU's element-wise steps and per-channel sums, ${shape.join('x')}`, async () => {
      const size = shape.reduce((a, b) => a * b, 1);
      const [x, y, a, b, c] = [
        randomValues(size, 6),
        randomValues(size, 7),
        randomValues(8, 8),
        randomValues(8, 9),
        randomValues(8, 10),
      ];
      const compute = () => {
        const [xt, yt] = [tf.tensor(x, shape), tf.tensor(y, shape)];
        const [at, bt, ct] = [tf.tensor1d(a), tf.tensor1d(b), tf.tensor1d(c)];
        return [
          channelAffine(xt, at, bt),
          channelAffine2(xt, at, yt, bt, ct),
          ...channelSums(xt, yt),
          channelSum(xt),
          reluGrad(yt, xt),
        ];
      };
      const expected = await valuesOn('cpu', compute);
      const actual = await valuesOn('webgpu', compute);
      expect(worstRelative(actual, expected)).toBeLessThan(1e-5);
    });
});

const CLASSES = 4;
const BATCH = 4;
const HYPER = { lr: 0.1, momentum: 0.9, weightDecay: 1e-4, gamma: 2 };

/** Every parameter and the step's per-exit losses after one step of `method` on `backendName`, on size x size images. */
async function afterOneStep(
  backendName: 'wasm' | 'webgpu',
  arch: ArchSpec,
  method: Method,
  size: number,
): Promise<Float32Array[]> {
  await initBackend(backendName);
  // An imported network brings its own input shape (three channels); the engine's families take `size`.
  const net = buildNetwork(arch, [size, size, 1], CLASSES, 5);
  const shape = net.description.inputShape;
  const x = tf.tensor4d(randomValues(BATCH * shape[0] * shape[1] * shape[2], 11), [BATCH, ...shape]);
  const training = createTrainingMethod(method, net, HYPER);
  const labels = tf.tensor1d([0, 1, 2, 3], 'int32');
  const { losses, correct } = training.step(x, labels, 1);
  const values = await Promise.all(
    [losses, ...net.params.map((p) => p.variable)].map((t) => t.data() as Promise<Float32Array>),
  );
  tf.dispose([x, labels, losses, correct]);
  for (const opt of training.optimizers) opt.disposeState();
  net.dispose();
  return values;
}

describe.runIf(webgpu)('one training step on webgpu equals the same step on wasm', () => {
  const resnet: ArchSpec = { family: 'resnet', depth: 8, width: 0.5, exits: [1, 2] };
  // MobileNet at 32x32: at 8x8 its 13 blocks reach 1x1 by block 6, and batch norm over 4 values
  // per channel makes the step chaotic on every backend (on cpu alone, inputs scaled by 1 + 1e-7
  // moved a weight by 2.8x its tensor's largest value); at 32x32 the same change moves 3e-5.
  const mobilenet: ArchSpec = { family: 'mobilenet', width: 0.25, exits: [2, 4] };
  const cases: { arch: ArchSpec; network: string; method: Method; size: number }[] = [
    { arch: resnet, network: 'MwResNet-8', method: 'multiway', size: 8 },
    { arch: resnet, network: 'MwResNet-8', method: 'joint', size: 8 },
    { arch: resnet, network: 'MwResNet-8', method: 'pairwise', size: 8 },
    { arch: resnet, network: 'MwResNet-8', method: 'plain', size: 8 },
    { arch: mobilenet, network: 'MwMobileNet-0.25', method: 'multiway', size: 32 },
    ...(imported
      ? [
          {
            arch: { family: 'imported', backbone: imported.models[0]!.onnx } as const,
            network: "torchvision's mobilenet_v3_small (width 0.25), imported",
            method: 'multiway' as const,
            size: IMPORTED.size,
          },
        ]
      : []),
  ];
  for (const { arch, network, method, size } of cases) {
    it(`${method}, ${network} at ${size}x${size}: every weight and loss within 1e-3 relative`, async () => {
      const expected = await afterOneStep('wasm', arch, method, size);
      const actual = await afterOneStep('webgpu', arch, method, size);
      expect(worstRelative(actual, expected, 1e-3)).toBeLessThan(1e-3);
    });
  }
});

/** An idx dataset of 8x8 images: training on SwiftShader at 28x28 would take minutes. */
async function tinyIdxFolder(trainCount = 12, testCount = 4): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mw-webgpu-data-'));
  const rng = new Random(12);
  const images = (count: number) =>
    encodeIdx(
      [count, 8, 8],
      Uint8Array.from({ length: count * 64 }, () => rng.int(256)),
    );
  const labels = (count: number) =>
    encodeIdx(
      [count],
      Uint8Array.from({ length: count }, (_, i) => i % CLASSES),
    );
  await writeFile(join(dir, IDX_FILES.trainImages), images(trainCount));
  await writeFile(join(dir, IDX_FILES.trainLabels), labels(trainCount));
  await writeFile(join(dir, IDX_FILES.testImages), images(testCount));
  await writeFile(join(dir, IDX_FILES.testLabels), labels(testCount));
  return dir;
}

/** The three analyses of one seeded network on backend `name`, with the values they are built from. */
async function analysesOn(name: 'wasm' | 'webgpu', dataDir: string) {
  await initBackend(name);
  const dataset = await loadDataset(dataDir, { seed: 1 });
  const net = buildNetwork({ family: 'resnet', depth: 8, width: 0.5, exits: [1, 2] }, [8, 8, 1], CLASSES, 5);
  const probabilities = await exitProbabilities(net, dataset, dataset.test);
  const lesion = await lesionStudy(net, dataset, dataset.test);
  const batch = makeBatch(dataset, dataset.test, [0, 1, 2, 3, 4, 5, 6, 7], null);
  const supervision = await supervisionShares(net, batch, 'multiway', 2);
  tf.dispose([batch.x, batch.labels]);
  net.dispose();
  return { probabilities, lesion, supervision };
}

describe.runIf(webgpu)('the analyses on webgpu', () => {
  it('give the early-exit probabilities, lesion study and supervision shares that wasm gives', async () => {
    const dataDir = await tinyIdxFolder(4, 16);
    const expected = await analysesOn('wasm', dataDir);
    const tensorsBefore = tf.memory().numTensors;
    const actual = await analysesOn('webgpu', dataDir);
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(worstRelative(actual.probabilities.probabilities, expected.probabilities.probabilities)).toBeLessThan(1e-4);
    // Accuracies count argmaxes: allow one of the 16 images to flip on a near tie.
    const accuracies = (l: LesionStudy) => [l.baseline, ...l.blocks.map((b) => b.accuracy ?? [])].flat();
    accuracies(actual.lesion).forEach((a, i) =>
      expect(Math.abs(a - accuracies(expected.lesion)[i]!)).toBeLessThanOrEqual(1 / 16),
    );
    expect(actual.lesion.blocks.map((b) => b.block)).toEqual([1, 2, 3]);
    const shares = (s: SupervisionShares) => [Float32Array.from(s.layers.flatMap((l) => l.shares))];
    expect(worstRelative(shares(actual.supervision), shares(expected.supervision))).toBeLessThan(1e-3);
  });
});

describe.runIf(webgpu)('a training run on webgpu', () => {
  const LATENCY = { warmup: 0, minRepeats: 1, maxRepeats: 1 };

  async function newRun(
    config: RunConfigInput,
    onEvent: (e: RunEvent, t: Trainer) => void = () => {},
  ): Promise<Trainer> {
    const info = await initBackend('webgpu');
    const trainer: Trainer = await openRun(
      { kind: 'new', config, runsRoot: await mkdtemp(join(tmpdir(), 'mw-webgpu-runs-')) },
      { backend: summarizeBackend(info), latency: LATENCY, onEvent: (e) => onEvent(e, trainer) },
    );
    return trainer;
  }

  async function weights(trainer: Trainer): Promise<Map<string, Float32Array>> {
    const named = [...trainer.net.namedTensors()];
    const values = await Promise.all(named.map(([, t]) => t.data() as Promise<Float32Array>));
    return new Map(named.map(([name], i) => [name, values[i]!]));
  }

  it('trains two epochs with flat tensor count and GPU memory, stops, and resumes to where an uninterrupted run ends', async () => {
    const config: RunConfigInput = {
      dataset: await tinyIdxFolder(),
      arch: { family: 'resnet', depth: 8, width: 0.5, exits: [1] },
      method: 'multiway',
      gamma: 2,
      epochs: 2,
      batchSize: 4,
      lr: 0.05,
      seed: 3,
      augment: false,
    };
    const memoryAtEpochEnd: { tensors: number; bytes: number }[] = [];
    const straight = await newRun(config, (e) => {
      // numBytesInGPU: what the backend's live GPU buffers hold (pooled free buffers are not counted).
      if (e.type === 'epoch')
        memoryAtEpochEnd.push({
          tensors: tf.memory().numTensors,
          bytes: (tf.memory() as { numBytesInGPU?: number }).numBytesInGPU ?? -1,
        });
    });
    const summary = (await straight.run())!;
    expect(memoryAtEpochEnd).toHaveLength(2);
    expect(memoryAtEpochEnd[1]).toEqual(memoryAtEpochEnd[0]);
    expect(summary.backend.name).toBe('webgpu');
    expect(
      summary.exits.every((e) => e.latencyMs.runtime?.startsWith('webgpu ') && e.latencyMs.batch1.median > 0),
    ).toBe(true);
    const expected = await weights(straight);
    straight.dispose();

    // Three steps an epoch. Step 5 is already queued when step 4's record arrives (one step stays
    // in flight): it completes, and the run stops in the middle of epoch 2.
    const stopped = await newRun(config, (e, t) => {
      if (e.type === 'batch' && e.step === 4) t.stop();
    });
    expect(await stopped.run()).toBeUndefined();
    const dir = stopped.start.run;
    stopped.dispose();
    expect((await (await RunFolder.open(dir)).state())?.status).toBe('stopped');
    const resumed = await openRun(
      { kind: 'resume', dir },
      { backend: summarizeBackend(await initBackend('webgpu')), latency: LATENCY },
    );
    expect(resumed.start.resumedFrom).toEqual({ epoch: 1, step: 5 });
    const resumedSummary = (await resumed.run())!;
    expectSameWeights(await weights(resumed), expected, 1e-5);
    expect(resumedSummary.exits.map((e) => e.top1)).toEqual(summary.exits.map((e) => e.top1));
    resumed.dispose();
  }, 900_000);
});
