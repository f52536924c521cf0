/**
 * The pretrained-backbone recipes (method.md, "Exits on a pretrained network") on networks
 * built here: the backbone learning-rate scale against torch.optim.SGD's arithmetic by hand
 * with autodiff gradients; heads-only steps against a head written out in plain tfjs ops;
 * SDN IC-only and Elastic's frozen epochs through the real training loop, with frozen weights
 * and batch-norm statistics compared bit for bit and the feature cache against no cache.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BatchMetrics, RunEvent } from '../../shared/metrics.js';
import {
  ConfigError,
  DEFAULT_RUN_CONFIG,
  parseRunConfig,
  type ArchSpec,
  type RunConfigInput,
} from '../../shared/spec.js';
import { buildNetwork, type MwNetwork } from '../../electron/engine/models/index.js';
import { lossWeights, multiWayLearningRates } from '../../electron/engine/train/lossWeights.js';
import {
  createTrainingMethod,
  softmaxCrossEntropy,
  type Hyperparameters,
} from '../../electron/engine/train/methods.js';
import { initBackend, summarizeBackend } from '../../electron/engine/backend/index.js';
import { openRun } from '../../electron/engine/session.js';
import type { Trainer } from '../../electron/engine/train/trainer.js';
import { randomLabels, randomTensor, snapshot, useCpuBackend } from './helpers.js';

const ARCH: ArchSpec = { family: 'resnet', depth: 8, width: 0.25, exits: [1, 2] };
const INPUT = [6, 6, 2] as const;
const CLASSES = 3;
const BATCH = 4;
const HYPER: Hyperparameters = { lr: 0.1, momentum: 0.9, weightDecay: 0.05, gamma: 2 };
const SCALE = 0.3;

function batch(): { x: tf.Tensor4D; labels: tf.Tensor1D } {
  return { x: randomTensor([BATCH, ...INPUT], 1) as tf.Tensor4D, labels: randomLabels(BATCH, CLASSES, 2) };
}

const isBackbone = (name: string) => name.startsWith('stem.') || name.startsWith('blocks.');

/** Autodiff gradient of each exit's loss (training-mode forward) w.r.t. every parameter. */
function autodiff(net: MwNetwork, x: tf.Tensor4D, labels: tf.Tensor1D): Map<string, Float32Array>[] {
  const oneHot = tf.oneHot(labels, CLASSES) as tf.Tensor2D;
  const vars = net.params.map((p) => p.variable);
  const out = net.exits.map((exit) => {
    const { value, grads } = tf.variableGrads(
      () => softmaxCrossEntropy(net.trace(x).logits[exit.index]!, oneHot).loss,
      vars,
    );
    const byName = new Map(
      net.params.map((p) => [
        p.name,
        Float32Array.from(grads[p.variable.name]?.dataSync() ?? new Float32Array(p.variable.size)),
      ]),
    );
    tf.dispose([value, ...Object.values(grads)]);
    return byName;
  });
  oneHot.dispose();
  return out;
}

/** torch.optim.SGD's first Nesterov step (buf = d): p -= lr * (1 + momentum) * (scale * g + wd * p). */
function firstStep(p: Float32Array, g: Float32Array, lr: number, scale: number): void {
  for (let i = 0; i < p.length; i++)
    p[i] = p[i]! - lr * (1 + HYPER.momentum) * (scale * g[i]! + HYPER.weightDecay * p[i]!);
}

function worst(a: Map<string, Float32Array>, b: Map<string, Float32Array>, names: Iterable<string>): number {
  let w = 0;
  for (const n of names) a.get(n)!.forEach((v, i) => (w = Math.max(w, Math.abs(v - b.get(n)![i]!))));
  return w;
}

describe('the backbone learning-rate scale, one step against a hand computation', () => {
  beforeAll(useCpuBackend);

  it('joint: stem and blocks step at lr x F, heads at lr', () => {
    const net = buildNetwork(ARCH, INPUT, CLASSES, 7);
    const { x, labels } = batch();
    const expected = snapshot(net.params.map((p) => [p.name, p.variable]));
    const unscaled = snapshot(net.params.map((p) => [p.name, p.variable]));
    const grads = autodiff(net, x, labels);
    const weights = lossWeights(net.exits, HYPER.gamma);
    for (const [name, p] of expected) {
      const summed = new Float32Array(p.length);
      grads.forEach((g, k) => g.get(name)!.forEach((v, i) => (summed[i] = summed[i]! + weights[k]! * v)));
      firstStep(p, summed, HYPER.lr * (isBackbone(name) ? SCALE : 1), 1);
      firstStep(unscaled.get(name)!, summed, HYPER.lr, 1);
    }
    tf.dispose(createTrainingMethod('joint', net, { ...HYPER, backboneLrScale: SCALE }).step(x, labels, 1));
    const after = snapshot(net.params.map((p) => [p.name, p.variable]));
    expect(worst(after, expected, expected.keys())).toBeLessThan(2e-6);
    // The check can fail: an unscaled backbone step lands far away.
    expect(worst(after, unscaled, [...expected.keys()].filter(isBackbone))).toBeGreaterThan(1e-4);
    tf.dispose([x, labels]);
    net.dispose();
  });

  it("multi-way: each exit's backbone optimizer at lr / sum(lambda) x F, lambda-scaled; heads at lr, unscaled", () => {
    const net = buildNetwork(ARCH, INPUT, CLASSES, 7);
    const { x, labels } = batch();
    const expected = snapshot(net.params.map((p) => [p.name, p.variable]));
    const grads = autodiff(net, x, labels);
    const weights = lossWeights(net.exits, HYPER.gamma);
    const rates = multiWayLearningRates(weights, net.exits, HYPER.lr);
    // Exits step in order, shallowest first, each with fresh optimizers (first-step arithmetic).
    net.exits.forEach((exit, k) => {
      for (const [name, p] of expected) {
        const block = /^blocks\.(\d+)\./.exec(name);
        const inBackbone = name.startsWith('stem.') || (block && Number(block[1]) <= exit.block);
        if (name.startsWith(`exits.${exit.block}.`)) firstStep(p, grads[k]!.get(name)!, HYPER.lr, 1);
        else if (inBackbone) firstStep(p, grads[k]!.get(name)!, rates[k]! * SCALE, weights[k]!);
      }
    });
    const training = createTrainingMethod('multiway', net, { ...HYPER, backboneLrScale: SCALE });
    tf.dispose(training.step(x, labels, 1));
    const after = snapshot(net.params.map((p) => [p.name, p.variable]));
    expect(worst(after, expected, expected.keys())).toBeLessThan(2e-6);
    for (const opt of training.optimizers) opt.disposeState();
    tf.dispose([x, labels]);
    net.dispose();
  });
});

/**
 * The BN -> ReLU -> pool -> FC head in plain tfjs ops on a feature map, loss and autodiff
 * gradients w.r.t. its parameters: the reference for a heads-only step.
 */
function headReference(
  net: MwNetwork,
  exit: number,
  features: tf.Tensor,
  oneHot: tf.Tensor2D,
): Map<string, Float32Array> {
  const head = net.heads[exit]!;
  const byName = new Map(head.params.map((p) => [p.name.split('.').slice(-2).join('.'), p]));
  const vars = head.params.map((p) => p.variable);
  const { value, grads } = tf.variableGrads(() => {
    const { mean, variance } = tf.moments(features, [0, 1, 2]);
    const normed = tf.add(
      tf.mul(tf.div(tf.sub(features, mean), tf.sqrt(tf.add(variance, 1e-5))), byName.get('bn.gamma')!.variable),
      byName.get('bn.beta')!.variable,
    );
    const pooled = tf.mean(tf.relu(normed), [1, 2]) as tf.Tensor2D;
    const logits = tf.add(
      tf.matMul(pooled, byName.get('fc.weight')!.variable as tf.Tensor2D),
      byName.get('fc.bias')!.variable,
    );
    return tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
  }, vars);
  const out = new Map(head.params.map((p) => [p.name, Float32Array.from(grads[p.variable.name]!.dataSync())]));
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

describe('a heads-only step (frozen backbone)', () => {
  beforeAll(useCpuBackend);

  for (const method of ['joint', 'multiway', 'plain'] as const) {
    it(`${method}: backbone weights, batch-norm statistics and momentum untouched; each head steps from its own loss`, () => {
      const net = buildNetwork(ARCH, INPUT, CLASSES, 7);
      const { x, labels } = batch();
      const oneHot = tf.oneHot(labels, CLASSES) as tf.Tensor2D;
      const backboneBefore = snapshot([...net.namedTensors()].filter(([name]) => isBackbone(name)));
      // Frozen features from plain inference calls (running statistics), independent of headInputs.
      const features = tf.tidy(() => {
        const out: tf.Tensor[] = [];
        let h = net.stem.forward(x);
        net.blocks.forEach((block, b) => {
          h = block.forward(h);
          if (net.exits.some((e) => e.block === b + 1)) out.push(h);
        });
        return out;
      });
      const expected = snapshot(net.params.map((p) => [p.name, p.variable]));
      const weights = method === 'joint' ? lossWeights(net.exits, HYPER.gamma) : net.exits.map(() => 1);
      net.exits.forEach((_, k) => {
        const grads = headReference(net, k, features[k]!, oneHot);
        for (const [name, g] of grads) firstStep(expected.get(name)!, g, HYPER.lr, weights[k]!);
      });

      const training = createTrainingMethod(method, net, HYPER);
      const inputs = net.headInputs(x);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 2; i++) {
        const r = training.stepHeads(inputs, labels, 1);
        if (i === 0) {
          const after = snapshot(net.params.map((p) => [p.name, p.variable]));
          expect(worst(after, expected, expected.keys())).toBeLessThan(2e-6);
        }
        tf.dispose([r.losses, r.correct]);
      }
      // The momentum buffers are made on the first step; the second adds none.
      expect(tf.memory().numTensors).toBe(before + net.heads.flatMap((h) => h.params).length);
      const backboneAfter = snapshot([...net.namedTensors()].filter(([name]) => isBackbone(name)));
      for (const [name, v] of backboneBefore) expect(backboneAfter.get(name), name).toEqual(v);
      const withMomentum = training.optimizers.flatMap((o) => [...o.state().keys()]);
      expect(withMomentum.filter(isBackbone)).toEqual([]);
      for (const opt of training.optimizers) opt.disposeState();
      tf.dispose([x, labels, oneHot, ...features, ...inputs]);
      net.dispose();
    });
  }
});

describe('recipes through the training loop', () => {
  let backend: Awaited<ReturnType<typeof initBackend>>;
  beforeAll(async () => {
    backend = await initBackend('wasm');
  });

  const BASE: RunConfigInput = {
    dataset: 'embedded',
    arch: { family: 'resnet', depth: 8, width: 0.5, exits: [1, 2] },
    method: 'joint',
    gamma: 0,
    epochs: 3,
    batchSize: 32,
    lr: 0.05,
    seed: 3,
    augment: false,
    validationSplit: 0,
    limitTrain: 128,
    limitTest: 32,
  };
  const LATENCY = { warmup: 1, minRepeats: 1, maxRepeats: 1 };

  async function train(
    config: RunConfigInput,
    featureCacheBytes?: number,
  ): Promise<{
    trainer: Trainer;
    events: RunEvent[];
    initial: Map<string, Float32Array>;
    afterEpoch: Map<string, Float32Array>[];
    tensors: number[];
  }> {
    const events: RunEvent[] = [];
    const afterEpoch: Map<string, Float32Array>[] = [];
    const tensors: number[] = [];
    const trainer: Trainer = await openRun(
      { kind: 'new', config, runsRoot: await mkdtemp(join(tmpdir(), 'mw-recipes-')) },
      {
        backend: summarizeBackend(backend),
        latency: LATENCY,
        ...(featureCacheBytes !== undefined ? { featureCacheBytes } : {}),
        onEvent: (e) => {
          events.push(e);
          if (e.type === 'epoch') {
            afterEpoch.push(snapshot(trainer.net.namedTensors()));
            tensors.push(tf.memory().numTensors);
          }
        },
      },
    );
    const initial = snapshot(trainer.net.namedTensors());
    await trainer.run();
    return { trainer, events, initial, afterEpoch, tensors };
  }

  const batches = (events: RunEvent[]) =>
    events.filter((e): e is BatchMetrics & { type: 'batch' } => e.type === 'batch');

  it('SDN IC-only: the backbone stays bit-identical, heads learn; cached features give the uncached run', async () => {
    const config = { ...BASE, method: 'multiway' as const, gamma: 2, freezeBackbone: true, head: 'elastic' as const };
    const cached = await train(config);
    expect(cached.trainer.start.featureCache).toMatch(/^feature cache: each exit's pooled features/);
    const phases = batches(cached.events).map((b) => `${b.epoch}:${b.backbone}`);
    expect(phases).toEqual([...Array(4).fill('1:frozen'), ...Array(4).fill('2:cached'), ...Array(4).fill('3:cached')]);
    const final = cached.afterEpoch.at(-1)!;
    for (const [name, v] of cached.initial) {
      if (isBackbone(name)) expect(final.get(name), name).toEqual(v);
      else if (!name.includes('running')) expect(final.get(name), name).not.toEqual(v);
    }
    expect(cached.tensors[2]).toBe(cached.tensors[1]);

    const uncached = await train({ ...config, featureCache: false });
    expect(uncached.trainer.start.featureCache).toMatch(/turned off/);
    expect(batches(uncached.events).every((b) => b.backbone === 'frozen')).toBe(true);
    const other = uncached.afterEpoch.at(-1)!;
    for (const [name, v] of final)
      v.forEach((value, i) => expect(Math.abs(value - other.get(name)![i]!)).toBeLessThan(1e-5));
    cached.trainer.dispose();
    uncached.trainer.dispose();
  });

  it('a BN-first head caches the feature maps within the budget, and recomputes them (saying why) over it', async () => {
    const config = { ...BASE, epochs: 2, freezeBackbone: true };
    const within = await train(config);
    expect(within.trainer.start.featureCache).toMatch(/^feature cache: each exit's feature map/);
    expect(batches(within.events).at(-1)!.backbone).toBe('cached');
    const over = await train(config, 1024);
    expect(over.trainer.start.featureCache).toMatch(/^no feature cache: .* over the 1\.0 kB budget; --head elastic/);
    expect(batches(over.events).every((b) => b.backbone === 'frozen')).toBe(true);
    const a = within.afterEpoch.at(-1)!;
    const b = over.afterEpoch.at(-1)!;
    for (const [name, v] of a) v.forEach((value, i) => expect(Math.abs(value - b.get(name)![i]!)).toBeLessThan(1e-5));
    within.trainer.dispose();
    over.trainer.dispose();
  });

  it('Elastic: equal weights, dropout heads, the backbone frozen for the first epoch and trained after', async () => {
    const run = await train({ ...BASE, head: 'elastic', freezeEpochs: 1, epochs: 2 });
    expect(run.trainer.start.lossWeights).toEqual([1, 1, 1]);
    expect(run.trainer.net.heads[0]!.params.map((p) => p.name)).toEqual(['exits.1.fc.weight', 'exits.1.fc.bias']);
    const [first, second] = run.afterEpoch;
    for (const [name, v] of run.initial) {
      if (isBackbone(name)) expect(first!.get(name), name).toEqual(v);
      if (isBackbone(name) && name.endsWith('weight')) expect(second!.get(name), name).not.toEqual(v);
    }
    expect(batches(run.events).map((b) => b.backbone ?? 'trained')).toEqual([
      ...Array(4).fill('frozen'),
      ...Array(4).fill('trained'),
    ]);
    run.trainer.dispose();
  });

  it('rejects recipe settings that contradict each other, naming the field', () => {
    const base = { ...DEFAULT_RUN_CONFIG, epochs: 3 };
    expect(() => parseRunConfig({ ...base, freezeEpochs: 3 })).toThrow(/freezeEpochs: 3 of 3 epochs/);
    expect(() => parseRunConfig({ ...base, freezeEpochs: 1, freezeBackbone: true })).toThrow(ConfigError);
    expect(() => parseRunConfig({ ...base, freezeBackbone: true, gradientEquilibrium: true })).toThrow(
      /gradientEquilibrium/,
    );
    expect(() => parseRunConfig({ ...base, head: 'mlp' })).toThrow(/head must be one of bn-relu, elastic/);
    expect(() => parseRunConfig({ ...base, backboneLrScale: 0 })).toThrow(/backbone lr scale/);
  });
});
