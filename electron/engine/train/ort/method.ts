/**
 * A training method whose whole step runs as one onnxruntime graph (step.ts), for the `ort`
 * backend. Between steps the weights, batch-norm statistics and momentum buffers stay in
 * onnxruntime's tensors: each state tensor has two buffers, the step reads one and writes the
 * other, and they swap (no copies). Only the losses and correct counts come back each step.
 * `settle` writes the state into the network's tfjs variables and the optimizers' buffers, so
 * evaluation, export, analyses and checkpoints work unchanged (and a checkpoint resumes on any
 * backend); the next step reads them back, so whatever changed them in between (a restore) counts.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as ort from 'onnxruntime-node';
import { OnnxProgram } from '../../backend/ortConvolutions/index.js';
import type { MwNetwork, Param } from '../../models/index.js';
import type { Hyperparameters, StepResult, TrainingMethod } from '../methods.js';
import { StepEmitter, type StepGraphSpec } from './step.js';
import type { StepGraph } from './layers.js';

/** Drops the nodes and constants no output depends on (the image's gradient, unused losses). */
function prune(g: StepGraph, outputs: readonly string[]): void {
  const keep = new Set<number>();
  const wanted = new Set(outputs);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const node = g.nodes[i]!;
    if (node.output.some((o) => wanted.has(o))) {
      keep.add(i);
      node.input.forEach((input) => wanted.add(input));
    }
  }
  const nodes = g.nodes.filter((_, i) => keep.has(i));
  g.nodes.splice(0, g.nodes.length, ...nodes);
  const initializers = g.initializers.filter((t) => wanted.has(t.name));
  g.initializers.splice(0, g.initializers.length, ...initializers);
}

interface CompiledStep {
  program: OnnxProgram;
  spec: StepGraphSpec;
}

/** Two buffers of one state tensor: the step reads `current` and writes `next`, then they swap. */
interface PingPong {
  current: Float32Array;
  next: Float32Array;
}

export interface OrtStepOptions {
  threads: number;
  /** MLAS's NCHWc block size, if the blocked operators run here. */
  block: number | undefined;
  /** Extra session options (profiling). */
  session?: ort.InferenceSession.SessionOptions;
}

/** Views of a state buffer in the pieces the step returns it in. */
function piecesOf(values: Float32Array, pieces: readonly { size: number }[]): Float32Array[] {
  let at = 0;
  return pieces.map(({ size }) => values.subarray(at, (at += size)));
}

export class OrtTrainingMethod implements TrainingMethod {
  readonly method;
  readonly lossWeights;
  readonly optimizers;
  /** Compiled steps by batch size (the last batch of an epoch may be smaller). */
  private readonly compiled = new Map<number, CompiledStep>();
  private state: PingPong[] | undefined;
  /** Whether onnxruntime holds newer values than the tfjs variables. */
  private live = false;

  /**
   * `reference` is the same method on tfjs (methods.ts): its optimizers hold the names, settings
   * and momentum buffers that checkpoints read. Throws UnsupportedStepError where the network has
   * a layer the graph cannot express.
   */
  constructor(
    private readonly net: MwNetwork,
    private readonly reference: TrainingMethod,
    private readonly hyper: Hyperparameters,
    private readonly options: OrtStepOptions,
  ) {
    this.method = reference.method;
    this.lossWeights = reference.lossWeights;
    this.optimizers = reference.optimizers;
    // Emitting is cheap and finds unsupported layers now, not at the first step.
    this.emitter(1).emit();
  }

  private emitter(batch: number): StepEmitter {
    const [height, width, channels] = this.net.description.inputShape;
    return new StepEmitter(
      this.net,
      {
        method: this.method,
        hyper: this.hyper,
        lossWeights: this.lossWeights,
        optimizers: this.optimizers,
      },
      { batch, image: [height, width, channels] },
      this.options.block,
    );
  }

  private compile(batch: number): CompiledStep {
    let step = this.compiled.get(batch);
    if (step === undefined) {
      const spec = this.emitter(batch).emit();
      prune(
        spec.g,
        spec.outputs.map(([name]) => name),
      );
      const program = new OnnxProgram({ g: spec.g, inputs: spec.inputs, outputs: spec.outputs }, this.options.threads, {
        // The step is one long run: threads that spin between operators save their wake-ups.
        extra: { session: { intra_op: { allow_spinning: '1' } } },
        // The arena keeps freed intermediates for the next step's. Without it every large tensor is
        // fresh memory whose pages fault in as it is first written: MwResNet-20's multi-way step took
        // 2.35 s against 0.64 s with it (Slice, the first writer of most tensors, 1104 against 39 ms).
        enableCpuMemArena: true,
        // The memory pattern plans one block for every intermediate of the run at once: 1.76 GiB
        // resident against 1.02 GiB without it, at the same speed (MwResNet-20 multi-way, batch 128).
        enableMemPattern: false,
        ...this.options.session,
      });
      step = { program, spec };
      this.compiled.set(batch, step);
    }
    return step;
  }

  /** The state tensors' values from the tfjs variables and optimizer buffers (zeros where none yet). */
  private load(spec: StepGraphSpec): void {
    const flat = (params: readonly Param[], values: (p: Param) => tf.Tensor | undefined): Float32Array => {
      const out = new Float32Array(params.reduce((n, p) => n + p.variable.size, 0));
      let at = 0;
      for (const p of params) {
        const value = values(p);
        if (value) out.set(value.dataSync() as Float32Array, at);
        at += p.variable.size;
      }
      return out;
    };
    const values = [
      flat(this.net.params, (p) => p.variable),
      flat(this.net.buffers, (p) => p.variable),
      ...this.optimizers
        .filter((opt) => opt.settings.momentum)
        .map((opt) => {
          const saved = opt.state();
          return flat(opt.params, (p) => saved.get(p.name));
        }),
    ];
    this.state = spec.state.map((s, i) => {
      const current = values[i]!;
      if (current.length !== s.size)
        throw new Error(`state tensor ${s.input} has ${current.length} values, expected ${s.size}`);
      return { current, next: new Float32Array(s.size) };
    });
    this.live = true;
  }

  step(x: tf.Tensor4D, labels: tf.Tensor1D, lrFactor: number): StepResult {
    const batch = x.shape[0];
    const { program, spec } = this.compile(batch);
    if (!this.live || this.state === undefined) this.load(spec);
    const state = this.state!;
    const classes = this.net.description.classes;
    const labelValues = labels.dataSync();
    const oneHot = new Float32Array(batch * classes);
    labelValues.forEach((label, n) => (oneHot[n * classes + label] = 1));
    const exits = this.net.exits.length;
    const losses = new Float32Array(exits);
    const correct = new Float32Array(exits);
    const crossEntropy = spec.crossEntropy ? new Float32Array(exits) : undefined;
    program.run(
      [
        x.dataSync() as Float32Array,
        oneHot,
        Float32Array.from(labelValues),
        Float32Array.of(lrFactor),
        ...state.map((s) => s.current),
      ],
      [
        ...state.flatMap((s, i) => piecesOf(s.next, spec.state[i]!.outputs)),
        losses,
        correct,
        ...(crossEntropy ? [crossEntropy] : []),
      ],
    );
    for (const s of state) [s.current, s.next] = [s.next, s.current];
    return {
      losses: tf.tensor1d(losses),
      correct: tf.tensor1d(correct),
      ...(crossEntropy ? { crossEntropy: tf.tensor1d(crossEntropy) } : {}),
    };
  }

  /** Frozen-backbone steps train the heads on tfjs (methods.ts), from the variables brought up to date. */
  stepHeads(inputs: readonly tf.Tensor[], labels: tf.Tensor1D, lrFactor: number): StepResult {
    this.settle();
    return this.reference.stepHeads(inputs, labels, lrFactor);
  }

  /** Writes the weights, statistics and momentum buffers into the tfjs variables and optimizers. */
  settle(): void {
    if (!this.live || this.state === undefined) return;
    const [params, buffers, ...velocities] = this.state;
    const assign = (list: readonly Param[], flat: Float32Array) => {
      let at = 0;
      for (const p of list) {
        tf.tidy(() => p.variable.assign(tf.tensor(flat.subarray(at, at + p.variable.size), p.variable.shape)));
        at += p.variable.size;
      }
    };
    assign(this.net.params, params!.current);
    assign(this.net.buffers, buffers!.current);
    this.optimizers
      .filter((opt) => opt.settings.momentum)
      .forEach((opt, k) => {
        const flat = velocities[k]!.current;
        let at = 0;
        const saved = new Map<string, tf.Tensor>();
        for (const p of opt.params) {
          saved.set(p.name, tf.tensor(flat.subarray(at, at + p.variable.size), p.variable.shape));
          at += p.variable.size;
        }
        opt.loadState(saved);
        tf.dispose([...saved.values()]);
      });
    this.live = false;
  }

  /** Ends profiling of every compiled step (sessions opened with `enableProfiling`). */
  endProfiling(): void {
    for (const { program } of this.compiled.values()) program.endProfiling();
  }

  release(): void {
    for (const { program } of this.compiled.values()) program.dispose();
    this.compiled.clear();
    this.state = undefined;
    this.live = false;
  }
}
