/**
 * Beyond the paper: self-distillation's logit gradient against autodiff of its loss, IMTA's
 * gradient equilibrium against its closed form, and both inside a training step.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_RUN_CONFIG, parseRunConfig, type ArchSpec } from '../../shared/spec.js';
import { buildNetwork } from '../../electron/engine/models/index.js';
import { GradSink } from '../../electron/engine/models/layers.js';
import { distilledLogitGradient, distilledLoss } from '../../electron/engine/train/distillation.js';
import { createTrainingMethod, type Hyperparameters } from '../../electron/engine/train/methods.js';
import { expectClose, randomLabels, randomTensor, snapshot, useCpuBackend } from './helpers.js';

beforeAll(useCpuBackend);

describe('self-distillation', () => {
  it("gives the gradient of (1-a) CE + a T^2 KL(teacher || student) w.r.t. the student's logits, the teacher detached", () => {
    tf.tidy(() => {
      const student = randomTensor([5, 4], 1, 3) as tf.Tensor2D;
      const teacher = randomTensor([5, 4], 2, 3) as tf.Tensor2D;
      const oneHot = tf.oneHot(randomLabels(5, 4, 3), 4) as tf.Tensor2D;
      const [a, T] = [0.3, 2.5];
      const loss = (z: tf.Tensor) => {
        const ce = tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(z))));
        const pTeacher = tf.softmax(tf.div(teacher, T));
        const kl = tf.sum(tf.mul(pTeacher, tf.sub(tf.log(pTeacher), tf.logSoftmax(tf.div(z, T)))));
        return tf.div(tf.add(tf.mul(ce, 1 - a), tf.mul(kl, a * T * T)), 5) as tf.Scalar;
      };
      expectClose(
        distilledLogitGradient(student, teacher, oneHot, { alpha: a, temperature: T }),
        tf.grad(loss)(student),
        1e-6,
      );
      // The loss reported for the exit is that same objective, from its cross-entropy.
      const crossEntropy = tf.div(tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(student)))), 5) as tf.Scalar;
      expectClose(distilledLoss(student, teacher, crossEntropy, { alpha: a, temperature: T }), loss(student), 1e-6);
    });
  });

  it("reports each exit's objective as its loss under every method, with the cross-entropy beside it", () => {
    const arch: ArchSpec = { family: 'resnet', depth: 8, width: 0.25, block: 'preact', exits: [1, 2] };
    const distillation = { alpha: 0.5, temperature: 3 };
    for (const method of ['joint', 'pairwise', 'multiway'] as const) {
      const net = buildNetwork(arch, [6, 6, 1], 3, 4);
      const x = randomTensor([4, 6, 6, 1], 5) as tf.Tensor4D;
      const labels = randomLabels(4, 3, 6);
      const training = createTrainingMethod(method, net, {
        lr: 0.1,
        momentum: 0.9,
        weightDecay: 1e-4,
        gamma: 2,
        distillation,
      });
      const result = training.step(x, labels, 1);
      const [losses, crossEntropy] = [result.losses.arraySync(), result.crossEntropy!.arraySync()];
      // The auxiliary exits add a positive distillation term; the final exit optimises its cross-entropy.
      for (const k of [0, 1]) expect(losses[k]! - 0.5 * crossEntropy[k]!, method).toBeGreaterThan(0);
      for (const k of [0, 1]) expect(losses[k], method).not.toBeCloseTo(crossEntropy[k]!, 6);
      expect(losses[2], method).toBeCloseTo(crossEntropy[2]!, 6);
      tf.dispose([x, labels, result.losses, result.correct, result.crossEntropy!]);
      for (const opt of training.optimizers) opt.disposeState();
      net.dispose();
    }
    const net = buildNetwork(arch, [6, 6, 1], 3, 4);
    const x = randomTensor([4, 6, 6, 1], 5) as tf.Tensor4D;
    const labels = randomLabels(4, 3, 6);
    const training = createTrainingMethod('joint', net, { lr: 0.1, momentum: 0.9, weightDecay: 1e-4, gamma: 2 });
    const result = training.step(x, labels, 1);
    expect(result.crossEntropy).toBeUndefined();
    tf.dispose([x, labels, result.losses, result.correct]);
    for (const opt of training.optimizers) opt.disposeState();
    net.dispose();
  });

  it('changes what the auxiliary heads learn and leaves the final exit as it was', () => {
    const arch: ArchSpec = { family: 'resnet', depth: 8, width: 0.25, block: 'preact', exits: [1, 2] };
    const hyper: Hyperparameters = { lr: 0.1, momentum: 0.9, weightDecay: 1e-4, gamma: 2 };
    const after = (h: Hyperparameters) => {
      const net = buildNetwork(arch, [6, 6, 1], 3, 4);
      const x = randomTensor([4, 6, 6, 1], 5) as tf.Tensor4D;
      const labels = randomLabels(4, 3, 6);
      const training = createTrainingMethod('multiway', net, h);
      tf.dispose(training.step(x, labels, 1));
      const values = snapshot(net.params.map((p) => [p.name, p.variable]));
      for (const opt of training.optimizers) opt.disposeState();
      tf.dispose([x, labels]);
      net.dispose();
      return values;
    };
    const plainMultiway = after(hyper);
    const distilled = after({ ...hyper, distillation: { alpha: 0.5, temperature: 3 } });
    const differs = (prefix: string) =>
      [...plainMultiway.keys()]
        .filter((n) => n.startsWith(prefix))
        .some((n) => plainMultiway.get(n)!.some((v, i) => Math.abs(v - distilled.get(n)![i]!) > 1e-6));
    expect(differs('exits.1.fc')).toBe(true);
    expect(differs('exits.3.')).toBe(false);
  });

  it('is refused with plain BP, whose backbone learns from the final exit only', () => {
    expect(() => parseRunConfig({ ...DEFAULT_RUN_CONFIG, method: 'plain', distill: true })).toThrow(ConfigError);
    expect(() => parseRunConfig({ ...DEFAULT_RUN_CONFIG, method: 'plain', gradientEquilibrium: true })).toThrow(
      /gradient equilibrium .*use joint, multiway or pairwise/,
    );
  });
});

describe('gradient equilibrium', () => {
  it("gives each block the sum of the exits' gradients at and above it divided by their number; heads unscaled", () => {
    // Six blocks, exits after 2, 4 and 6 (N = 3): segments {stem, 1, 2} / {3, 4} / {5, 6} divide by 3 / 2 / 1.
    const net = buildNetwork(
      { family: 'resnet', depth: 14, width: 0.25, block: 'option-a', exits: [2, 4] },
      [8, 8, 1],
      3,
      9,
    );
    const divisor = (name: string) => {
      if (name.startsWith('exits.')) return 1;
      const block = Number(/^blocks\.(\d+)\./.exec(name)?.[1] ?? 0);
      return block <= 2 ? 3 : block <= 4 ? 2 : 1;
    };
    tf.tidy(() => {
      const x = randomTensor([3, 8, 8, 1], 10);
      const seeds = net.exits.map((_, k) => randomTensor([3, 3], 20 + k));
      const traced = net.trace(x);
      const plain = new GradSink();
      traced.backward(seeds, plain);
      const balanced = new GradSink();
      traced.backward(seeds, balanced, true);
      for (const p of net.params) expectClose(balanced.get(p)!, tf.div(plain.get(p)!, divisor(p.name)), 1e-5);
    });
    net.dispose();
  });
});
