/**
 * The four ways to train an Mw-network (method.md, "The three ways to back-propagate" plus the
 * plain baseline). Each method owns its optimizers; `step` runs one batch and returns, per
 * exit, the loss and the number of correct predictions as tensors (read asynchronously by the
 * caller, so the hot path never blocks on dataSync).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Method } from '../../../shared/spec.js';
import { GradSink, type MwNetwork, type Param, type TracedNetwork } from '../models/index.js';
import { lossWeights, methodLossWeights, multiWayLearningRates } from './lossWeights.js';
import { distilledLogitGradient, distilledLoss, type Distillation } from './distillation.js';
import { SgdOptimizer, type SgdSettings } from './optimizer.js';

export interface Hyperparameters {
  lr: number;
  momentum: number;
  weightDecay: number;
  gamma: number;
  /** Auxiliary exits also learn from the final exit's predictions (joint, multi-way, pair-wise). */
  distillation?: Distillation;
  /** IMTA's gradient equilibrium in every backward pass (TracedNetwork.backward). */
  gradientEquilibrium?: boolean;
  /** The backbone's (stem and blocks') learning rate is its optimizer's lr times this; 1 when absent. */
  backboneLrScale?: number;
}

export type StepResult = {
  /**
   * [exits] the batch-mean loss each exit optimises: its cross-entropy, or under self-distillation
   * an auxiliary exit's (1 - a) * CE + a * T^2 * KL (train/distillation.ts).
   */
  losses: tf.Tensor1D;
  /** [exits] batch-mean cross-entropy of each exit, given under self-distillation (where losses differ). */
  crossEntropy?: tf.Tensor1D;
  /** [exits] correct top-1 predictions of each exit on the batch. */
  correct: tf.Tensor1D;
};

export interface TrainingMethod {
  readonly method: Method;
  readonly lossWeights: readonly number[];
  readonly optimizers: readonly SgdOptimizer[];
  step(x: tf.Tensor4D, labels: tf.Tensor1D, lrFactor: number): StepResult;
  /**
   * One step with the backbone frozen (SDN IC-only, Elastic's first epochs): only the heads
   * learn, from `inputs` = MwNetwork.headInputs of the batch. Each head gets the gradient the
   * method would give it (joint: its loss weight times its loss' gradient; the others: its
   * loss' gradient) from the optimizer that holds it; backbone parameters get no gradient, so
   * no update, weight decay or momentum.
   */
  stepHeads(inputs: readonly tf.Tensor[], labels: tf.Tensor1D, lrFactor: number): StepResult;
}

/** Mean softmax cross-entropy and its gradient w.r.t. the logits. */
export function softmaxCrossEntropy(
  logits: tf.Tensor2D,
  oneHot: tf.Tensor2D,
): { loss: tf.Scalar; dLogits: tf.Tensor2D } {
  const batch = logits.shape[0];
  const logProbs = tf.logSoftmax(logits);
  const loss = tf.neg(tf.div(tf.sum(tf.mul(oneHot, logProbs)), batch)) as tf.Scalar;
  const dLogits = tf.div(tf.sub(tf.exp(logProbs), oneHot), batch) as tf.Tensor2D;
  return { loss, dLogits };
}

function correctCount(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'));
}

/** Gradients of one backward call, aligned with `params` (tensors kept past the inner tidy). */
function gradientsFor(params: readonly Param[], run: (sink: GradSink) => void): (tf.Tensor | undefined)[] {
  return tf.tidy(() => {
    const sink = new GradSink();
    run(sink);
    return params.map((p) => sink.get(p) ?? tf.zerosLike(p.variable));
  });
}

interface ExitLosses {
  losses: tf.Scalar[];
  /** Under self-distillation only. */
  crossEntropy?: tf.Scalar[];
  dLogits: tf.Tensor2D[];
  correct: tf.Scalar[];
}

/**
 * Every traced exit's loss, correct count and logit gradient; with distillation and the final
 * exit traced, the auxiliary exits' gradients include the final exit's (detached) teaching.
 */
function exitLosses(
  net: MwNetwork,
  traced: Pick<TracedNetwork, 'logits'>,
  labels: tf.Tensor1D,
  distillation: Distillation | undefined,
): ExitLosses {
  const oneHot = tf.oneHot(labels, net.description.classes) as tf.Tensor2D;
  const teacher = traced.logits.length === net.exits.length ? traced.logits.at(-1) : undefined;
  const out: ExitLosses = { losses: [], dLogits: [], correct: [], ...(distillation ? { crossEntropy: [] } : {}) };
  traced.logits.forEach((logits, k) => {
    const { loss, dLogits } = softmaxCrossEntropy(logits, oneHot);
    const distilled = distillation && teacher && !net.exitAt(k).final;
    out.losses.push(distilled ? distilledLoss(logits, teacher, loss, distillation) : loss);
    out.crossEntropy?.push(loss);
    out.dLogits.push(distilled ? distilledLogitGradient(logits, teacher, oneHot, distillation) : dLogits);
    out.correct.push(correctCount(logits, labels));
  });
  return out;
}

function result(e: Pick<ExitLosses, 'losses' | 'correct' | 'crossEntropy'>): StepResult {
  return {
    losses: tf.stack(e.losses) as tf.Tensor1D,
    correct: tf.stack(e.correct) as tf.Tensor1D,
    ...(e.crossEntropy ? { crossEntropy: tf.stack(e.crossEntropy) as tf.Tensor1D } : {}),
  };
}

/** An optimizer of `params`; those of the backbone (stem and blocks) learn at lr times the backbone's scale. */
function sgd(net: MwNetwork, name: string, params: readonly Param[], h: Hyperparameters, lr = h.lr): SgdOptimizer {
  const settings: SgdSettings = { lr, momentum: h.momentum, weightDecay: h.weightDecay, nesterov: h.momentum > 0 };
  const scale = h.backboneLrScale ?? 1;
  const backbone = new Set(net.backboneOnlyParams);
  const lrScale = new Map(scale === 1 ? [] : params.filter((p) => backbone.has(p)).map((p) => [p, scale]));
  return new SgdOptimizer(name, params, settings, lrScale);
}

/**
 * TrainingMethod.stepHeads for a method whose optimizers are `optimizers` and whose head k
 * learns from its loss' gradient times `headScale[k]`.
 */
function headsOnlyStep(
  net: MwNetwork,
  h: Hyperparameters,
  optimizers: readonly SgdOptimizer[],
  headScale: readonly number[],
): TrainingMethod['stepHeads'] {
  return (inputs, labels, lrFactor) =>
    tf.tidy(() => {
      const traced = net.traceHeads(inputs);
      const e = exitLosses(net, traced, labels, h.distillation);
      const sink = new GradSink();
      e.dLogits.forEach((d, k) => traced.backwardHead(k, headScale[k] === 1 ? d : tf.mul(d, headScale[k]!), sink));
      for (const optimizer of optimizers)
        optimizer.step(
          optimizer.params.map((p) => sink.get(p)),
          lrFactor,
        );
      return result(e);
    });
}

/** One seed per exit, only `exit` set: the gradient of that exit's weighted loss alone. */
export function seedsFor(net: MwNetwork, exit: number, dLogits: tf.Tensor): (tf.Tensor | null)[] {
  return net.exits.map((e) => (e.index === exit ? dLogits : null));
}

/**
 * Exit k's two optimizers in the authors' code (aux_trainer.py; method.md, "Multi-way BP"): its
 * backbone (stem and blocks up to exit k) with gradients scaled by lambda_k at lr / sum of the
 * auxiliary weights at and above k, and its head (BN + FC) with unscaled gradients at the plain lr.
 */
interface ExitOptimizers {
  backbone: SgdOptimizer;
  head: SgdOptimizer;
  weight: number;
}

function perExitOptimizers(net: MwNetwork, h: Hyperparameters): { weights: number[]; exits: ExitOptimizers[] } {
  const weights = lossWeights(net.exits, h.gamma);
  const rates = multiWayLearningRates(weights, net.exits, h.lr);
  const exits = net.exits.map((e) => ({
    backbone: sgd(net, `backbone-${e.block}`, net.backboneParams(e.index), h, rates[e.index]),
    head: sgd(net, `head-${e.block}`, net.heads[e.index]!.params, h),
    weight: weights[e.index]!,
  }));
  return { weights, exits };
}

type ExitGradients = { backbone: (tf.Tensor | undefined)[]; head: (tf.Tensor | undefined)[] };

/** Exit k's loss alone back-propagated through its head and the blocks below it. */
function exitGradients(
  net: MwNetwork,
  traced: TracedNetwork,
  k: number,
  dLogits: tf.Tensor,
  opt: ExitOptimizers,
  h: Hyperparameters,
): ExitGradients {
  const params = [...opt.backbone.params, ...opt.head.params];
  const all = gradientsFor(params, (sink) => traced.backward(seedsFor(net, k, dLogits), sink, h.gradientEquilibrium));
  return { backbone: all.slice(0, opt.backbone.params.length), head: all.slice(opt.backbone.params.length) };
}

function stepExit(opt: ExitOptimizers, grads: ExitGradients, lrFactor: number): void {
  opt.head.step(grads.head, lrFactor);
  opt.backbone.step(grads.backbone, lrFactor, opt.weight);
}

/**
 * Multi-way BP (the paper's method): ONE forward pass; for each exit from shallowest to final,
 * its loss alone back-propagated (gradients from that forward pass) and its two optimizers
 * stepped, in series. Shallow blocks are thus updated once per exit.
 */
function multiWay(net: MwNetwork, h: Hyperparameters): TrainingMethod {
  const { weights, exits } = perExitOptimizers(net, h);
  const optimizers = exits.flatMap((o) => [o.backbone, o.head]);
  return {
    method: 'multiway',
    lossWeights: weights,
    optimizers,
    stepHeads: headsOnlyStep(
      net,
      h,
      optimizers,
      net.exits.map(() => 1),
    ),
    step(x, labels, lrFactor) {
      return tf.tidy(() => {
        const traced = net.trace(x);
        const e = exitLosses(net, traced, labels, h.distillation);
        // All gradients first, from the same forward activations and weights; then the steps.
        const grads = exits.map((opt, k) => exitGradients(net, traced, k, e.dLogits[k]!, opt, h));
        exits.forEach((opt, k) => stepExit(opt, grads[k]!, lrFactor));
        return result(e);
      });
    },
  };
}

/**
 * Pair-wise BP: for each exit in turn, a fresh forward pass up to that exit with the current
 * weights, its loss, its two optimizers' steps. With distillation every pass runs to the final
 * exit, whose logits are the teacher.
 */
function pairWise(net: MwNetwork, h: Hyperparameters): TrainingMethod {
  const { weights, exits } = perExitOptimizers(net, h);
  const optimizers = exits.flatMap((o) => [o.backbone, o.head]);
  return {
    method: 'pairwise',
    lossWeights: weights,
    optimizers,
    stepHeads: headsOnlyStep(
      net,
      h,
      optimizers,
      net.exits.map(() => 1),
    ),
    step(x, labels, lrFactor) {
      return tf.tidy(() => {
        const losses: tf.Scalar[] = [];
        const correct: tf.Scalar[] = [];
        const crossEntropy: tf.Scalar[] = [];
        exits.forEach((opt, k) => {
          const [loss, right, ce] = tf.tidy(() => {
            const traced = net.trace(x, h.distillation ? undefined : k);
            const e = exitLosses(net, traced, labels, h.distillation);
            stepExit(opt, exitGradients(net, traced, k, e.dLogits[k]!, opt, h), lrFactor);
            return [e.losses[k]!, e.correct[k]!, ...(e.crossEntropy ? [e.crossEntropy[k]!] : [])];
          });
          losses.push(loss as tf.Scalar);
          correct.push(right as tf.Scalar);
          if (ce) crossEntropy.push(ce as tf.Scalar);
        });
        return result({ losses, correct, ...(h.distillation ? { crossEntropy } : {}) });
      });
    },
  };
}

/** Joint BP: one backward pass of sum_k lambda_k L_k, one optimizer. */
function joint(net: MwNetwork, h: Hyperparameters): TrainingMethod {
  const weights = lossWeights(net.exits, h.gamma);
  const optimizer = sgd(net, 'all', net.params, h);
  return {
    method: 'joint',
    lossWeights: weights,
    optimizers: [optimizer],
    stepHeads: headsOnlyStep(net, h, [optimizer], weights),
    step(x, labels, lrFactor) {
      return tf.tidy(() => {
        const traced = net.trace(x);
        const e = exitLosses(net, traced, labels, h.distillation);
        const seeds = e.dLogits.map((d, k) => tf.mul(d, weights[k]!));
        optimizer.step(
          gradientsFor(optimizer.params, (sink) => traced.backward(seeds, sink, h.gradientEquilibrium)),
          lrFactor,
        );
        return result(e);
      });
    },
  };
}

/**
 * Plain BP: the backbone learns from the final output only. The auxiliary heads are trained as
 * probes on the detached features, so a plain run still reports what each depth would give.
 */
function plain(net: MwNetwork, h: Hyperparameters): TrainingMethod {
  const final = net.exits.length - 1;
  const backbone = sgd(net, 'final', net.segmentParams(final), h);
  const probeParams = net.heads.slice(0, final).flatMap((head) => [...head.params]);
  const probes = sgd(net, 'probes', probeParams, h);
  return {
    method: 'plain',
    lossWeights: methodLossWeights('plain', net.exits, h.gamma),
    optimizers: [backbone, probes],
    stepHeads: headsOnlyStep(
      net,
      h,
      [backbone, probes],
      net.exits.map(() => 1),
    ),
    step(x, labels, lrFactor) {
      return tf.tidy(() => {
        const traced = net.trace(x);
        const e = exitLosses(net, traced, labels, undefined);
        const backboneGrads = gradientsFor(backbone.params, (sink) =>
          traced.backward(seedsFor(net, final, e.dLogits[final]!), sink),
        );
        const probeGrads = gradientsFor(probes.params, (sink) => {
          for (let k = 0; k < final; k++) traced.backwardHead(k, e.dLogits[k]!, sink);
        });
        backbone.step(backboneGrads, lrFactor);
        probes.step(probeGrads, lrFactor);
        return result(e);
      });
    },
  };
}

const BUILDERS: Record<Method, (net: MwNetwork, h: Hyperparameters) => TrainingMethod> = {
  multiway: multiWay,
  pairwise: pairWise,
  joint,
  plain,
};

export function createTrainingMethod(method: Method, net: MwNetwork, h: Hyperparameters): TrainingMethod {
  return BUILDERS[method](net, h);
}
