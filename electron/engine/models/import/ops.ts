/**
 * The operations of an imported graph, each with an explicit backward pass like the engine's
 * own layers (models/layers.ts: a traced forward keeps what backward needs, and backward may be
 * called once per exit). Tensors are NHWC; the ONNX graph's NCHW attributes are translated by
 * the converter (convert.ts). An operation may take several inputs (Add, Mul, Concat), so its
 * backward returns one gradient per input.
 */
import * as tf from '@tensorflow/tfjs-core';
import { channelSum, reluGrad } from '../../backend/channelOps.js';
import {
  conv2dFilterGrad,
  conv2dInputGrad,
  depthwiseFilterGrad,
  depthwiseInputGrad,
  type ExplicitPad,
} from '../../backend/convGradientOps.js';
import type { GradSink, Layer, Param } from '../layers.js';
import { avgPoolGrad, maxPoolGrad, poolGeometry } from './pooling.js';

export interface TracedOp {
  y: tf.Tensor;
  /** Gradients of the inputs, in order (null for an input that gets none, e.g. a constant). */
  backward(dy: tf.Tensor, sink: GradSink): (tf.Tensor | null)[];
}

export interface GraphOp {
  readonly params: readonly Param[];
  readonly buffers: readonly Param[];
  forward(xs: readonly tf.Tensor[]): tf.Tensor;
  trace(xs: readonly tf.Tensor[]): TracedOp;
}

/** An engine layer (one input) as a graph operation. */
export class LayerOp implements GraphOp {
  readonly params: readonly Param[];
  readonly buffers: readonly Param[];

  constructor(readonly layer: Pick<Layer, 'params' | 'buffers' | 'forward' | 'trace'>) {
    this.params = layer.params;
    this.buffers = layer.buffers;
  }

  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    return this.layer.forward(x!);
  }

  trace([x]: readonly tf.Tensor[]): TracedOp {
    const traced = this.layer.trace(x!);
    return { y: traced.y, backward: (dy, sink) => [traced.backward(dy, sink)] };
  }
}

/** Operations without parameters or state: the element-wise activations, pooling, padding. */
abstract class Stateless implements GraphOp {
  readonly params: readonly Param[] = [];
  readonly buffers: readonly Param[] = [];
  abstract forward(xs: readonly tf.Tensor[]): tf.Tensor;
  abstract trace(xs: readonly tf.Tensor[]): TracedOp;
}

/**
 * Convolution with explicit padding and an optional bias (an exporter's folded batch norm);
 * `depthwise` when groups == input channels == output channels. Weights are [kh, kw, in, out]
 * (depthwise [kh, kw, C, 1]).
 */
export class ConvOp extends Stateless {
  override readonly params: readonly Param[];

  constructor(
    readonly weight: Param,
    readonly bias: Param | null,
    readonly stride: number,
    readonly pad: ExplicitPad,
    readonly depthwise: boolean,
  ) {
    super();
    this.params = bias ? [weight, bias] : [weight];
  }

  private convolve(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
    const y = this.depthwise
      ? tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, this.stride, this.pad)
      : tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, this.stride, this.pad);
    if (!this.bias) return y;
    const biased = tf.add(y, this.bias.variable);
    y.dispose();
    return biased;
  }

  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    return this.convolve(x!, this.weight.variable);
  }

  trace([x]: readonly tf.Tensor[]): TracedOp {
    const input = x as tf.Tensor4D;
    // The weights as they were at forward time (as models/layers.ts Conv2d): a later exit's
    // backward must not see an earlier exit's optimizer step.
    const w = tf.clone(this.weight.variable) as tf.Tensor4D;
    const shape = input.shape;
    return {
      y: this.convolve(input, w),
      backward: (dy, sink) => {
        const g = dy as tf.Tensor4D;
        if (this.bias) sink.add(this.bias, channelSum(g));
        if (this.depthwise) {
          sink.add(this.weight, depthwiseFilterGrad(input, g, w.shape, this.stride, this.pad));
          return [depthwiseInputGrad(shape, g, w, this.stride, this.pad)];
        }
        sink.add(this.weight, conv2dFilterGrad(input, g, w.shape, this.stride, this.pad));
        return [conv2dInputGrad(shape, g, w, this.stride, this.pad)];
      },
    };
  }
}

/** Relu from the engine's fused gradient. */
export class ReluOp extends Stateless {
  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    return tf.relu(x!);
  }

  trace([x]: readonly tf.Tensor[]): TracedOp {
    const y = tf.relu(x!);
    return { y, backward: (dy) => [reluGrad(dy, y)] };
  }
}

/** min(max(x, lo), hi): ReLU6 (lo 0, hi 6) and any other clip; the gradient passes strictly inside, as PyTorch's hardtanh. */
export class ClipOp extends Stateless {
  constructor(
    readonly lo: number,
    readonly hi: number,
  ) {
    super();
  }

  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    return tf.clipByValue(x!, this.lo, this.hi);
  }

  trace([x]: readonly tf.Tensor[]): TracedOp {
    return {
      y: this.forward([x!]),
      backward: (dy) => [
        tf.tidy(() => tf.mul(dy, tf.cast(tf.logicalAnd(tf.greater(x!, this.lo), tf.less(x!, this.hi)), 'float32'))),
      ],
    };
  }
}

/** max(0, min(1, alpha * x + beta)); PyTorch's Hardsigmoid is alpha 1/6, beta 1/2. */
export class HardSigmoidOp extends Stateless {
  constructor(
    readonly alpha: number,
    readonly beta: number,
  ) {
    super();
  }

  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.clipByValue(tf.add(tf.mul(x!, this.alpha), this.beta), 0, 1));
  }

  trace([x]: readonly tf.Tensor[]): TracedOp {
    return {
      y: this.forward([x!]),
      backward: (dy) => [
        tf.tidy(() => {
          const z = tf.add(tf.mul(x!, this.alpha), this.beta);
          const inside = tf.cast(tf.logicalAnd(tf.greater(z, 0), tf.less(z, 1)), 'float32');
          return tf.mul(dy, tf.mul(inside, this.alpha));
        }),
      ],
    };
  }
}

/** x * relu6(x + 3) / 6, with PyTorch's gradient: 0 below -3, x / 3 + 1/2 up to 3, 1 above. */
export class HardSwishOp extends Stateless {
  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.mul(x!, tf.div(tf.clipByValue(tf.add(x!, 3), 0, 6), 6)));
  }

  trace([x]: readonly tf.Tensor[]): TracedOp {
    return {
      y: this.forward([x!]),
      backward: (dy) => [
        tf.tidy(() => {
          const slope = tf.where(
            tf.less(x!, -3),
            tf.zerosLike(x!),
            tf.where(tf.lessEqual(x!, 3), tf.add(tf.div(x!, 3), 0.5), tf.onesLike(x!)),
          );
          return tf.mul(dy, slope);
        }),
      ],
    };
  }
}

export class SigmoidOp extends Stateless {
  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    return tf.sigmoid(x!);
  }

  trace([x]: readonly tf.Tensor[]): TracedOp {
    const y = tf.sigmoid(x!);
    return { y, backward: (dy) => [tf.tidy(() => tf.mul(dy, tf.mul(y, tf.sub(1, y))))] };
  }
}

/** The gradient of a broadcast operand: summed over the axes it was broadcast along. */
function unbroadcast(grad: tf.Tensor, shape: readonly number[]): tf.Tensor {
  const offset = grad.rank - shape.length;
  const axes = grad.shape
    .map((size, axis) => (axis < offset || (shape[axis - offset] === 1 && size !== 1) ? axis : -1))
    .filter((axis) => axis >= 0);
  if (!axes.length) return grad;
  return tf.tidy(() => tf.reshape(tf.sum(grad, axes), shape as number[]));
}

/** Element-wise sum or product of two values with NumPy broadcasting (residual sums, squeeze-and-excitation, SiLU). */
export class BinaryOp extends Stateless {
  constructor(readonly kind: 'add' | 'mul') {
    super();
  }

  forward([a, b]: readonly tf.Tensor[]): tf.Tensor {
    return this.kind === 'add' ? tf.add(a!, b!) : tf.mul(a!, b!);
  }

  trace([a, b]: readonly tf.Tensor[]): TracedOp {
    return {
      y: this.forward([a!, b!]),
      backward: (dy) =>
        this.kind === 'add'
          ? [unbroadcast(dy, a!.shape), unbroadcast(dy, b!.shape)]
          : [
              tf.tidy(() => unbroadcast(tf.mul(dy, b!), a!.shape)),
              tf.tidy(() => unbroadcast(tf.mul(dy, a!), b!.shape)),
            ],
    };
  }
}

/** A value combined with a constant of the graph (kept as a buffer): the gradient goes to the value only. */
export class ConstantOperandOp extends Stateless {
  override readonly buffers: readonly Param[];

  constructor(
    readonly op: BinaryOp,
    readonly constant: Param,
  ) {
    super();
    this.buffers = [constant];
  }

  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    return this.op.forward([x!, this.constant.variable]);
  }

  trace([x]: readonly tf.Tensor[]): TracedOp {
    const traced = this.op.trace([x!, this.constant.variable]);
    return {
      y: traced.y,
      backward: (dy, sink) => {
        const [own, toConstant] = traced.backward(dy, sink);
        if (toConstant !== dy) toConstant!.dispose();
        return [own!];
      },
    };
  }
}

export class ConcatOp extends Stateless {
  constructor(readonly axis: number) {
    super();
  }

  forward(xs: readonly tf.Tensor[]): tf.Tensor {
    return xs.length === 1 ? tf.clone(xs[0]!) : tf.concat(xs as tf.Tensor[], this.axis);
  }

  trace(xs: readonly tf.Tensor[]): TracedOp {
    const sizes = xs.map((x) => x.shape[this.axis]!);
    return {
      y: this.forward(xs),
      backward: (dy) => (xs.length === 1 ? [tf.clone(dy)] : tf.split(dy, sizes, this.axis)),
    };
  }
}

/** Max or average pooling over a window (average: padding excluded from the count, see convert.ts). */
export class PoolOp extends Stateless {
  constructor(
    readonly kind: 'max' | 'avg',
    readonly window: [number, number],
    readonly stride: number,
    readonly pad: number,
  ) {
    super();
  }

  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    const pool = this.kind === 'max' ? tf.maxPool : tf.avgPool;
    // Explicit padding: with a number, tfjs sizes both axes by the window's height (and tfjs-wasm
    // then reads past its buffers when the window is taller than wide).
    const p = this.pad;
    return pool(x as tf.Tensor4D, this.window, this.stride, [
      [0, 0],
      [p, p],
      [p, p],
      [0, 0],
    ]);
  }

  /**
   * The backward pass written out tap by tap (pooling.ts), not tfjs's kernels: the wasm
   * MaxPoolGrad hands a tie to the last maximum and drops the gradient of a window whose maximum
   * is not positive (a window of ReLU zeros), and AvgPoolGrad divides by the whole window where
   * the forward divides by its pixels inside the image. These follow PyTorch: the first maximum
   * takes the gradient, and each pixel gets its share of the windows' averages.
   */
  trace([x]: readonly tf.Tensor[]): TracedOp {
    const y = this.forward([x!]);
    const geometry = poolGeometry(x!.shape, this.window, this.stride, this.pad);
    return {
      y,
      backward: (dy) => [
        tf.tidy(() => (this.kind === 'max' ? maxPoolGrad(geometry, x!, y, dy) : avgPoolGrad(geometry, dy))),
      ],
    };
  }
}

/** Mean over height and width, keeping them: [N, H, W, C] -> [N, 1, 1, C] (squeeze-and-excitation's pooling). */
export class SpatialMeanOp extends Stateless {
  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    return tf.mean(x!, [1, 2], true);
  }

  trace([x]: readonly tf.Tensor[]): TracedOp {
    const [, h, w] = x!.shape as [number, number, number, number];
    return {
      y: this.forward([x!]),
      // A broadcasting multiply, as models/layers.ts GlobalAveragePool (wasm's Tile is slow).
      backward: (dy) => [tf.tidy(() => tf.mul(tf.div(dy, h * w), tf.ones([1, h, w, 1])))],
    };
  }
}

/** Zero padding of height and width: [[top, bottom], [left, right]]. */
export class PadOp extends Stateless {
  constructor(readonly padding: [[number, number], [number, number]]) {
    super();
  }

  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    const [[t, b], [l, r]] = this.padding;
    return tf.pad(x!, [
      [0, 0],
      [t, b],
      [l, r],
      [0, 0],
    ]);
  }

  trace([x]: readonly tf.Tensor[]): TracedOp {
    const [n, h, w, c] = x!.shape as [number, number, number, number];
    const [[t], [l]] = this.padding;
    return { y: this.forward([x!]), backward: (dy) => [tf.slice(dy, [0, t, l, 0], [n, h, w, c])] };
  }
}

/** [N, H, W, C] -> [N, C*H*W] in ONNX's (NCHW) order, so a classifier's weights apply unchanged. */
export class FlattenOp extends Stateless {
  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    if (x!.rank === 2) return tf.clone(x!);
    return tf.tidy(() => tf.reshape(tf.transpose(x!, [0, 3, 1, 2]), [x!.shape[0]!, -1]));
  }

  trace([x]: readonly tf.Tensor[]): TracedOp {
    const [n, h, w, c] = x!.shape as [number, number, number, number];
    return {
      y: this.forward([x!]),
      backward: (dy) => [
        x!.rank === 2 ? tf.clone(dy) : tf.tidy(() => tf.transpose(tf.reshape(dy, [n, c, h, w]), [0, 2, 3, 1])),
      ],
    };
  }
}

/** Operations applied in order to one value (ReduceMean without keepdims: a mean, then a flatten). */
export class ChainOp extends Stateless {
  constructor(readonly ops: readonly GraphOp[]) {
    super();
  }

  forward([x]: readonly tf.Tensor[]): tf.Tensor {
    return this.ops.reduce((h, op) => op.forward([h]), x!);
  }

  trace([x]: readonly tf.Tensor[]): TracedOp {
    const traced: TracedOp[] = [];
    let h = x!;
    for (const op of this.ops) {
      const t = op.trace([h]);
      traced.push(t);
      h = t.y;
    }
    return { y: h, backward: (dy, sink) => [traced.reduceRight((g, t) => t.backward(g, sink)[0]!, dy)] };
  }
}
