/**
 * One training step of a method (train/methods.ts) as ONE onnxruntime graph: the forward pass
 * through every exit, the losses, the backward passes and the optimizers' updates, in the order
 * the method runs them. The graph's state is a few flat tensors that it reads and returns
 * updated: every parameter (in `net.params` order), every buffer (`net.buffers`), and each
 * optimizer's momentum buffers over its parameters. An optimizer's parameters lie in a few
 * contiguous ranges of the flat parameters (its exit's backbone is a prefix), so its update is a
 * handful of vector operations instead of a few per parameter.
 */
import type { Method } from '../../../../shared/spec.js';
import { backwardThroughExits, type MwNetwork, type Param } from '../../models/index.js';
import type { Hyperparameters } from '../methods.js';
import type { SgdOptimizer } from '../optimizer.js';
import { GraphGradSink, LayerEmitter, StepGraph, type EmittedTrace, type TensorSource, type Value } from './layers.js';
import { intAttribute } from '../../onnx/proto.js';

/** Where each tensor lives in a flat state tensor. */
export interface FlatLayout {
  offsets: Map<Param, number>;
  size: number;
}

export function flatLayout(params: readonly Param[]): FlatLayout {
  const offsets = new Map<Param, number>();
  let size = 0;
  for (const p of params) {
    offsets.set(p, size);
    size += p.variable.size;
  }
  return { offsets, size };
}

/** [start, end) ranges of the flat parameters an optimizer updates, merged where adjacent. */
function rangesOf(layout: FlatLayout, params: readonly Param[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (const p of params) {
    const start = layout.offsets.get(p)!;
    const last = ranges.at(-1);
    if (last && last[1] === start) last[1] += p.variable.size;
    else ranges.push([start, start + p.variable.size]);
  }
  return ranges;
}

export interface StepShape {
  batch: number;
  /** The image's [height, width, channels]. */
  image: readonly [number, number, number];
}

/** The graph's inputs and outputs, by role; each state input has the output that replaces it. */
export interface StepGraphSpec {
  g: StepGraph;
  inputs: [string, number[]][];
  outputs: [string, number[]][];
  /** Names of the state inputs, each paired with its updated value's outputs: consecutive pieces (statePieces). */
  state: { input: string; outputs: { name: string; size: number }[]; size: number }[];
  /** Output names of the per-exit losses, correct counts and (under distillation) cross-entropies. */
  losses: string;
  correct: string;
  crossEntropy: string | undefined;
}

/**
 * The sizes of the pieces a state tensor of `size` values is returned in, at most 1M values (4 MB)
 * each. onnxruntime-node copies every output into a new ArrayBuffer; one of tens of megabytes is
 * fresh memory from the system every step (above malloc's largest reuse threshold), whose pages
 * fault in as the copy writes them: 130 ms for resnet18's 44 MB of weights. Pieces come from
 * memory malloc keeps: resnet18's plain step at 64x64, batch 16, went from 490-540 to 250-360 ms.
 */
function statePieces(size: number): number[] {
  const sizes: number[] = [];
  for (let at = 0; at < size; at += STATE_PIECE) sizes.push(Math.min(STATE_PIECE, size - at));
  return sizes.length ? sizes : [0];
}
const STATE_PIECE = 1 << 20;

/** What the step reads of the method: its kind, hyper-parameters, loss weights and optimizers (methods.ts' order). */
export interface MethodShape {
  method: Method;
  hyper: Hyperparameters;
  lossWeights: readonly number[];
  optimizers: readonly SgdOptimizer[];
}

interface TracedGraph {
  logits: Value[];
  /**
   * The backward pass from the exits' logit gradients (`seeds`, null for an exit with none).
   * Summed, the seeds are one stream (the joint loss); `stacked`, each exit's is a stream of its
   * own, all flowing back at once on the batch axis (multi-way's per-exit gradients from one
   * forward pass), so every layer runs once for them all. The sink's rows are the exits' indices.
   */
  backward(
    seeds: readonly (string | null)[],
    sink: GraphGradSink,
    options: { stacked: boolean; equilibrium: boolean },
  ): void;
  backwardHead(exit: number, seed: string, sink: GraphGradSink): void;
}

/** Emits the step graph of `method` on `net` for a batch of `shape`; throws UnsupportedStepError where a layer has no emitter. */
export class StepEmitter {
  readonly g = new StepGraph();
  readonly params: FlatLayout;
  readonly buffers: FlatLayout;
  private paramsFlat = 'params';
  /** Slices of `paramsFlat` already emitted, cleared when an optimizer changes it. */
  private paramReads = new Map<Param, string>();
  private readonly bufferValues = new Map<Param, string>();
  private readonly velocities: string[];
  private readonly layers: LayerEmitter;
  private readonly oneHot = 'oneHot';
  private readonly lrFactor = 'lrFactor';

  constructor(
    readonly net: MwNetwork,
    readonly method: MethodShape,
    readonly shape: StepShape,
    block: number | undefined,
  ) {
    this.params = flatLayout(net.params);
    this.buffers = flatLayout(net.buffers);
    this.velocities = method.optimizers.map((_, k) => `velocity${k}`);
    const tensors: TensorSource = {
      read: (param) => this.read(param),
      write: (param, value) => this.bufferValues.set(param, value),
    };
    this.layers = new LayerEmitter(this.g, tensors, block);
  }

  private read(param: Param): string {
    const shape = param.variable.shape;
    const bufferOffset = this.buffers.offsets.get(param);
    if (bufferOffset !== undefined) {
      let value = this.bufferValues.get(param);
      if (value === undefined) {
        value = this.g.reshape(
          this.g.slice('buffers', [0], [bufferOffset], [bufferOffset + param.variable.size]),
          shape,
        );
        this.bufferValues.set(param, value);
      }
      return value;
    }
    let value = this.paramReads.get(param);
    if (value === undefined) {
      const offset = this.params.offsets.get(param)!;
      value = this.g.reshape(this.g.slice(this.paramsFlat, [0], [offset], [offset + param.variable.size]), shape);
      this.paramReads.set(param, value);
    }
    return value;
  }

  /** MwNetwork.trace in the graph: every exit's logits and a backward from any of them. */
  private traceNetwork(upToExit = this.net.exits.length - 1): TracedGraph {
    const { net, layers, g } = this;
    const lastBlock = net.exitAt(upToExit).block;
    const stem = layers.trace(net.stem, { name: 'x', shape: [this.shape.batch, ...this.shape.image] });
    const blocks: EmittedTrace[] = [];
    const heads: EmittedTrace[] = [];
    let h = stem.y;
    for (let b = 1; b <= lastBlock; b++) {
      const traced = layers.trace(net.blocks[b - 1]!, h);
      blocks.push(traced);
      h = traced.y;
      for (const exit of net.exits)
        if (exit.block === b && exit.index <= upToExit) heads[exit.index] = layers.trace(net.heads[exit.index]!, h);
    }
    return {
      logits: heads.map((t) => t.y),
      backward: (seeds, sink, { stacked, equilibrium }) => {
        // The streams flowing back below the current exit: one per exit when stacked, else their sum.
        let rows: number[] = [];
        const streamOf = (exit: number) => (stacked ? exit : 0);
        backwardThroughExits(
          net.exits,
          { stem: stem.backward, blocks: blocks.map((t) => t.backward), heads: heads.map((t) => t.backward) },
          seeds,
          sink,
          equilibrium,
          {
            scale: (value, factor) => g.scale(value, factor),
            join: (dh, fromHead, exit) => {
              if (!rows.includes(streamOf(exit))) rows = [...rows, streamOf(exit)];
              if (!dh) return fromHead;
              return stacked ? g.op('Concat', [dh, fromHead], [intAttribute('axis', 0)]) : g.add(dh, fromHead);
            },
            enter: (into, exit) => (into.rows = exit === undefined ? rows : [streamOf(exit)]),
          },
        );
      },
      backwardHead: (exit, seed, sink) => void heads[exit]!.backward(seed, sink),
    };
  }

  /** softmaxCrossEntropy of methods.ts: the batch-mean loss (shape [1]) and its logit gradient. */
  private crossEntropy(logits: string): { loss: string; dLogits: string } {
    const { g } = this;
    const batch = this.shape.batch;
    const logProbs = g.op('LogSoftmax', [logits], [intAttribute('axis', 1)]);
    const loss = g.scale(g.op('ReduceSum', [g.mul(this.oneHot, logProbs)], [intAttribute('keepdims', 1)]), -1 / batch);
    const dLogits = g.scale(g.sub(g.op('Exp', [logProbs]), this.oneHot), 1 / batch);
    return { loss: g.reshape(loss, [1]), dLogits };
  }

  /** distilledLoss and distilledLogitGradient of distillation.ts, the teacher's logits detached. */
  private distilled(
    logits: string,
    teacher: string,
    crossEntropy: string,
    alpha: number,
    temperature: number,
  ): { loss: string; dLogits: string } {
    const { g } = this;
    const batch = this.shape.batch;
    const softened = (z: string) => g.scale(z, 1 / temperature);
    const logSoftmax = (z: string) => g.op('LogSoftmax', [z], [intAttribute('axis', 1)]);
    const softmax = (z: string) => g.op('Softmax', [z], [intAttribute('axis', 1)]);
    const teacherLog = logSoftmax(softened(teacher));
    const kl = g.scale(
      g.op(
        'ReduceSum',
        [g.mul(g.op('Exp', [teacherLog]), g.sub(teacherLog, logSoftmax(softened(logits))))],
        [intAttribute('keepdims', 1)],
      ),
      1 / batch,
    );
    const loss = g.add(g.scale(crossEntropy, 1 - alpha), g.reshape(g.scale(kl, alpha * temperature ** 2), [1]));
    const plain = g.sub(softmax(logits), this.oneHot);
    const distill = g.scale(g.sub(softmax(softened(logits)), softmax(softened(teacher))), temperature);
    const dLogits = g.scale(g.add(g.scale(plain, 1 - alpha), g.scale(distill, alpha)), 1 / batch);
    return { loss, dLogits };
  }

  /** exitLosses of methods.ts: each traced exit's loss, cross-entropy, logit gradient and correct count. */
  private exitLosses(traced: TracedGraph, distill: boolean) {
    const { g, net } = this;
    const distillation = distill ? this.method.hyper.distillation : undefined;
    const teacher = traced.logits.length === net.exits.length ? traced.logits.at(-1)!.name : undefined;
    return traced.logits.map((logits, k) => {
      const ce = this.crossEntropy(logits.name);
      const distilled =
        distillation && teacher && !net.exitAt(k).final
          ? this.distilled(logits.name, teacher, ce.loss, distillation.alpha, distillation.temperature)
          : undefined;
      const predicted = g.op(
        'Cast',
        [g.op('ArgMax', [logits.name], [intAttribute('axis', 1), intAttribute('keepdims', 0)])],
        [intAttribute('to', 1)],
      );
      const correct = g.op(
        'ReduceSum',
        [g.op('Cast', [g.op('Equal', [predicted, 'labels'])], [intAttribute('to', 1)])],
        [intAttribute('keepdims', 1)],
      );
      return {
        loss: distilled?.loss ?? ce.loss,
        crossEntropy: ce.loss,
        dLogits: distilled?.dLogits ?? ce.dLogits,
        correct,
      };
    });
  }

  /**
   * SgdOptimizer.step on the optimizer's ranges of the flat parameters: d = g * scale + wd * p,
   * buf = momentum * buf + d, p -= lr * (d + momentum * buf) (Nesterov) or lr * buf.
   */
  private step(k: number, grads: Map<Param, string>, gradScale = 1): void {
    const { g } = this;
    const opt = this.method.optimizers[k]!;
    const { momentum, weightDecay, nesterov } = opt.settings;
    const ranges = rangesOf(this.params, opt.params);
    const slices = (flat: string) => g.concat(ranges.map(([a, b]) => g.slice(flat, [0], [a], [b])));
    const p = slices(this.paramsFlat);
    const flatGrad = g.concat(
      opt.params.map((param) => {
        const grad = grads.get(param);
        return grad ? g.reshape(grad, [param.variable.size]) : g.zeros([param.variable.size]);
      }),
    );
    let d = g.scale(flatGrad, gradScale);
    if (weightDecay) d = g.add(d, g.scale(p, weightDecay));
    let update = d;
    if (momentum) {
      const buffer = g.add(g.scale(this.velocities[k]!, momentum), d);
      this.velocities[k] = buffer;
      update = nesterov ? g.add(d, g.scale(buffer, momentum)) : buffer;
    }
    const lr = g.scale(this.lrFactor, opt.settings.lr);
    const updated = g.sub(p, g.mul(update, lr));
    // Put the updated ranges back between the untouched parts of the flat parameters.
    const pieces: string[] = [];
    let at = 0;
    let within = 0;
    for (const [a, b] of ranges) {
      if (a > at) pieces.push(g.slice(this.paramsFlat, [0], [at], [a]));
      pieces.push(ranges.length === 1 ? updated : g.slice(updated, [0], [within], [within + b - a]));
      within += b - a;
      at = b;
    }
    if (at < this.params.size) pieces.push(g.slice(this.paramsFlat, [0], [at], [this.params.size]));
    this.paramsFlat = g.concat(pieces);
    this.paramReads = new Map();
  }

  /** The gradients of a backward pass that keeps one stream (nothing stacked). */
  private gradients(run: (sink: GraphGradSink) => void): Map<Param, string> {
    return this.sinkOf(run).gradsOf(0);
  }

  private sinkOf(run: (sink: GraphGradSink) => void): GraphGradSink {
    const sink = new GraphGradSink(this.g);
    run(sink);
    return sink;
  }

  private seedsFor(exit: number, seed: string): (string | null)[] {
    return this.net.exits.map((e) => (e.index === exit ? seed : null));
  }

  /** The whole step: the method's passes and updates, then the graph's outputs. */
  emit(): StepGraphSpec {
    const { net, g } = this;
    const { method, hyper, lossWeights } = this.method;
    const equilibrium = hyper.gradientEquilibrium ?? false;
    const distill = hyper.distillation !== undefined;
    const final = net.exits.length - 1;
    let losses: string[] = [];
    let crossEntropy: string[] = [];
    let correct: string[] = [];
    if (method === 'pairwise') {
      net.exits.forEach((_, k) => {
        const traced = this.traceNetwork(distill ? undefined : k);
        const e = this.exitLosses(traced, distill)[k]!;
        const grads = this.gradients((sink) =>
          traced.backward(this.seedsFor(k, e.dLogits), sink, { stacked: false, equilibrium }),
        );
        this.step(2 * k + 1, grads);
        this.step(2 * k, grads, lossWeights[k]);
        losses.push(e.loss);
        crossEntropy.push(e.crossEntropy);
        correct.push(e.correct);
      });
    } else {
      const traced = this.traceNetwork();
      const e = this.exitLosses(traced, distill && method !== 'plain');
      losses = e.map((x) => x.loss);
      crossEntropy = e.map((x) => x.crossEntropy);
      correct = e.map((x) => x.correct);
      if (method === 'multiway') {
        // All gradients from the forward pass' activations and weights, then the steps in series.
        const sink = this.sinkOf((sink) =>
          traced.backward(
            e.map((x) => x.dLogits),
            sink,
            { stacked: true, equilibrium },
          ),
        );
        e.forEach((_, k) => {
          const exitGrads = sink.gradsOf(k);
          this.step(2 * k + 1, exitGrads);
          this.step(2 * k, exitGrads, lossWeights[k]);
        });
      } else if (method === 'joint') {
        const seeds = e.map((x, k) => g.scale(x.dLogits, lossWeights[k]!));
        this.step(
          0,
          this.gradients((sink) => traced.backward(seeds, sink, { stacked: false, equilibrium })),
        );
      } else {
        const backbone = this.gradients((sink) =>
          traced.backward(this.seedsFor(final, e[final]!.dLogits), sink, { stacked: false, equilibrium: false }),
        );
        const probes = this.gradients((sink) => {
          for (let k = 0; k < final; k++) traced.backwardHead(k, e[k]!.dLogits, sink);
        });
        this.step(0, backbone);
        this.step(1, probes);
      }
    }
    return this.outputs(losses, correct, distill && method !== 'plain' ? crossEntropy : undefined);
  }

  /** A flat state value as outputs of statePieces(size). */
  private pieces(value: string, size: number): { name: string; size: number }[] {
    const sizes = statePieces(size);
    const names =
      sizes.length === 1
        ? [this.g.op('Identity', [value])]
        : this.g.opOutputs('Split', [value, this.g.int64s(sizes)], sizes.length, [intAttribute('axis', 0)]);
    return names.map((name, i) => ({ name, size: sizes[i]! }));
  }

  private outputs(losses: string[], correct: string[], crossEntropy: string[] | undefined): StepGraphSpec {
    const { g, net, shape } = this;
    const exits = net.exits.length;
    const buffersOut = g.concat(
      net.buffers.map((b) => g.reshape(this.bufferValues.get(b) ?? this.read(b), [b.variable.size])),
    );
    const updated = (input: string, value: string, size: number) => ({
      input,
      outputs: this.pieces(value, size),
      size,
    });
    const state = [
      updated('params', this.paramsFlat, this.params.size),
      updated('buffers', buffersOut, this.buffers.size),
      ...this.method.optimizers
        .filter((opt) => opt.settings.momentum)
        .map((opt, k) =>
          updated(
            `velocity${k}`,
            this.velocities[k]!,
            rangesOf(this.params, opt.params).reduce((n, [a, b]) => n + b - a, 0),
          ),
        ),
    ];
    const lossesOut = g.concat(losses);
    const correctOut = g.concat(correct);
    const crossEntropyOut = crossEntropy ? g.concat(crossEntropy) : undefined;
    return {
      g,
      inputs: [
        ['x', [shape.batch, ...shape.image]],
        [this.oneHot, [shape.batch, net.description.classes]],
        ['labels', [shape.batch]],
        [this.lrFactor, []],
        ...state.map(({ input, size }): [string, number[]] => [input, [size]]),
      ],
      outputs: [
        ...state.flatMap(({ outputs }) => outputs.map(({ name, size }): [string, number[]] => [name, [size]])),
        [lossesOut, [exits]],
        [correctOut, [exits]],
        ...(crossEntropyOut ? [[crossEntropyOut, [exits]] as [string, number[]]] : []),
      ],
      state,
      losses: lossesOut,
      correct: correctOut,
      crossEntropy: crossEntropyOut,
    };
  }
}
