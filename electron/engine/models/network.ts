/**
 * An Mw-network: stem -> blocks, with an exit head after chosen blocks and after the last one.
 * One traced forward pass yields every exit's logits and a backward that can start from any
 * combination of exits, which is what the four training methods need.
 */
import * as tf from '@tensorflow/tfjs-core';
import { layerOfBlock } from '../../../shared/spec.js';
import { splitHead, type Block } from './blocks.js';
import {
  GlobalAveragePool,
  parameterCount,
  Sequence,
  StepClock,
  type FeatureShape,
  type GradSink,
  type Layer,
  type Param,
  type Traced,
} from './layers.js';

export interface ExitPoint {
  /** Position among the exits, shallowest first; the final output is last. */
  index: number;
  /** 1-based block after which the exit sits. */
  block: number;
  /** Layer index of that block's output (stem = layer 1, two layers per block). */
  layer: number;
  final: boolean;
}

export interface ExitCost extends ExitPoint {
  /** Trainable parameters of the sub-model ending at this exit (backbone prefix + its head). */
  params: number;
  /** Multiply-accumulates per image of that sub-model. */
  macs: number;
}

export interface NetworkDescription {
  family: 'resnet' | 'mobilenet' | 'imported';
  /** "MwResNet-20-3", "MwMobileNet-0.5-5", "MwImported-resnet18-5". */
  name: string;
  inputShape: FeatureShape;
  classes: number;
}

export interface TracedNetwork {
  /** Logits of every traced exit, shallowest first. */
  logits: tf.Tensor2D[];
  /**
   * Back-propagates the given logit gradients (null = exit not involved) through their heads
   * and the blocks below them, adding parameter gradients to the sink. With `equilibrium`,
   * IMTA's gradient equilibrium (arXiv 1908.06294): at exit i of N, the gradient from the
   * deeper blocks is scaled by N-i-1 and, with the head's, by 1/(N-i) on entering block i,
   * so each block learns from the average of the exits at and above it.
   */
  backward(seeds: readonly (tf.Tensor | null)[], sink: GradSink, equilibrium?: boolean): void;
  /** Back-propagates into one exit head only, stopping at the features (a probe on a frozen backbone). */
  backwardHead(exit: number, seed: tf.Tensor, sink: GradSink): void;
}

/** A traced part's backward: the gradient of its output to its input's, parameter gradients into `sink`. */
export type PartBackward<T, S> = (dy: T, sink: S) => T;

/**
 * How the exit-by-exit backward walk combines gradients: tfjs tensors here, graph values in the
 * compiled step (train/ort/step.ts), which may also keep each exit's gradient apart (stacked).
 */
export interface GradientFlow<T, S> {
  scale(value: T, factor: number): T;
  /** The gradient below exit `exit`'s block: `dh` from the deeper blocks (if any) joined with its head's. */
  join(dh: T | null, fromHead: T, exit: number): T;
  /** Called before exit `exit`'s head runs backward, and again (undefined) before each block's. */
  enter?(sink: S, exit?: number): void;
}

/**
 * The backward walk of MwNetwork.trace: from the deepest seeded exit down, each block gets the
 * gradient of the exits at and above it. With `equilibrium`, IMTA's gradient equilibrium (see
 * TracedNetwork.backward).
 */
export function backwardThroughExits<T, S>(
  exits: readonly ExitPoint[],
  parts: { stem: PartBackward<T, S>; blocks: readonly PartBackward<T, S>[]; heads: readonly PartBackward<T, S>[] },
  seeds: readonly (T | null)[],
  sink: S,
  equilibrium: boolean,
  flow: GradientFlow<T, S>,
): void {
  const deepest = seeds.reduce<number>((d, seed, k) => (seed ? Math.max(d, exits[k]!.block) : d), 0);
  const exitCount = exits.length;
  let dh: T | null = null;
  for (let b = deepest; b >= 1; b--) {
    for (const exit of exits) {
      if (exit.block !== b) continue;
      if (equilibrium && dh) dh = flow.scale(dh, exitCount - exit.index - 1);
      const seed = seeds[exit.index];
      if (seed) {
        flow.enter?.(sink, exit.index);
        dh = flow.join(dh, parts.heads[exit.index]!(seed, sink), exit.index);
      }
      if (equilibrium && dh) dh = flow.scale(dh, 1 / (exitCount - exit.index));
    }
    flow.enter?.(sink);
    if (dh) dh = parts.blocks[b - 1]!(dh, sink);
  }
  if (dh) parts.stem(dh, sink);
}

const TENSOR_FLOW: GradientFlow<tf.Tensor, GradSink> = {
  scale: (value, factor) => tf.mul(value, factor),
  join: (dh, fromHead) => (dh ? tf.add(dh, fromHead) : fromHead),
};

/** The heads traced on their inputs alone (a frozen backbone): logits and a backward into each head. */
export type TracedHeads = Pick<TracedNetwork, 'logits' | 'backwardHead'>;

export interface ForwardOptions {
  /** Compute exits up to this index only (the sub-model of a shallower exit). */
  upToExit?: number;
  /** Compute only the head of exit `upToExit`: the standalone sub-model a user would export. */
  onlyLast?: boolean;
  /** Lesion: replace this 1-based block by its shortcut. */
  skipBlock?: number;
}

export class MwNetwork {
  readonly exits: readonly ExitPoint[];
  /** Each head as its fixed leading layers and its trained rest (blocks.ts splitHead). */
  private readonly headParts: readonly { fixed: Sequence; trained: Sequence }[];

  constructor(
    readonly description: NetworkDescription,
    readonly stem: Layer,
    readonly blocks: readonly Block[],
    /** One head per exit, aligned with `exits`. */
    readonly heads: readonly Layer[],
    exitBlocks: readonly number[],
    /** The training step, read by random layers (dropout); the trainer sets it before each step. */
    readonly clock = new StepClock(),
  ) {
    if (heads.length !== exitBlocks.length) throw new Error('one head per exit is required');
    this.headParts = heads.map((head) => splitHead(head instanceof Sequence ? head : new Sequence([head])));
    this.exits = exitBlocks.map((block, index) => ({
      index,
      block,
      layer: layerOfBlock(block),
      final: index === exitBlocks.length - 1,
    }));
  }

  get params(): Param[] {
    return [this.stem, ...this.blocks, ...this.heads].flatMap((l) => [...l.params]);
  }

  get buffers(): Param[] {
    return [this.stem, ...this.blocks, ...this.heads].flatMap((l) => [...l.buffers]);
  }

  /** Parameters that exit k's loss reaches: stem, blocks up to its block, its head. */
  segmentParams(exit: number): Param[] {
    return [...this.backboneParams(exit), ...this.heads[exit]!.params];
  }

  /** The backbone below exit k: stem and blocks up to its block (its head excluded). */
  backboneParams(exit: number): Param[] {
    const point = this.exitAt(exit);
    return [this.stem, ...this.blocks.slice(0, point.block)].flatMap((l) => [...l.params]);
  }

  exitAt(exit: number): ExitPoint {
    const point = this.exits[exit];
    if (!point) throw new Error(`exit ${exit} does not exist (the network has ${this.exits.length})`);
    return point;
  }

  /** Inference: logits of every exit (or of the exits up to `upToExit`). */
  predict(x: tf.Tensor, options: ForwardOptions = {}): tf.Tensor2D[] {
    const last = options.upToExit ?? this.exits.length - 1;
    const lastBlock = this.exitAt(last).block;
    const logits: tf.Tensor2D[] = [];
    let h = this.stem.forward(x);
    for (let b = 1; b <= lastBlock; b++) {
      const block = this.blocks[b - 1]!;
      h = (b === options.skipBlock ? block.lesionForward(h) : null) ?? block.forward(h);
      for (const exit of this.exits) {
        const wanted = options.onlyLast ? exit.index === last : exit.index <= last;
        if (exit.block === b && wanted) logits.push(this.heads[exit.index]!.forward(h) as tf.Tensor2D);
      }
    }
    return logits;
  }

  /** Parameters of the stem and every block: what a frozen backbone holds still. */
  get backboneOnlyParams(): Param[] {
    return [this.stem, ...this.blocks].flatMap((l) => [...l.params]);
  }

  /**
   * What each head trains on while the backbone is frozen: the backbone in inference mode
   * (batch norm normalises with its running statistics and leaves them as they are), then each
   * head's fixed leading layers.
   *
   * Frozen means eval mode here, a choice: SDN's IC-only code freezes parameters but keeps
   * model.train(), so its batch-norm statistics keep moving, and Keras of Elastic's time
   * (trainable = False) still normalised with batch statistics. Fixed statistics keep the
   * frozen backbone exactly the pretrained function (what modern Keras and fine-tuning guides
   * do), and make its features the same every epoch, which is what lets them be cached. Shape per exit: the pooled [N, C] for an Elastic head, the
   * [N, H, W, C] feature map for a head that starts with batch norm.
   */
  headInputs(x: tf.Tensor): tf.Tensor[] {
    const inputs: tf.Tensor[] = [];
    let h = this.stem.forward(x);
    for (let b = 1; b <= this.exits.at(-1)!.block; b++) {
      h = this.blocks[b - 1]!.forward(h);
      for (const exit of this.exits)
        if (exit.block === b) inputs[exit.index] = this.headParts[exit.index]!.fixed.forward(h);
    }
    return inputs;
  }

  /** Shape of one image's head input at each exit (headInputs without the batch axis). */
  headInputShapes(): number[][] {
    let shape = this.stem.outputShape(this.description.inputShape);
    const atBlock = this.blocks.map((block) => (shape = block.outputShape(shape)));
    return this.exits.map((exit) => {
      const { fixed } = this.headParts[exit.index]!;
      const [h, w, c] = fixed.outputShape(atBlock[exit.block - 1]!);
      // Pooling's shape is [1, 1, C], its tensor [N, C].
      return fixed.layers.some((l) => l instanceof GlobalAveragePool) ? [c] : [h, w, c];
    });
  }

  /** Training-mode forward of each head's trained layers on its input from headInputs. */
  traceHeads(inputs: readonly tf.Tensor[]): TracedHeads {
    const heads = this.headParts.map((part, k) => part.trained.trace(inputs[k]!));
    return {
      logits: heads.map((t) => t.y as tf.Tensor2D),
      backwardHead: (exit, seed, sink) => {
        heads[exit]!.backward(seed, sink);
      },
    };
  }

  /**
   * Training-mode forward pass (updates batch-norm statistics) keeping what backward needs;
   * with `upToExit`, only the blocks and heads up to that exit run (pair-wise BP).
   */
  trace(x: tf.Tensor, upToExit = this.exits.length - 1): TracedNetwork {
    const lastBlock = this.exitAt(upToExit).block;
    const stem = this.stem.trace(x);
    const blocks: Traced[] = [];
    const heads: Traced[] = [];
    let h = stem.y;
    for (let b = 1; b <= lastBlock; b++) {
      const traced = this.blocks[b - 1]!.trace(h);
      blocks.push(traced);
      h = traced.y;
      for (const exit of this.exits)
        if (exit.block === b && exit.index <= upToExit) heads[exit.index] = this.heads[exit.index]!.trace(h);
    }
    return {
      logits: heads.map((t) => t.y as tf.Tensor2D),
      backward: (seeds, sink, equilibrium = false) =>
        backwardThroughExits(
          this.exits,
          { stem: stem.backward, blocks: blocks.map((t) => t.backward), heads: heads.map((t) => t.backward) },
          seeds,
          sink,
          equilibrium,
          TENSOR_FLOW,
        ),
      backwardHead: (exit, seed, sink) => {
        heads[exit]!.backward(seed, sink);
      },
    };
  }

  /** Size and compute of every exit's sub-model. */
  costs(): ExitCost[] {
    const [h, w, c] = this.description.inputShape;
    let shape: FeatureShape = [h, w, c];
    let params = parameterCount(this.stem);
    let macs = this.stem.macs(shape);
    shape = this.stem.outputShape(shape);
    const backboneAt: { params: number; macs: number; shape: FeatureShape }[] = [];
    for (const block of this.blocks) {
      params += parameterCount(block);
      macs += block.macs(shape);
      shape = block.outputShape(shape);
      backboneAt.push({ params, macs, shape });
    }
    return this.exits.map((exit) => {
      const backbone = backboneAt[exit.block - 1]!;
      const head = this.heads[exit.index]!;
      return {
        ...exit,
        params: backbone.params + parameterCount(head),
        macs: backbone.macs + head.macs(backbone.shape),
      };
    });
  }

  /** Every trainable parameter and buffer by name (checkpoints, export). */
  namedTensors(): Map<string, tf.Variable> {
    return new Map([...this.params, ...this.buffers].map((p) => [p.name, p.variable]));
  }

  dispose(): void {
    for (const p of [...this.params, ...this.buffers]) p.variable.dispose();
  }
}
