/** Blocks of the two Mw-network families and the exit head, built from layers.ts. */
import * as tf from '@tensorflow/tfjs-core';
import {
  BatchNorm,
  Conv2d,
  Dense,
  DepthwiseConv2d,
  Dropout,
  GlobalAveragePool,
  Relu,
  Sequence,
  type FeatureShape,
  type Layer,
  type Param,
  type ParamFactory,
  type StepClock,
  type Traced,
  ZeroPadShortcut,
} from './layers.js';
import type { HeadKind, ResNetBlock } from '../../../shared/spec.js';
import { reluGrad } from '../backend/channelOps.js';

/** A backbone block: a Layer that can also be lesioned (skipped, keeping only its shortcut). */
export interface Block extends Layer {
  /** Output when the block is deleted at test time (Veit et al. 2016), or null if it cannot be skipped. */
  lesionForward(x: tf.Tensor): tf.Tensor | null;
  /** Whether lesionForward can replace the block (it returns null otherwise). */
  readonly skippable: boolean;
}

export function convBn(
  make: ParamFactory,
  inC: number,
  outC: number,
  kernel: number,
  stride: number,
  relu: boolean,
): Sequence {
  const layers: Layer[] = [
    new Conv2d(make.child('conv'), inC, outC, kernel, stride),
    new BatchNorm(make.child('bn'), outC),
  ];
  if (relu) layers.push(new Relu());
  return new Sequence(layers);
}

/**
 * Basic residual block of the CIFAR ResNet in three variants (shared/spec.ts RESNET_BLOCKS):
 * - projection: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)), a 1x1 conv + BN shortcut where the shape changes;
 * - option-a: the same with He et al.'s parameter-free option-A shortcut (subsample, zero-pad channels);
 * - preact: conv(relu(bn(conv(relu(bn(x)))))) + shortcut(x), option-A shortcut, no activation after
 *   the sum (He et al. 2016, "Identity mappings"); the next block's or the exit head's BN-ReLU follows.
 */
export class ResidualBlock implements Block {
  readonly main: Sequence;
  readonly shortcut: Layer | null;
  /** Post-activation variants apply a ReLU after the sum. */
  readonly activatesSum: boolean;
  /** The identity or projection shortcut always stands in for the block. */
  readonly skippable = true;
  readonly params: readonly Param[];
  readonly buffers: readonly Param[];

  constructor(make: ParamFactory, inC: number, outC: number, stride: number, variant: ResNetBlock = 'projection') {
    this.activatesSum = variant !== 'preact';
    this.main =
      variant === 'preact'
        ? new Sequence([
            new BatchNorm(make.child('bn1'), inC),
            new Relu(),
            new Conv2d(make.child('conv1'), inC, outC, 3, stride),
            new BatchNorm(make.child('bn2'), outC),
            new Relu(),
            new Conv2d(make.child('conv2'), outC, outC, 3, 1),
          ])
        : new Sequence([
            ...convBn(make.child('conv1'), inC, outC, 3, stride, true).layers,
            ...convBn(make.child('conv2'), outC, outC, 3, 1, false).layers,
          ]);
    const reshapes = stride !== 1 || inC !== outC;
    this.shortcut = !reshapes
      ? null
      : variant === 'projection'
        ? convBn(make.child('shortcut'), inC, outC, 1, stride, false)
        : new ZeroPadShortcut(make.child('shortcut'), inC, outC, stride);
    const parts = this.shortcut ? [this.main, this.shortcut] : [this.main];
    this.params = parts.flatMap((p) => p.params);
    this.buffers = parts.flatMap((p) => p.buffers);
  }

  forward(x: tf.Tensor): tf.Tensor {
    const sum = tf.add(this.main.forward(x), this.shortcut ? this.shortcut.forward(x) : x);
    return this.activatesSum ? tf.relu(sum) : sum;
  }

  trace(x: tf.Tensor): Traced {
    const main = this.main.trace(x);
    const shortcut = this.shortcut?.trace(x);
    const sum = tf.add(main.y, shortcut ? shortcut.y : x);
    const y = this.activatesSum ? tf.relu(sum) : sum;
    return {
      y,
      backward: (dy, sink) => {
        const dSum = this.activatesSum ? reluGrad(dy, y) : dy;
        const dMain = main.backward(dSum, sink);
        return tf.add(dMain, shortcut ? shortcut.backward(dSum, sink) : dSum);
      },
    };
  }

  lesionForward(x: tf.Tensor): tf.Tensor {
    if (!this.shortcut) return x;
    const skipped = this.shortcut.forward(x);
    return this.activatesSum ? tf.relu(skipped) : skipped;
  }

  outputShape(input: FeatureShape): FeatureShape {
    return this.main.outputShape(input);
  }

  macs(input: FeatureShape): number {
    return this.main.macs(input) + (this.shortcut?.macs(input) ?? 0);
  }
}

/** MobileNet v1 depthwise-separable block: dw3x3-BN-ReLU then pw1x1-BN-ReLU. */
export class SeparableBlock implements Block {
  readonly body: Sequence;
  readonly params: readonly Param[];
  readonly buffers: readonly Param[];
  readonly skippable: boolean;

  constructor(make: ParamFactory, inC: number, outC: number, stride: number) {
    this.body = new Sequence([
      new DepthwiseConv2d(make.child('depthwise.conv'), inC, stride),
      new BatchNorm(make.child('depthwise.bn'), inC),
      new Relu(),
      ...convBn(make.child('pointwise'), inC, outC, 1, 1, true).layers,
    ]);
    this.params = this.body.params;
    this.buffers = this.body.buffers;
    this.skippable = stride === 1 && inC === outC;
  }

  forward(x: tf.Tensor): tf.Tensor {
    return this.body.forward(x);
  }

  trace(x: tf.Tensor): Traced {
    return this.body.trace(x);
  }

  /** Without a shortcut only shape-preserving blocks can be skipped. */
  lesionForward(x: tf.Tensor): tf.Tensor | null {
    return this.skippable ? x : null;
  }

  outputShape(input: FeatureShape): FeatureShape {
    return this.body.outputShape(input);
  }

  macs(input: FeatureShape): number {
    return this.body.macs(input);
  }
}

/**
 * Dropout of the Elastic head. The paper's text names dropout but no rate; 0.2 is the rate
 * Keras transfer-learning heads of its time commonly used.
 */
export const ELASTIC_DROPOUT = 0.2;

/** Makes the exit head for a feature map of `channels` channels (the network builders call it once per exit). */
export type HeadMaker = (make: ParamFactory, channels: number) => Sequence;

/**
 * Exit heads (shared/spec.ts HEADS), bias 0 as in the authors' code:
 * - bn-relu: BN -> ReLU -> global average pool -> FC (MW-BP);
 * - elastic: global average pool -> dropout -> FC (Elastic networks); the dropout's masks follow `clock`.
 */
export function headMaker(kind: HeadKind, classes: number, clock: StepClock): HeadMaker {
  return (make, channels) =>
    kind === 'elastic'
      ? new Sequence([
          new GlobalAveragePool(),
          new Dropout(ELASTIC_DROPOUT, make.seed(), clock),
          new Dense(make.child('fc'), channels, classes),
        ])
      : new Sequence([
          new BatchNorm(make.child('bn'), channels),
          new Relu(),
          new GlobalAveragePool(),
          new Dense(make.child('fc'), channels, classes),
        ]);
}

/**
 * A head split where training it on a frozen backbone can start: `fixed` are its leading
 * layers that are fixed functions (pooling, ReLU: no parameters, no randomness), `trained`
 * the rest. With the backbone frozen, `fixed` applied to the features gives the same values
 * every epoch, so those are what a feature cache keeps (the pooled vector for an Elastic head;
 * the whole feature map for a BN-first head, whose batch statistics need it).
 */
export function splitHead(head: Sequence): { fixed: Sequence; trained: Sequence } {
  const cut = head.layers.findIndex((l) => !(l instanceof GlobalAveragePool || l instanceof Relu));
  const at = cut < 0 ? head.layers.length : cut;
  return { fixed: new Sequence(head.layers.slice(0, at)), trained: new Sequence(head.layers.slice(at)) };
}
