/**
 * The engine's layers (models/layers.ts, models/blocks.ts) written as ONNX nodes: for each layer,
 * its training-mode forward and the same explicit backward maths as its `trace`, emitted into one
 * graph instead of run. onnxruntime's CPU package has no autodiff, so every gradient here is the
 * layer's own formula: a convolution's image gradient as a convolution with the flipped filter
 * (ConvTranspose where strided), its filter gradient as per-tap products, batch norm's backward
 * composed from per-channel sums. Activations are NHWC and filters in tfjs's [kh, kw, I, O]
 * layout, so the weights the graph keeps are the tfjs variables' bytes.
 */
import {
  emitConvForward,
  emitConvInputGradient,
  emitDepthwiseFilterGradient,
  emitDepthwiseFilterImage,
  emitDepthwiseForward,
  emitDepthwiseInputGradient,
  emitFilterTaps,
  emitTapProducts,
  GraphBuilder,
} from '../../backend/ortConvolutions/index.js';
import { floatTensor, intAttribute, intsAttribute } from '../../onnx/proto.js';
import type { ExplicitPad } from '../../backend/convGradientOps.js';
import { GraphBlock } from '../../models/import/block.js';
import { ResidualBlock, SeparableBlock } from '../../models/blocks.js';
import { traceGraphBlock } from './importedLayers.js';
import { convGeometry, stackedShape } from './geometry.js';
import { UnsupportedStepError } from './unsupported.js';
import {
  BatchNorm,
  Conv2d,
  Dense,
  DepthwiseConv2d,
  GlobalAveragePool,
  Relu,
  Sequence,
  ZeroPadShortcut,
  type Layer,
  type Param,
} from '../../models/layers.js';

export { UnsupportedStepError } from './unsupported.js';

/** A graph value and its shape. */
export interface Value {
  name: string;
  shape: number[];
}

/** An ONNX graph with float constants and the element-wise shorthand the step needs. */
export class StepGraph extends GraphBuilder {
  private readonly scalars = new Map<number, string>();
  private constantCount = 0;

  /** A float32 scalar constant (shared between uses). */
  scalar(value: number): string {
    let name = this.scalars.get(value);
    if (name === undefined) {
      name = `f${this.constantCount++}`;
      this.initializers.push(floatTensor(name, [], Float32Array.of(value)));
      this.scalars.set(value, name);
    }
    return name;
  }

  /** 1 where the boolean `condition` holds, 0 elsewhere (float32). */
  mask(condition: string): string {
    return this.op('Cast', [condition], [intAttribute('to', 1)]);
  }

  /** A float32 constant of zeros. */
  zeros(shape: number[]): string {
    return this.floats(shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));
  }

  /** A float32 constant of `shape` holding `values`. */
  floats(shape: number[], values: Float32Array): string {
    const name = `z${this.constantCount++}`;
    this.initializers.push(floatTensor(name, shape, values));
    return name;
  }

  add(a: string, b: string): string {
    return this.op('Add', [a, b]);
  }

  sub(a: string, b: string): string {
    return this.op('Sub', [a, b]);
  }

  mul(a: string, b: string): string {
    return this.op('Mul', [a, b]);
  }

  scale(a: string, factor: number): string {
    return factor === 1 ? a : this.mul(a, this.scalar(factor));
  }

  /** Sum over `axes`, dropped from the shape. */
  sum(a: string, axes: number[]): string {
    return this.op('ReduceSum', [a, this.int64s(axes)], [intAttribute('keepdims', 0)]);
  }

  /** A [1, k] row of ones: sums as products, which MLAS runs on every core (ReduceSum over NHWC's leading axes took 8x longer). */
  private ones(k: number): string {
    const key = -k - 1;
    let name = this.scalars.get(key);
    if (name === undefined) {
      name = `o${this.constantCount++}`;
      this.initializers.push(floatTensor(name, [1, k], new Float32Array(k).fill(1)));
      this.scalars.set(key, name);
    }
    return name;
  }

  /**
   * Per-channel sums of an NHWC value: over the images, then the rows, then the columns. Three
   * short sums instead of one long one keep float32 rounding near a pairwise sum's (one product
   * over 4096 positions moved MobileNet's gradients by 5e-4). A value of `stack` batches (the
   * stacked gradients of several exits) gets a row of sums per batch: [stack, C].
   */
  channelSum(v: string, [n, h, w, c]: number[], stack = 1): string {
    const sumOver = (rows: number, value: string, width: number) =>
      this.op('MatMul', [this.ones(rows), this.reshape(value, stack === 1 ? [rows, width] : [stack, rows, width])]);
    const overImages = sumOver(n!, v, h! * w! * c!);
    const overRows = sumOver(h!, overImages, w! * c!);
    return this.reshape(sumOver(w!, overRows, c!), stack === 1 ? [c!] : [stack, c!]);
  }

  /**
   * `op` of an NHWC value and a per-channel vector. The value is viewed as rows of W * C and the
   * vector repeated W times: onnxruntime's broadcast over a last axis of a few channels runs a
   * short inner loop per pixel (3x slower than a same-shape Mul at 16 channels). Either may hold
   * several stacked batches (the gradients of several exits, train/ort/step.ts): the value
   * `stacks.x` batches of `shape`, the vector `stacks.vector` rows of C; one of a single batch
   * is broadcast against each of the other's.
   */
  channelOp(
    op: 'Add' | 'Sub' | 'Mul',
    x: string,
    vector: string,
    [n, h, w, c]: number[],
    stacks: { x: number; vector: number } = { x: 1, vector: 1 },
  ): string {
    const stack = Math.max(stacks.x, stacks.vector);
    const rows = this.reshape(x, stack === 1 ? [n! * h!, w! * c!] : [stacks.x, n! * h!, w! * c!]);
    const row = stack === 1 ? vector : this.reshape(vector, [stacks.vector, 1, c!]);
    const tiled = w === 1 ? row : this.op('Tile', [row, this.int64s(stack === 1 ? [w!] : [1, 1, w!])]);
    return this.reshape(this.op(op, [rows, tiled]), [stack * n!, h!, w!, c!]);
  }

  /**
   * `op` of a value of `stack` batches of `shape` and a value of one (the forward's), for each
   * batch; the value may be of a shape that broadcasts to `shape` (`valueShape`).
   */
  perBatchOp(
    op: 'Mul',
    stacked: string,
    value: string,
    shape: number[],
    stack: number,
    valueShape: readonly number[] = shape,
  ): string {
    if (stack === 1) return this.op(op, [stacked, value]);
    if (valueShape.join() !== shape.join())
      return this.reshape(this.op(op, [this.reshape(stacked, [stack, ...shape]), value]), stackedShape(shape, stack));
    const size = shape.reduce((a, b) => a * b, 1);
    const product = this.op(op, [this.reshape(stacked, [stack, size]), this.reshape(value, [size])]);
    return this.reshape(product, stackedShape(shape, stack));
  }

  /** Concatenation of 1-D values (one value is returned as it is). */
  concat(parts: string[]): string {
    return parts.length === 1 ? parts[0]! : this.op('Concat', parts, [intAttribute('axis', 0)]);
  }
}

/**
 * Parameter gradients of one backward pass, as graph values (models/layers.ts GradSink). The
 * pass may carry several gradients at once, stacked on the batch axis: `rows` names the stream
 * (an exit's loss, or a method's sum of them) each stacked batch belongs to, and a layer adds
 * each parameter's gradient with one row per stream ([stack, ...shape], `stack` = rows.length).
 */
export class GraphGradSink {
  rows: number[] = [0];
  private readonly stacked = new Map<Param, { grad: string; rows: number[] }>();

  constructor(private readonly g: StepGraph) {}

  get stack(): number {
    return this.rows.length;
  }

  add(param: Param, grad: string): void {
    const previous = this.stacked.get(param);
    if (previous && previous.rows.join() !== this.rows.join())
      throw new Error(`${param.name} got gradients of two different stacks`);
    this.stacked.set(param, { grad: previous ? this.g.add(previous.grad, grad) : grad, rows: [...this.rows] });
  }

  /** The gradient of each parameter that `stream` reached, shaped as the parameter. */
  gradsOf(stream: number): Map<Param, string> {
    const grads = new Map<Param, string>();
    for (const [param, { grad, rows }] of this.stacked) {
      const row = rows.indexOf(stream);
      if (row < 0) continue;
      const size = param.variable.size;
      const flat = this.g.reshape(grad, [rows.length * size]);
      grads.set(param, rows.length === 1 ? flat : this.g.slice(flat, [0], [row * size], [(row + 1) * size]));
    }
    return grads;
  }
}

/** Maps the gradient of a layer's output to its input's, adding parameter gradients to the sink. */
export type EmittedBackward = (dy: string, sink: GraphGradSink) => string;

export interface EmittedTrace {
  y: Value;
  backward: EmittedBackward;
}

/** Where layers read and write the network's tensors while the graph is emitted. */
export interface TensorSource {
  /** The current value of a parameter or buffer (after the steps emitted so far). */
  read(param: Param): string;
  /** A buffer's new value (batch-norm running statistics). */
  write(param: Param, value: string): void;
}

/** Emits graph nodes for layers, reading weights from `tensors`; `block` is MLAS's NCHWc block, if any. */
export class LayerEmitter {
  constructor(
    readonly g: StepGraph,
    readonly tensors: TensorSource,
    readonly block: number | undefined,
  ) {}

  trace(layer: Layer, x: Value): EmittedTrace {
    if (layer instanceof Sequence) return this.sequence(layer, x);
    if (layer instanceof Conv2d) return this.conv(layer, x);
    if (layer instanceof BatchNorm) return this.batchNorm(layer, x);
    if (layer instanceof Relu) return this.relu(x);
    if (layer instanceof ZeroPadShortcut) return this.zeroPadShortcut(layer, x);
    if (layer instanceof DepthwiseConv2d) return this.depthwise(layer, x);
    if (layer instanceof GlobalAveragePool) return this.globalAveragePool(x);
    if (layer instanceof Dense) return this.dense(layer, x);
    if (layer instanceof ResidualBlock) return this.residual(layer, x);
    if (layer instanceof SeparableBlock) return this.sequence(layer.body, x);
    if (layer instanceof GraphBlock) return traceGraphBlock(this, layer, x);
    throw new UnsupportedStepError(`the step graph has no ${layer.constructor.name} layer`);
  }

  private sequence(sequence: Sequence, x: Value): EmittedTrace {
    const backwards: EmittedBackward[] = [];
    let h = x;
    for (const layer of sequence.layers) {
      const traced = this.trace(layer, h);
      backwards.push(traced.backward);
      h = traced.y;
    }
    return { y: h, backward: (dy, sink) => backwards.reduceRight((grad, backward) => backward(grad, sink), dy) };
  }

  private conv(layer: Conv2d, x: Value): EmittedTrace {
    return this.convolution(layer.weight, x, layer.stride, false);
  }

  private depthwise(layer: DepthwiseConv2d, x: Value): EmittedTrace {
    return this.convolution(layer.weight, x, layer.stride, true);
  }

  /**
   * A convolution with the filter `weight` ([kh, kw, I, O], or depthwise [kh, kw, C, 1]), padded
   * as the engine's layers or by `pad` (an imported graph's explicit padding).
   */
  convolution(weight: Param, x: Value, stride: number, depthwise: boolean, pad?: ExplicitPad): EmittedTrace {
    const { g, block } = this;
    const w = this.tensors.read(weight);
    const geometry = (shape: number[]) => convGeometry(shape, weight.variable.shape, stride, depthwise, pad);
    const geo = geometry(x.shape);
    const y = depthwise ? emitDepthwiseForward(g, geo, block, x.name, w) : emitConvForward(g, geo, block, x.name, w);
    // x's side of the filter gradient, emitted now: see emitFilterTaps.
    const image = depthwise ? emitDepthwiseFilterImage(g, geo, x.name) : undefined;
    const taps = depthwise ? undefined : emitFilterTaps(g, geo, x.name);
    return {
      y: { name: y, shape: geo.info.outShape },
      backward: (dy, sink) => {
        const stack = sink.stack;
        sink.add(
          weight,
          image ? emitDepthwiseFilterGradient(g, geo, image, dy, stack) : emitTapProducts(g, geo, taps!, dy, stack),
        );
        const stackedGeo = stack === 1 ? geo : geometry(stackedShape(x.shape, stack));
        return depthwise
          ? emitDepthwiseInputGradient(g, stackedGeo, block, dy, w)
          : emitConvInputGradient(g, stackedGeo, block, dy, w);
      },
    };
  }

  /** Option A: subsample by the stride, zero channels appended; backward puts dy's first channels back in place. */
  private zeroPadShortcut(layer: ZeroPadShortcut, x: Value): EmittedTrace {
    const { g } = this;
    const [n, h, w, inC] = x.shape as [number, number, number, number];
    const s = layer.stride;
    const ho = Math.ceil(h / s);
    const wo = Math.ceil(w / s);
    const extra = layer.outChannels - inC;
    const subsampled = s === 1 ? x.name : g.slice(x.name, [1, 2], [0, 0], [h, w], [s, s]);
    const y = extra > 0 ? g.op('Pad', [subsampled, g.int64s([0, 0, 0, 0, 0, 0, 0, extra])]) : subsampled;
    return {
      y: { name: y, shape: [n, ho, wo, layer.outChannels] },
      backward: (dy, sink) => {
        const kept = extra > 0 ? g.slice(dy, [3], [0], [inC]) : dy;
        if (s === 1) return kept;
        const images = sink.stack * n;
        // Each subsampled pixel back at (s*i, s*j), zeros between: pad a unit axis after each spatial one.
        const spread = g.op('Pad', [
          g.reshape(kept, [images, ho, 1, wo, 1, inC]),
          g.int64s([0, 0, 0, 0, 0, 0, 0, 0, s - 1, 0, s - 1, 0]),
        ]);
        const grid = g.reshape(spread, [images, ho * s, wo * s, inC]);
        return ho * s === h && wo * s === w ? grid : g.slice(grid, [1, 2], [0, 0], [h, w]);
      },
    };
  }

  /**
   * Training-mode batch norm as BatchNorm.trace: batch statistics over every axis but channels,
   * the running statistics updated as PyTorch does (unbiased variance), the same backward.
   */
  private batchNorm(layer: BatchNorm, x: Value): EmittedTrace {
    const { g, tensors } = this;
    const shape = x.shape;
    const count = shape.slice(0, 3).reduce((a, b) => a * b, 1);
    const gamma = tensors.read(layer.gamma);
    const beta = tensors.read(layer.beta);
    const mean = g.scale(g.channelSum(x.name, shape), 1 / count);
    const centered = g.channelOp('Sub', x.name, mean, shape);
    const variance = g.scale(g.channelSum(g.mul(centered, centered), shape), 1 / count);
    const invStd = g.op('Reciprocal', [g.op('Sqrt', [g.add(variance, g.scalar(layer.epsilon))])]);
    const scale = g.mul(gamma, invStd);
    const y = g.channelOp('Add', g.channelOp('Mul', centered, scale, shape), beta, shape);
    const unbiased = g.scale(variance, count / Math.max(1, count - 1));
    const decay = (running: Param, batch: string) =>
      tensors.write(running, g.add(g.scale(tensors.read(running), 1 - layer.momentum), g.scale(batch, layer.momentum)));
    decay(layer.runningMean, mean);
    decay(layer.runningVar, unbiased);
    return {
      y: { name: y, shape },
      backward: (dy, sink) => {
        const stack = sink.stack;
        const dBeta = g.channelSum(dy, shape, stack);
        const dGamma = g.mul(g.channelSum(g.perBatchOp('Mul', dy, centered, shape, stack), shape, stack), invStd);
        sink.add(layer.beta, dBeta);
        sink.add(layer.gamma, dGamma);
        // dx = dy * scale + centered * (-scale * invStd * dGamma / m) + (-scale * dBeta / m).
        const centeredFactor = g.scale(g.mul(scale, g.mul(invStd, dGamma)), -1 / count);
        const offset = g.scale(g.mul(scale, dBeta), -1 / count);
        // Each stacked batch's factor times the one centered value (broadcast, not copied).
        const centeredTerm = g.channelOp('Mul', centered, centeredFactor, shape, { x: 1, vector: stack });
        const scaled = g.add(g.channelOp('Mul', dy, scale, shape, { x: stack, vector: 1 }), centeredTerm);
        return g.channelOp('Add', scaled, offset, shape, { x: stack, vector: stack });
      },
    };
  }

  private relu(x: Value): EmittedTrace {
    const { g } = this;
    const y = g.op('Relu', [x.name]);
    // dy where y > 0: a product with the mask took 5 ms where Where took 8 (128x28x28x16); the mask
    // as Sign(y) took longer than Greater and a Cast (MwResNet-20 plain step 290 against 268 ms).
    // Emitted with the forward, as x's side of a convolution's backward (see emitFilterTaps).
    const mask = g.mask(g.op('Greater', [y, g.scalar(0)]));
    return {
      y: { name: y, shape: x.shape },
      backward: (dy, sink) => g.perBatchOp('Mul', dy, mask, x.shape, sink.stack),
    };
  }

  private globalAveragePool(x: Value): EmittedTrace {
    const { g } = this;
    const [n, h, w, c] = x.shape as [number, number, number, number];
    const y = g.op('ReduceMean', [x.name], [intsAttribute('axes', [1, 2]), intAttribute('keepdims', 0)]);
    return {
      y: { name: y, shape: [n, c] },
      backward: (dy, sink) => {
        const images = sink.stack * n;
        return g.op('Expand', [g.reshape(g.scale(dy, 1 / (h * w)), [images, 1, 1, c]), g.int64s([images, h, w, c])]);
      },
    };
  }

  private dense(layer: Dense, x: Value): EmittedTrace {
    const { g } = this;
    const w = this.tensors.read(layer.weight);
    const y = g.op('Gemm', [x.name, w, this.tensors.read(layer.bias)]);
    return {
      y: { name: y, shape: [x.shape[0]!, layer.outFeatures] },
      backward: (dy, sink) => {
        const stack = sink.stack;
        const n = x.shape[0]!;
        if (stack === 1) {
          sink.add(layer.weight, g.op('Gemm', [x.name, dy], [intAttribute('transA', 1)]));
          sink.add(layer.bias, g.sum(dy, [0]));
        } else {
          const batches = g.reshape(dy, [stack, n, layer.outFeatures]);
          sink.add(layer.weight, g.op('MatMul', [g.transpose(x.name, [1, 0]), batches]));
          sink.add(layer.bias, g.sum(batches, [1]));
        }
        return g.op('Gemm', [dy, w], [intAttribute('transB', 1)]);
      },
    };
  }

  private residual(block: ResidualBlock, x: Value): EmittedTrace {
    const { g } = this;
    const main = this.trace(block.main, x);
    const shortcut = block.shortcut ? this.trace(block.shortcut, x) : undefined;
    const sum = g.add(main.y.name, shortcut ? shortcut.y.name : x.name);
    const relu = block.activatesSum ? this.relu({ name: sum, shape: main.y.shape }) : undefined;
    return {
      y: relu ? relu.y : { name: sum, shape: main.y.shape },
      backward: (dy, sink) => {
        const dSum = relu ? relu.backward(dy, sink) : dy;
        const dMain = main.backward(dSum, sink);
        return g.add(dMain, shortcut ? shortcut.backward(dSum, sink) : dSum);
      },
    };
  }
}
