/**
 * Pins the training methods of method.md: the loss weights, the per-exit learning rates, one
 * step of joint and plain against a hand computation from autodiff gradients, and several steps
 * of multi-way and pair-wise against the authors' two-optimizer rule written out by hand.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { defaultExits, resnetBlockCount, type ArchSpec } from '../../shared/spec.js';
import { buildNetwork, type MwNetwork } from '../../electron/engine/models/index.js';
import { lossWeights, multiWayLearningRates } from '../../electron/engine/train/lossWeights.js';
import {
  createTrainingMethod,
  softmaxCrossEntropy,
  type Hyperparameters,
} from '../../electron/engine/train/methods.js';
import { randomLabels, randomTensor, snapshot, useCpuBackend } from './helpers.js';

beforeAll(useCpuBackend);

describe('loss weights and learning rates', () => {
  it('follow the paper for ResNet-56 with exits at layers 15, 25, 35, 45', () => {
    const blocks = resnetBlockCount(56);
    expect(defaultExits(blocks)).toEqual([7, 12, 17, 22]);
    const net = buildNetwork({ family: 'resnet', depth: 56, width: 0.125 }, [8, 8, 1], 10, 0);
    expect(net.exits.map((e) => e.layer)).toEqual([15, 25, 35, 45, 55]);
    const weights = lossWeights(net.exits, 2);
    const expected = [(15 / 45) ** 2, (25 / 45) ** 2, (35 / 45) ** 2, 1, 1];
    weights.forEach((w, k) => expect(w).toBeCloseTo(expected[k]!, 10));
    expect(weights.map((w) => w.toFixed(4))).toEqual(['0.1111', '0.3086', '0.6049', '1.0000', '1.0000']);

    const rates = multiWayLearningRates(weights, net.exits, 0.1);
    const auxSum = (from: number) => expected.slice(from, 4).reduce((a, b) => a + b, 0);
    [0, 1, 2, 3].forEach((k) => expect(rates[k]).toBeCloseTo(0.1 / auxSum(k), 12));
    expect(rates[4]).toBe(0.1);
    net.dispose();
  });

  it('floor at 0.01 and become equal weights with gamma 0 (the Elastic baseline)', () => {
    const exits = [3, 5, 9, 45].map((layer, i, all) => ({ layer, final: i === all.length - 1 }));
    expect(lossWeights(exits, 10)[0]).toBe(0.01);
    expect(lossWeights(exits, 0)).toEqual([1, 1, 1, 1]);
  });
});

const ARCH: ArchSpec = { family: 'resnet', depth: 8, width: 0.25, exits: [1, 2] };
const INPUT = [6, 6, 2] as const;
const CLASSES = 3;
const BATCH = 4;
/** A large weight decay makes the order of the per-exit steps visible in the result. */
const HYPER: Hyperparameters = { lr: 0.1, momentum: 0.9, weightDecay: 0.05, gamma: 2 };

function tinyNet(): MwNetwork {
  return buildNetwork(ARCH, INPUT, CLASSES, 7);
}

function batch(): { x: tf.Tensor4D; labels: tf.Tensor1D } {
  return { x: randomTensor([BATCH, ...INPUT], 1) as tf.Tensor4D, labels: randomLabels(BATCH, CLASSES, 2) };
}

/** Autodiff gradient of every exit's loss w.r.t. every parameter, at the current weights. */
function exitGradients(net: MwNetwork, x: tf.Tensor4D, labels: tf.Tensor1D): Map<string, Float32Array>[] {
  const oneHot = tf.oneHot(labels, CLASSES) as tf.Tensor2D;
  const vars = net.params.map((p) => p.variable);
  return net.exits.map((exit) => {
    const { grads } = tf.variableGrads(() => softmaxCrossEntropy(net.trace(x).logits[exit.index]!, oneHot).loss, vars);
    const byParam = new Map(
      net.params.map((p) => [
        p.name,
        Float32Array.from(grads[p.variable.name]?.dataSync() ?? new Float32Array(p.variable.size)),
      ]),
    );
    tf.dispose(grads);
    return byParam;
  });
}

/**
 * torch.optim.SGD (Nesterov) applied by hand: a fresh optimizer's first step has buf = d, so
 * p -= lr * (1 + momentum) * (scale * g + wd * p).
 */
function sgdFirstStep(p: Float32Array, g: Float32Array, lr: number, scale: number, h: Hyperparameters): void {
  for (let i = 0; i < p.length; i++) {
    const d = scale * g[i]! + h.weightDecay * p[i]!;
    p[i] = p[i]! - lr * (1 + h.momentum) * d;
  }
}

function maxDifference(
  a: Map<string, Float32Array>,
  b: Map<string, Float32Array>,
  names: Iterable<string> = a.keys(),
): number {
  let worst = 0;
  for (const name of names) {
    const x = a.get(name)!;
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  }
  return worst;
}

function paramsAfterOneStep(method: 'multiway' | 'joint' | 'pairwise' | 'plain'): {
  after: Map<string, Float32Array>;
  traces: number;
  net: MwNetwork;
} {
  const net = tinyNet();
  const { x, labels } = batch();
  const training = createTrainingMethod(method, net, HYPER);
  const trace = vi.spyOn(net, 'trace');
  tf.dispose(training.step(x, labels, 1));
  const after = snapshot(net.params.map((p) => [p.name, p.variable]));
  tf.dispose([x, labels]);
  return { after, traces: trace.mock.calls.length, net };
}

describe('one training step against a hand computation', () => {
  const reference = (() => {
    let cached: { initial: Map<string, Float32Array>; grads: Map<string, Float32Array>[]; net: MwNetwork } | undefined;
    return () => {
      if (!cached) {
        const net = tinyNet();
        const { x, labels } = batch();
        const initial = snapshot(net.params.map((p) => [p.name, p.variable]));
        cached = { initial, grads: exitGradients(net, x, labels), net };
        tf.dispose([x, labels]);
      }
      return cached;
    };
  })();

  it('joint: one backward of the weighted sum, one optimizer at lr; same final head as multi-way, different backbone', () => {
    const { initial, grads, net: refNet } = reference();
    const { after, traces, net } = paramsAfterOneStep('joint');
    expect(traces).toBe(1);
    const weights = lossWeights(refNet.exits, HYPER.gamma);
    const expected = new Map([...initial].map(([name, v]) => [name, Float32Array.from(v)]));
    for (const [name, p] of expected) {
      const summed = new Float32Array(p.length);
      grads.forEach((g, k) => g.get(name)!.forEach((v, i) => (summed[i] = summed[i]! + weights[k]! * v)));
      sgdFirstStep(p, summed, HYPER.lr, 1, HYPER);
    }
    expect(maxDifference(after, expected)).toBeLessThan(2e-6);

    const multiway = paramsAfterOneStep('multiway');
    const finalHead = net.heads[2]!.params.map((p) => p.name);
    expect(maxDifference(after, multiway.after, finalHead)).toBeLessThan(2e-6);
    const stem = net.stem.params.map((p) => p.name);
    expect(maxDifference(after, multiway.after, stem)).toBeGreaterThan(1e-4);
    net.dispose();
    multiway.net.dispose();
  });

  it('plain: the backbone learns from the final loss only; auxiliary heads are probes', () => {
    const { initial, grads, net: refNet } = reference();
    const { after, net } = paramsAfterOneStep('plain');
    const expected = new Map([...initial].map(([name, v]) => [name, Float32Array.from(v)]));
    for (const p of refNet.segmentParams(2))
      sgdFirstStep(expected.get(p.name)!, grads[2]!.get(p.name)!, HYPER.lr, 1, HYPER);
    for (const k of [0, 1]) {
      for (const p of refNet.heads[k]!.params)
        sgdFirstStep(expected.get(p.name)!, grads[k]!.get(p.name)!, HYPER.lr, 1, HYPER);
    }
    expect(maxDifference(after, expected)).toBeLessThan(2e-6);
    net.dispose();
  });

  it('reports each exit loss and correct count, and leaks no tensors across steps', () => {
    const net = tinyNet();
    const { x, labels } = batch();
    const oneHot = tf.oneHot(labels, CLASSES) as tf.Tensor2D;
    const expectedLosses = net.exits.map((e) =>
      tf.tidy(() => softmaxCrossEntropy(net.trace(x).logits[e.index]!, oneHot).loss.dataSync()[0]!),
    );
    const training = createTrainingMethod('multiway', net, HYPER);
    const first = training.step(x, labels, 1);
    Array.from(first.losses.dataSync()).forEach((loss, k) => expect(loss).toBeCloseTo(expectedLosses[k]!, 5));
    first.correct.dataSync().forEach((c) => expect(c >= 0 && c <= BATCH && Number.isInteger(c)).toBe(true));
    tf.dispose([first.losses, first.correct]);
    const baseline = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const r = training.step(x, labels, 0.5);
      tf.dispose([r.losses, r.correct]);
    }
    expect(tf.memory().numTensors).toBe(baseline);
    tf.dispose([x, labels, oneHot]);
    net.dispose();
  });
});

/**
 * The authors' rule (aux_trainer.py, method.md "Multi-way BP") written out without the engine's
 * helpers: parameter groups from their names, lambdas and rates as numbers, torch.optim.SGD's
 * Nesterov arithmetic by hand, gradients from tfjs autodiff of each exit's loss.
 */
describe('multi-way and pair-wise follow the two-optimizer rule over several steps', () => {
  /** Blocks after which ARCH's exits sit (depth 8: three blocks; exits after 1, 2 and the final 3). */
  const EXIT_BLOCKS = [1, 2, 3];
  /** lambda_k = (l_k / l_last aux)^2 with layers 3, 5 (and the final output at 1). */
  const LAMBDA = [(3 / 5) ** 2, 1, 1];
  /** Backbone lr of exit k: lr / sum of auxiliary lambdas at and above k; the final exit's is lr. */
  const BACKBONE_LR = [HYPER.lr / (LAMBDA[0]! + LAMBDA[1]!), HYPER.lr / LAMBDA[1]!, HYPER.lr];
  const LR_FACTORS = [0.5, 0.5, 0.2];

  type Rule = { headScaled: boolean };
  const AUTHORS: Rule = { headScaled: false };

  function group(name: string, exit: number): 'head' | 'backbone' | undefined {
    const block = EXIT_BLOCKS[exit]!;
    if (name.startsWith(`exits.${block}.`)) return 'head';
    const inBlock = /^blocks\.(\d+)\./.exec(name);
    if (name.startsWith('stem.') || (inBlock && Number(inBlock[1]) <= block)) return 'backbone';
    return undefined;
  }

  /** Each optimizer's own Nesterov buffers, keyed by optimizer and parameter. */
  class HandSgd {
    private readonly buffers = new Map<string, Float64Array>();

    step(key: string, p: Float32Array, g: Float32Array, lr: number, scale: number): void {
      let buf = this.buffers.get(key);
      const first = !buf;
      if (!buf) this.buffers.set(key, (buf = new Float64Array(p.length)));
      for (let i = 0; i < p.length; i++) {
        const d = scale * g[i]! + HYPER.weightDecay * p[i]!;
        buf[i] = first ? d : HYPER.momentum * buf[i]! + d;
        p[i] = p[i]! - lr * (d + HYPER.momentum * buf[i]!);
      }
    }
  }

  /** Autodiff gradients of exit k's loss on `net` with its weights set to `weights`. */
  function autodiffGradients(
    net: MwNetwork,
    weights: Map<string, Float32Array>,
    exit: number,
    x: tf.Tensor4D,
    labels: tf.Tensor1D,
  ): Map<string, Float32Array> {
    for (const p of net.params) p.variable.assign(tf.tensor(weights.get(p.name)!, p.variable.shape));
    const oneHot = tf.oneHot(labels, CLASSES) as tf.Tensor2D;
    const vars = net.params.map((p) => p.variable);
    const { value, grads } = tf.variableGrads(() => softmaxCrossEntropy(net.trace(x).logits[exit]!, oneHot).loss, vars);
    const byName = new Map(
      net.params.map((p) => [
        p.name,
        Float32Array.from(grads[p.variable.name]?.dataSync() ?? new Float32Array(p.variable.size)),
      ]),
    );
    tf.dispose([value, oneHot, ...Object.values(grads)]);
    return byName;
  }

  function handTraining(method: 'multiway' | 'pairwise', rule: Rule): Map<string, Float32Array> {
    const net = tinyNet();
    const { x, labels } = batch();
    const weights = snapshot(net.params.map((p) => [p.name, p.variable]));
    const sgd = new HandSgd();
    for (const lrFactor of LR_FACTORS) {
      // Multi-way: every exit's gradient from the same forward pass, before any step.
      const shared =
        method === 'multiway' ? EXIT_BLOCKS.map((_, k) => autodiffGradients(net, weights, k, x, labels)) : [];
      EXIT_BLOCKS.forEach((_, k) => {
        const grads = method === 'multiway' ? shared[k]! : autodiffGradients(net, weights, k, x, labels);
        for (const [name, p] of weights) {
          const role = group(name, k);
          if (role === 'head')
            sgd.step(`head-${k}:${name}`, p, grads.get(name)!, HYPER.lr * lrFactor, rule.headScaled ? LAMBDA[k]! : 1);
          if (role === 'backbone')
            sgd.step(`backbone-${k}:${name}`, p, grads.get(name)!, BACKBONE_LR[k]! * lrFactor, LAMBDA[k]!);
        }
      });
    }
    tf.dispose([x, labels]);
    net.dispose();
    return weights;
  }

  function engineTraining(method: 'multiway' | 'pairwise'): { after: Map<string, Float32Array>; upToExit: unknown[] } {
    const net = tinyNet();
    const { x, labels } = batch();
    const training = createTrainingMethod(method, net, HYPER);
    const trace = vi.spyOn(net, 'trace');
    for (const lrFactor of LR_FACTORS) tf.dispose(training.step(x, labels, lrFactor));
    const after = snapshot(net.params.map((p) => [p.name, p.variable]));
    const upToExit = trace.mock.calls.map((call) => call[1]);
    for (const opt of training.optimizers) opt.disposeState();
    tf.dispose([x, labels]);
    net.dispose();
    return { after, upToExit };
  }

  it('multi-way: one forward pass per batch; heads unscaled at lr, backbones lambda-scaled at lr / sum lambda', () => {
    const { after, upToExit } = engineTraining('multiway');
    expect(upToExit).toEqual(LR_FACTORS.map(() => undefined));
    const expected = handTraining('multiway', AUTHORS);
    expect(maxDifference(after, expected)).toBeLessThan(2e-5);
    // The rule the engine used to follow (heads lambda-scaled) is far from it on the shallow head.
    const headScaled = handTraining('multiway', { headScaled: true });
    expect(
      maxDifference(
        after,
        headScaled,
        [...after.keys()].filter((n) => n.startsWith('exits.1.')),
      ),
    ).toBeGreaterThan(1e-3);
  });

  it('pair-wise: a forward pass up to each exit in turn, from the weights the previous exit left', () => {
    const { after, upToExit } = engineTraining('pairwise');
    expect(upToExit).toEqual(LR_FACTORS.flatMap(() => [0, 1, 2]));
    expect(maxDifference(after, handTraining('pairwise', AUTHORS))).toBeLessThan(2e-5);
    expect(maxDifference(after, handTraining('multiway', AUTHORS))).toBeGreaterThan(1e-4);
  });
});
