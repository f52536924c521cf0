/**
 * The building blocks of Mw-networks, each with an explicit backward pass.
 *
 * Why not tfjs autodiff: multi-way BP needs, from ONE forward pass, a separate gradient for
 * each exit's loss (method.md). tf.grads re-runs the forward function on every call, so K
 * exits would cost K forward passes and K updates of the batch-norm statistics. Here a
 * traced forward pass keeps what each layer needs and returns a `backward` closure that can
 * be called once per exit (PyTorch's retain_graph). Every backward is checked against tfjs
 * autodiff in test/engine/layers.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  channelAffine,
  channelAffine2,
  channelSum,
  channelSums,
  reluGrad,
  WIDE_ROWS_FROM,
} from '../backend/channelOps.js';
import {
  conv2dFilterGrad,
  conv2dInputGrad,
  depthwiseFilterGrad,
  depthwiseInputGrad,
  type ExplicitPad,
} from '../backend/convGradientOps.js';
import { Random } from '../random.js';

/** A trainable tensor or a persistent buffer (batch-norm running statistics). */
export interface Param {
  readonly name: string;
  readonly variable: tf.Variable;
}

/** Collects parameter gradients of one backward pass. */
export class GradSink {
  readonly grads = new Map<Param, tf.Tensor>();

  add(param: Param, grad: tf.Tensor): void {
    const previous = this.grads.get(param);
    this.grads.set(param, previous ? tf.add(previous, grad) : grad);
  }

  get(param: Param): tf.Tensor | undefined {
    return this.grads.get(param);
  }
}

/** Maps the gradient of a layer's output to the gradient of its input, adding parameter gradients to the sink. */
export type Backward = (dy: tf.Tensor, sink: GradSink) => tf.Tensor;

export interface Traced {
  y: tf.Tensor;
  backward: Backward;
}

/** Shape of one image as it flows through the network: [height, width, channels]. */
export type FeatureShape = readonly [number, number, number];

export interface Layer {
  /** Trainable parameters. */
  readonly params: readonly Param[];
  /** Persistent non-trainable state saved in checkpoints. */
  readonly buffers: readonly Param[];
  /** Inference-mode forward (batch-norm uses running statistics). */
  forward(x: tf.Tensor): tf.Tensor;
  /** Training-mode forward that keeps what backward needs (and updates batch-norm statistics). */
  trace(x: tf.Tensor): Traced;
  outputShape(input: FeatureShape): FeatureShape;
  /** Multiply-accumulates per image. */
  macs(input: FeatureShape): number;
}

/** Creates named parameters under a prefix ("blocks.3.conv1") with seeded initial values. */
export class ParamFactory {
  constructor(
    private readonly rng: Random,
    readonly prefix = '',
  ) {}

  /** A seed for a layer that draws its own random numbers (dropout). */
  seed(): number {
    return this.rng.fork();
  }

  child(name: string): ParamFactory {
    return new ParamFactory(this.rng, this.prefix ? `${this.prefix}.${name}` : name);
  }

  /** Values are drawn in JS so a seed gives the same weights on every backend. */
  normal(name: string, shape: number[], std: number): Param {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    for (let i = 0; i < size; i += 2) {
      // Box-Muller: two normals per pair of uniforms.
      const u = 1 - this.rng.next();
      const v = this.rng.next();
      const r = Math.sqrt(-2 * Math.log(u)) * std;
      values[i] = r * Math.cos(2 * Math.PI * v);
      if (i + 1 < size) values[i + 1] = r * Math.sin(2 * Math.PI * v);
    }
    return this.make(name, tf.tensor(values, shape));
  }

  uniform(name: string, shape: number[], bound: number): Param {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++) values[i] = (2 * this.rng.next() - 1) * bound;
    return this.make(name, tf.tensor(values, shape));
  }

  constant(name: string, shape: number[], value: number, trainable = true): Param {
    return this.make(name, tf.fill(shape, value), trainable);
  }

  /** A non-trainable tensor with given values (takes ownership of `values`). */
  fixed(name: string, values: tf.Tensor): Param {
    return this.make(name, values, false);
  }

  /** A parameter with given values, e.g. imported weights (takes ownership of `values`). */
  given(name: string, values: tf.Tensor, trainable = true): Param {
    return this.make(name, values, trainable);
  }

  private make(name: string, initial: tf.Tensor, trainable = true): Param {
    // tfjs variable names are process-global; ours only need to be unique within a network.
    const variable = tf.variable(initial, trainable);
    // The variable holds its own copy; the initial values are no longer needed.
    initial.dispose();
    return { name: this.prefix ? `${this.prefix}.${name}` : name, variable };
  }
}

/** PyTorch-style symmetric padding (k-1)/2, so shapes and exported models match nn.Conv2d(padding=k//2). */
function symmetricPad(kernel: number): ExplicitPad {
  const p = (kernel - 1) / 2;
  return [
    [0, 0],
    [p, p],
    [p, p],
    [0, 0],
  ];
}

function convOutputSize(size: number, kernel: number, stride: number): number {
  return Math.floor((size + 2 * ((kernel - 1) / 2) - kernel) / stride) + 1;
}

/** Convolution without bias (a batch norm always follows). */
export class Conv2d implements Layer {
  readonly weight: Param;
  readonly params: readonly Param[];
  readonly buffers: readonly Param[] = [];

  constructor(
    make: ParamFactory,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: number,
    readonly stride: number,
  ) {
    if (kernel % 2 !== 1) throw new Error(`conv kernel must be odd, got ${kernel}`);
    // He (fan-out) initialisation, as torchvision's resnet.py.
    const std = Math.sqrt(2 / (kernel * kernel * outChannels));
    this.weight = make.normal('weight', [kernel, kernel, inChannels, outChannels], std);
    this.params = [this.weight];
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.conv2d(x as tf.Tensor4D, this.weight.variable as tf.Tensor4D, this.stride, symmetricPad(this.kernel));
  }

  trace(x: tf.Tensor): Traced {
    const y = this.forward(x);
    // Keep the weights as they were at forward time: method.md computes every exit's gradient
    // from the forward pass, even if an optimizer steps before a later backward call.
    const w = tf.clone(this.weight.variable) as tf.Tensor4D;
    const pad = symmetricPad(this.kernel);
    return {
      y,
      backward: (dy, sink) => {
        sink.add(this.weight, conv2dFilterGrad(x as tf.Tensor4D, dy as tf.Tensor4D, w.shape, this.stride, pad));
        return conv2dInputGrad(x.shape as [number, number, number, number], dy as tf.Tensor4D, w, this.stride, pad);
      },
    };
  }

  outputShape([h, w]: FeatureShape): FeatureShape {
    return [convOutputSize(h, this.kernel, this.stride), convOutputSize(w, this.kernel, this.stride), this.outChannels];
  }

  macs(input: FeatureShape): number {
    const [h, w] = this.outputShape(input);
    return h * w * this.kernel * this.kernel * this.inChannels * this.outChannels;
  }
}

/**
 * He et al.'s option-A shortcut: the input subsampled with the stride and zero-padded to more
 * channels, no parameters. Written as a fixed strided 1x1 convolution with the identity
 * embedding [I | 0] as its filter (the same values exactly), so it runs on the tested
 * convolution kernels and exports as an ordinary convolution. The filter is a buffer: not
 * trained, kept with the network's tensors.
 */
export class ZeroPadShortcut implements Layer {
  readonly embedding: Param;
  readonly params: readonly Param[] = [];
  readonly buffers: readonly Param[];

  constructor(
    make: ParamFactory,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly stride: number,
  ) {
    if (outChannels < inChannels)
      throw new Error(`an option-A shortcut cannot drop channels (${inChannels} -> ${outChannels})`);
    this.embedding = make.fixed(
      'embedding',
      tf.tidy(() => tf.reshape(tf.eye(inChannels, outChannels), [1, 1, inChannels, outChannels])),
    );
    this.buffers = [this.embedding];
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.conv2d(x as tf.Tensor4D, this.embedding.variable as tf.Tensor4D, this.stride, symmetricPad(1));
  }

  trace(x: tf.Tensor): Traced {
    const w = this.embedding.variable as tf.Tensor4D;
    return {
      y: this.forward(x),
      backward: (dy) =>
        conv2dInputGrad(
          x.shape as [number, number, number, number],
          dy as tf.Tensor4D,
          w,
          this.stride,
          symmetricPad(1),
        ),
    };
  }

  outputShape([h, w]: FeatureShape): FeatureShape {
    return [convOutputSize(h, 1, this.stride), convOutputSize(w, 1, this.stride), this.outChannels];
  }

  /** A selection, not arithmetic. */
  macs(): number {
    return 0;
  }
}

/** Depthwise 3x3 convolution (channel multiplier 1) of MobileNet's separable blocks. */
export class DepthwiseConv2d implements Layer {
  readonly weight: Param;
  readonly params: readonly Param[];
  readonly buffers: readonly Param[] = [];

  constructor(
    make: ParamFactory,
    readonly channels: number,
    readonly stride: number,
  ) {
    this.weight = make.normal('weight', [3, 3, channels, 1], Math.sqrt(2 / 9));
    this.params = [this.weight];
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.depthwiseConv2d(x as tf.Tensor4D, this.weight.variable as tf.Tensor4D, this.stride, symmetricPad(3));
  }

  trace(x: tf.Tensor): Traced {
    const y = this.forward(x);
    const w = tf.clone(this.weight.variable) as tf.Tensor4D;
    const pad = symmetricPad(3);
    return {
      y,
      backward: (dy, sink) => {
        sink.add(this.weight, depthwiseFilterGrad(x as tf.Tensor4D, dy as tf.Tensor4D, w.shape, this.stride, pad));
        return depthwiseInputGrad(x.shape as [number, number, number, number], dy as tf.Tensor4D, w, this.stride, pad);
      },
    };
  }

  outputShape([h, w]: FeatureShape): FeatureShape {
    return [convOutputSize(h, 3, this.stride), convOutputSize(w, 3, this.stride), this.channels];
  }

  macs(input: FeatureShape): number {
    const [h, w] = this.outputShape(input);
    return h * w * 9 * this.channels;
  }
}

/** PyTorch's BatchNorm2d defaults: eps 1e-5, running statistics momentum 0.1, unbiased running variance. */
export const BN_EPSILON = 1e-5;
const BN_MOMENTUM = 0.1;

/** Values of an existing batch norm (an imported network's), with its own epsilon and momentum. */
export interface BatchNormValues {
  gamma: tf.Tensor;
  beta: tf.Tensor;
  mean: tf.Tensor;
  variance: tf.Tensor;
  epsilon: number;
  /** PyTorch's convention: the weight of the batch's statistics in the running ones. */
  momentum: number;
}

export class BatchNorm implements Layer {
  readonly gamma: Param;
  readonly beta: Param;
  readonly runningMean: Param;
  readonly runningVar: Param;
  readonly params: readonly Param[];
  readonly buffers: readonly Param[];
  readonly epsilon: number;
  readonly momentum: number;

  /** A new batch norm (gamma 1, beta 0, running statistics 0 and 1), or one holding `values` (taken over). */
  constructor(
    make: ParamFactory,
    readonly channels: number,
    values?: BatchNormValues,
  ) {
    this.gamma = values ? make.given('gamma', values.gamma) : make.constant('gamma', [channels], 1);
    this.beta = values ? make.given('beta', values.beta) : make.constant('beta', [channels], 0);
    this.runningMean = values
      ? make.given('runningMean', values.mean, false)
      : make.constant('runningMean', [channels], 0, false);
    this.runningVar = values
      ? make.given('runningVar', values.variance, false)
      : make.constant('runningVar', [channels], 1, false);
    this.epsilon = values?.epsilon ?? BN_EPSILON;
    this.momentum = values?.momentum ?? BN_MOMENTUM;
    this.params = [this.gamma, this.beta];
    this.buffers = [this.runningMean, this.runningVar];
  }

  forward(x: tf.Tensor): tf.Tensor {
    if (x.size < WIDE_ROWS_FROM) {
      return tf.batchNorm(
        x,
        this.runningMean.variable,
        this.runningVar.variable,
        this.beta.variable,
        this.gamma.variable,
        this.epsilon,
      );
    }
    // (x - mean) * scale + beta as x * scale + shift (tf.batchNorm's fused kernel took 5.6 ms on
    // wasm for [128,28,28,16], two per-channel passes 0.6 ms).
    const scale = tf.mul(this.gamma.variable, tf.rsqrt(tf.add(this.runningVar.variable, this.epsilon)));
    const shift = tf.sub(this.beta.variable, tf.mul(this.runningMean.variable, scale));
    return channelAffine(x, scale, shift);
  }

  trace(x: tf.Tensor): Traced {
    // Per-channel statistics, sums over every axis but the last, through channelOps.ts: one pass on
    // wasm, where tf.sum transposes the whole tensor first (3.0 ms for [128,28,28,16]).
    const count = x.size / this.channels;
    const mean = tf.div(channelSum(x), count);
    // Kept for backward instead of the normalised input: x - mean is all backward needs, and
    // y = (x - mean) * (gamma * invStd) + beta takes two passes fewer than normalising first.
    const centered = channelAffine(x, tf.onesLike(mean), tf.neg(mean));
    const variance = tf.div(channelSums(centered, centered)[1], count);
    const invStd = tf.rsqrt(tf.add(variance, this.epsilon));
    // A new tensor, so later optimizer steps do not change what backward uses (as Conv2d's clone).
    const scale = tf.mul(this.gamma.variable, invStd);
    const y = channelAffine(centered, scale, this.beta.variable);
    this.updateRunningStats(mean, variance, count);
    return {
      y,
      backward: (dy, sink) => {
        const [dBeta, dyCentered] = channelSums(dy, centered);
        const dGamma = tf.mul(dyCentered, invStd);
        sink.add(this.beta, dBeta);
        sink.add(this.gamma, dGamma);
        // dx = scale / m * (m * dy - dBeta - xhat * dGamma) with xhat = centered * invStd,
        // regrouped into per-channel factors so it is one pass over dy and centered:
        // dx = dy * scale + centered * (-scale * invStd * dGamma / m) + (-scale * dBeta / m).
        const centeredFactor = tf.neg(tf.mul(scale, tf.mul(invStd, tf.div(dGamma, count))));
        const offset = tf.neg(tf.mul(scale, tf.div(dBeta, count)));
        return channelAffine2(dy, scale, centered, centeredFactor, offset);
      },
    };
  }

  private updateRunningStats(mean: tf.Tensor, variance: tf.Tensor, count: number): void {
    tf.tidy(() => {
      const unbiased = tf.mul(variance, count / Math.max(1, count - 1));
      this.runningMean.variable.assign(
        tf.add(tf.mul(this.runningMean.variable, 1 - this.momentum), tf.mul(mean, this.momentum)),
      );
      this.runningVar.variable.assign(
        tf.add(tf.mul(this.runningVar.variable, 1 - this.momentum), tf.mul(unbiased, this.momentum)),
      );
    });
  }

  outputShape(input: FeatureShape): FeatureShape {
    return input;
  }

  macs(): number {
    return 0;
  }
}

export class Relu implements Layer {
  readonly params: readonly Param[] = [];
  readonly buffers: readonly Param[] = [];

  forward(x: tf.Tensor): tf.Tensor {
    return tf.relu(x);
  }

  trace(x: tf.Tensor): Traced {
    const y = tf.relu(x);
    return { y, backward: (dy) => reluGrad(dy, y) };
  }

  outputShape(input: FeatureShape): FeatureShape {
    return input;
  }

  macs(): number {
    return 0;
  }
}

/** Global average pooling: [N, H, W, C] -> [N, C]. */
export class GlobalAveragePool implements Layer {
  readonly params: readonly Param[] = [];
  readonly buffers: readonly Param[] = [];

  forward(x: tf.Tensor): tf.Tensor {
    return tf.mean(x, [1, 2]);
  }

  trace(x: tf.Tensor): Traced {
    const [n, h, w, c] = x.shape as [number, number, number, number];
    return {
      y: this.forward(x),
      // A broadcasting multiply, not broadcastTo: wasm runs broadcastTo as a slow generic Tile (~50 ms per head at batch 128).
      backward: (dy) => tf.mul(tf.reshape(tf.div(dy, h * w), [n, 1, 1, c]), tf.ones([1, h, w, 1])),
    };
  }

  outputShape([, , c]: FeatureShape): FeatureShape {
    return [1, 1, c];
  }

  macs([h, w, c]: FeatureShape): number {
    return h * w * c;
  }
}

/**
 * Which training step the network is in, shared by its random layers: a dropout mask is drawn
 * from (its seed, the step), so a resumed run draws the masks an uninterrupted one would.
 */
export class StepClock {
  step = 0;
}

/**
 * Inverted dropout on [N, C] features: while training each value is kept with probability
 * 1 - rate and scaled by 1 / (1 - rate); inference is the identity. The mask is drawn in JS,
 * as the initial weights are, so a seed gives the same masks on every backend.
 */
export class Dropout implements Layer {
  readonly params: readonly Param[] = [];
  readonly buffers: readonly Param[] = [];

  constructor(
    readonly rate: number,
    private readonly seed: number,
    private readonly clock: StepClock,
  ) {
    if (!(rate >= 0 && rate < 1)) throw new Error(`dropout rate must lie in [0, 1), got ${rate}`);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return x;
  }

  trace(x: tf.Tensor): Traced {
    const rng = new Random(Math.imul(this.seed ^ 0x2545f491, 0x9e3779b1) ^ Math.imul(this.clock.step + 1, 0x85ebca77));
    const keep = 1 / (1 - this.rate);
    const mask = new Float32Array(x.size);
    for (let i = 0; i < mask.length; i++) mask[i] = rng.next() < this.rate ? 0 : keep;
    const scale = tf.tensor(mask, x.shape);
    return { y: tf.mul(x, scale), backward: (dy) => tf.mul(dy, scale) };
  }

  outputShape(input: FeatureShape): FeatureShape {
    return input;
  }

  macs(): number {
    return 0;
  }
}

/** Fully connected classifier; bias starts at 0 as in the authors' exit heads. */
export class Dense implements Layer {
  readonly weight: Param;
  readonly bias: Param;
  readonly params: readonly Param[];
  readonly buffers: readonly Param[] = [];

  constructor(
    make: ParamFactory,
    readonly inFeatures: number,
    readonly outFeatures: number,
  ) {
    // PyTorch nn.Linear's default weight range.
    this.weight = make.uniform('weight', [inFeatures, outFeatures], 1 / Math.sqrt(inFeatures));
    this.bias = make.constant('bias', [outFeatures], 0);
    this.params = [this.weight, this.bias];
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.add(tf.matMul(x as tf.Tensor2D, this.weight.variable as tf.Tensor2D), this.bias.variable);
  }

  trace(x: tf.Tensor): Traced {
    const w = tf.clone(this.weight.variable) as tf.Tensor2D;
    return {
      y: this.forward(x),
      backward: (dy, sink) => {
        sink.add(this.weight, tf.matMul(x as tf.Tensor2D, dy as tf.Tensor2D, true, false));
        sink.add(this.bias, tf.sum(dy, 0));
        return tf.matMul(dy as tf.Tensor2D, w, false, true);
      },
    };
  }

  outputShape(): FeatureShape {
    return [1, 1, this.outFeatures];
  }

  macs(): number {
    return this.inFeatures * this.outFeatures;
  }
}

/** Layers applied in order; backward runs them in reverse. */
export class Sequence implements Layer {
  readonly params: readonly Param[];
  readonly buffers: readonly Param[];

  constructor(readonly layers: readonly Layer[]) {
    this.params = layers.flatMap((l) => l.params);
    this.buffers = layers.flatMap((l) => l.buffers);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return this.layers.reduce((h, layer) => layer.forward(h), x);
  }

  trace(x: tf.Tensor): Traced {
    const backwards: Backward[] = [];
    let h = x;
    for (const layer of this.layers) {
      const traced = layer.trace(h);
      backwards.push(traced.backward);
      h = traced.y;
    }
    return {
      y: h,
      backward: (dy, sink) => backwards.reduceRight((g, backward) => backward(g, sink), dy),
    };
  }

  outputShape(input: FeatureShape): FeatureShape {
    return this.layers.reduce((shape, layer) => layer.outputShape(shape), input);
  }

  macs(input: FeatureShape): number {
    let shape = input;
    let total = 0;
    for (const layer of this.layers) {
      total += layer.macs(shape);
      shape = layer.outputShape(shape);
    }
    return total;
  }
}

export function parameterCount(layer: Pick<Layer, 'params'>): number {
  return layer.params.reduce((n, p) => n + p.variable.size, 0);
}
