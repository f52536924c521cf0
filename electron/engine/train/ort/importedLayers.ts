/**
 * An imported backbone's blocks (models/import/block.ts GraphBlock) written as ONNX nodes for the
 * compiled step: each operation of models/import/ops.ts with its training forward and the same
 * explicit backward, in the same order of operations where rounding matters; a block's
 * backward walks its nodes in reverse as block.ts does, adding up the gradients of values read
 * twice. Engine layers inside a block (batch norm, ReLU) are LayerEmitter's own.
 *
 * Backward passes may come stacked (GraphGradSink.stack): dy holds `stack` gradients of the same
 * forward one after the other on the batch axis, and each parameter gradient has `stack` leading
 * rows. Factors kept from the forward ([N, ...]) broadcast over the stack.
 */
import { backwardThrough, type GraphBlock } from '../../models/import/block.js';
import {
  BinaryOp,
  ChainOp,
  ClipOp,
  ConcatOp,
  ConstantOperandOp,
  ConvOp,
  FlattenOp,
  HardSigmoidOp,
  HardSwishOp,
  LayerOp,
  PadOp,
  PoolOp,
  ReluOp,
  SigmoidOp,
  SpatialMeanOp,
  type GraphOp,
} from '../../models/import/ops.js';
import {
  phaseLayout,
  poolGeometry,
  span,
  taps,
  windowCounts,
  type PhaseLayout,
  type PoolGeometry,
} from '../../models/import/pooling.js';
import { Relu, type Layer } from '../../models/layers.js';
import { intAttribute, intsAttribute } from '../../onnx/proto.js';
import type { EmittedTrace, GraphGradSink, LayerEmitter, StepGraph, Value } from './layers.js';
import { stackedShape } from './geometry.js';
import { UnsupportedStepError } from './unsupported.js';

/** An operation's forward value and a backward giving one gradient per input (null: none). */
export interface EmittedOp {
  y: Value;
  backward(dy: string, sink: GraphGradSink): (string | null)[];
}

/** The gradient of an operand of `shape` broadcast to `outShape`: summed over the axes it was broadcast along. */
function unbroadcast(g: StepGraph, grad: string, shape: readonly number[], outShape: readonly number[]): string {
  const axes = shape.map((size, axis) => (size === 1 && outShape[axis] !== 1 ? axis : -1)).filter((a) => a >= 0);
  return axes.length ? g.op('ReduceSum', [grad, g.int64s(axes)], [intAttribute('keepdims', 1)]) : grad;
}

/** 1 where lo < value < hi, 0 elsewhere: where a clip passes its gradient. */
function strictlyBetween(g: StepGraph, value: string, lo: number, hi: number): string {
  return g.mask(g.op('And', [g.op('Greater', [value, g.scalar(lo)]), g.op('Less', [value, g.scalar(hi)])]));
}

/**
 * An element-wise operation of one input: its output, and backward dy times `factor`, a value of
 * the forward emitted with it (x's side of the backward: see emitFilterTaps).
 */
function elementwise(g: StepGraph, y: string, x: Value, factor: string): EmittedOp {
  return {
    y: { name: y, shape: x.shape },
    backward: (dy, sink) => [g.perBatchOp('Mul', dy, factor, x.shape, sink.stack)],
  };
}

/** Emits an imported block's nodes and those of each operation, with `layers` for the engine layers inside. */
class OpEmitter {
  private readonly g: StepGraph;

  constructor(private readonly layers: LayerEmitter) {
    this.g = layers.g;
  }

  block(block: GraphBlock, x: Value): EmittedTrace {
    const values = new Map<string, Value>([[block.input, x]]);
    const traced = block.nodes.map((node) => {
      const t = this.trace(
        node.operation,
        node.inputs.map((v) => values.get(v)!),
      );
      values.set(node.output, t.y);
      return t;
    });
    return {
      y: values.get(block.output)!,
      backward: (dy, sink) =>
        backwardThrough(block.nodes, traced, block.input, block.output, dy, sink, (a, b) => this.g.add(a, b)) ??
        this.g.zeros(stackedShape(x.shape, sink.stack)),
    };
  }

  trace(op: GraphOp, xs: Value[]): EmittedOp {
    const [x] = xs as [Value];
    if (op instanceof LayerOp) return this.layer(op.layer as Layer, x);
    if (op instanceof ReluOp) return this.layer(new Relu(), x);
    if (op instanceof ConvOp) return this.conv(op, x);
    if (op instanceof ClipOp) return this.clip(op, x);
    if (op instanceof HardSigmoidOp) return this.hardSigmoid(op, x);
    if (op instanceof HardSwishOp) return this.hardSwish(x);
    if (op instanceof SigmoidOp) return this.sigmoid(x);
    if (op instanceof BinaryOp) return this.binary(op, x, xs[1]!);
    if (op instanceof ConstantOperandOp) return this.constantOperand(op, x);
    if (op instanceof ConcatOp) return this.concat(op, xs);
    if (op instanceof PoolOp) return this.pool(op, x);
    if (op instanceof SpatialMeanOp) return this.spatialMean(x);
    if (op instanceof PadOp) return this.pad(op, x);
    if (op instanceof FlattenOp) return this.flatten(x);
    if (op instanceof ChainOp) return this.chain(op, x);
    throw new UnsupportedStepError(`the step graph has no imported ${op.constructor.name} operation`);
  }

  private layer(layer: Layer, x: Value): EmittedOp {
    const traced = this.layers.trace(layer, x);
    return { y: traced.y, backward: (dy, sink) => [traced.backward(dy, sink)] };
  }

  /** ops.ts ConvOp: explicit padding, depthwise or not, the bias added after the convolution. */
  private conv(op: ConvOp, x: Value): EmittedOp {
    const { g } = this;
    const convolved = this.layers.convolution(op.weight, x, op.stride, op.depthwise, op.pad);
    const shape = convolved.y.shape;
    const bias = op.bias;
    const y = bias ? g.channelOp('Add', convolved.y.name, this.layers.tensors.read(bias), shape) : convolved.y.name;
    return {
      y: { name: y, shape },
      backward: (dy, sink) => {
        if (bias) sink.add(bias, g.channelSum(dy, shape, sink.stack));
        return [convolved.backward(dy, sink)];
      },
    };
  }

  /** min(max(x, lo), hi); the gradient passes strictly inside. */
  private clip(op: ClipOp, x: Value): EmittedOp {
    const { g } = this;
    const y = g.op('Clip', [x.name, g.scalar(op.lo), g.scalar(op.hi)]);
    return elementwise(g, y, x, strictlyBetween(g, x.name, op.lo, op.hi));
  }

  private hardSigmoid(op: HardSigmoidOp, x: Value): EmittedOp {
    const { g } = this;
    const z = g.add(g.mul(x.name, g.scalar(op.alpha)), g.scalar(op.beta));
    const y = g.op('Clip', [z, g.scalar(0), g.scalar(1)]);
    return elementwise(g, y, x, g.mul(strictlyBetween(g, z, 0, 1), g.scalar(op.alpha)));
  }

  /** x * relu6(x + 3) / 6; the slope 0 below -3, x / 3 + 1/2 up to 3, 1 above. */
  private hardSwish(x: Value): EmittedOp {
    const { g } = this;
    const relu6 = g.op('Clip', [g.add(x.name, g.scalar(3)), g.scalar(0), g.scalar(6)]);
    const y = g.mul(x.name, g.op('Div', [relu6, g.scalar(6)]));
    const middle = g.add(g.op('Div', [x.name, g.scalar(3)]), g.scalar(0.5));
    const upper = g.op('Where', [g.op('LessOrEqual', [x.name, g.scalar(3)]), middle, g.scalar(1)]);
    return elementwise(g, y, x, g.op('Where', [g.op('Less', [x.name, g.scalar(-3)]), g.scalar(0), upper]));
  }

  private sigmoid(x: Value): EmittedOp {
    const { g } = this;
    const y = g.op('Sigmoid', [x.name]);
    return elementwise(g, y, x, g.mul(y, g.sub(g.scalar(1), y)));
  }

  /** A sum or product of two values with broadcasting; each gradient summed over the axes its operand was broadcast along. */
  private binary(op: BinaryOp, a: Value, b: Value): EmittedOp {
    const { g } = this;
    const shape = a.shape.map((size, axis) => Math.max(size, b.shape[axis]!));
    const y = g.op(op.kind === 'add' ? 'Add' : 'Mul', [a.name, b.name]);
    return {
      y: { name: y, shape },
      backward: (dy, { stack }) => {
        const toA = op.kind === 'add' ? dy : g.perBatchOp('Mul', dy, b.name, shape, stack, b.shape);
        const toB = op.kind === 'add' ? dy : g.perBatchOp('Mul', dy, a.name, shape, stack, a.shape);
        return [unbroadcast(g, toA, a.shape, shape), unbroadcast(g, toB, b.shape, shape)];
      },
    };
  }

  /** A value combined with a constant of the graph (a buffer, no leading batch axis): the gradient goes to the value only. */
  private constantOperand(op: ConstantOperandOp, x: Value): EmittedOp {
    const { g } = this;
    const constant = this.layers.tensors.read(op.constant);
    const y = g.op(op.op.kind === 'add' ? 'Add' : 'Mul', [x.name, constant]);
    return {
      y: { name: y, shape: x.shape },
      backward: (dy) => [op.op.kind === 'add' ? dy : g.mul(dy, constant)],
    };
  }

  private concat(op: ConcatOp, xs: Value[]): EmittedOp {
    const { g } = this;
    const axis = op.axis;
    const shape = [...xs[0]!.shape];
    shape[axis] = xs.reduce((sum, x) => sum + x.shape[axis]!, 0);
    if (xs.length === 1) return { y: xs[0]!, backward: (dy) => [dy] };
    const y = g.op(
      'Concat',
      xs.map((x) => x.name),
      [intAttribute('axis', axis)],
    );
    return {
      y: { name: y, shape },
      backward: (dy) => {
        let start = 0;
        return xs.map((x) => {
          const end = start + x.shape[axis]!;
          const part = g.slice(dy, [axis], [start], [end]);
          start = end;
          return part;
        });
      },
    };
  }

  /** Pooling by onnxruntime's (NCHW) kernels; backward tap by tap as models/import/pooling.ts. */
  private pool(op: PoolOp, x: Value): EmittedOp {
    const { g } = this;
    const geometry = poolGeometry(x.shape, op.window, op.stride, op.pad);
    const [n, , , c] = geometry.input;
    const pooled = g.op(
      op.kind === 'max' ? 'MaxPool' : 'AveragePool',
      [g.transpose(x.name, [0, 3, 1, 2])],
      [
        intsAttribute('kernel_shape', op.window),
        intsAttribute('strides', [op.stride, op.stride]),
        intsAttribute('pads', [op.pad, op.pad, op.pad, op.pad]),
      ],
    );
    const y = g.transpose(pooled, [0, 2, 3, 1]);
    const outShape = [n, ...geometry.out, c];
    // x's side of the backward, emitted with the forward (see emitFilterTaps).
    const maxima = op.kind === 'max' ? this.firstMaxima(geometry, x.name, y) : [];
    return {
      y: { name: y, shape: outShape },
      backward: (dy, { stack }) => {
        if (op.kind === 'avg') {
          const share = g.op('Div', [dy, g.floats([1, ...geometry.out, 1], windowCounts(geometry))]);
          return [
            this.gatherTaps(
              geometry,
              stack,
              taps(geometry).map(() => share),
            ),
          ];
        }
        const shares = maxima.map((first) => g.perBatchOp('Mul', dy, first, outShape, stack));
        return [this.gatherTaps(geometry, stack, shares)];
      },
    };
  }

  /** Per tap of a max pool, 1 where it reads its window's first maximum (the padding, -Infinity, never is one). */
  private firstMaxima(geometry: PoolGeometry, x: string, y: string): string[] {
    const { g } = this;
    const { pad, stride, out } = geometry;
    const padded = g.op('Pad', [x, g.int64s([0, pad, pad, 0, 0, pad, pad, 0]), g.scalar(-Infinity)]);
    let taken: string | undefined;
    return taps(geometry).map(([i, j]) => {
      const under = g.slice(
        padded,
        [1, 2],
        [i, j],
        [i + span(geometry, out[0]), j + span(geometry, out[1])],
        [stride, stride],
      );
      const isMax = g.mask(g.op('Equal', [under, y]));
      const first = taken ? g.mul(isMax, g.sub(g.scalar(1), taken)) : isMax;
      taken = taken ? g.add(taken, first) : first;
      return first;
    });
  }

  /** pooling.ts gather: the taps' shares (in tap order) summed back onto the input's pixels, by phase of the stride grid. */
  private gatherTaps(geometry: PoolGeometry, stack: number, shares: string[]): string {
    const { g } = this;
    const { rows, cols, phases, extra } = phaseLayout(geometry);
    const { stride: s, pad } = geometry;
    const [ho, wo] = geometry.out;
    const [n, h, w, c] = geometry.input;
    const lead = stack * n;
    const grid = (landing: PhaseLayout['phases'][number][number]) => {
      let sum: string | undefined;
      for (const { tap, shift } of landing) {
        const placed = g.op('Pad', [
          shares[tap]!,
          g.int64s([0, shift[0], shift[1], 0, 0, rows - ho - shift[0], cols - wo - shift[1], 0]),
        ]);
        sum = sum ? g.add(sum, placed) : placed;
      }
      return sum ?? g.zeros([lead, rows, cols, c]);
    };
    // Phases side by side on a new axis after the one they interleave with.
    const interleave = (grids: string[], axis: number) =>
      g.op(
        'Concat',
        grids.map((v) => g.op('Unsqueeze', [v, g.int64s([axis])])),
        [intAttribute('axis', axis)],
      );
    const interleaved =
      s === 1
        ? grid(phases[0]![0]!)
        : g.reshape(
            interleave(
              phases.map((phaseRow) => g.reshape(interleave(phaseRow.map(grid), 3), [lead, rows, cols * s, c])),
              2,
            ),
            [lead, rows * s, cols * s, c],
          );
    const full =
      extra[0] + extra[1] > 0
        ? g.op('Pad', [interleaved, g.int64s([0, 0, 0, 0, 0, extra[0], extra[1], 0])])
        : interleaved;
    return g.slice(full, [1, 2], [pad, pad], [pad + h, pad + w]);
  }

  /** Mean over height and width, kept: [N, H, W, C] -> [N, 1, 1, C]. */
  private spatialMean(x: Value): EmittedOp {
    const { g } = this;
    const [n, h, w, c] = x.shape as [number, number, number, number];
    const y = g.op('ReduceMean', [x.name], [intsAttribute('axes', [1, 2]), intAttribute('keepdims', 1)]);
    return {
      y: { name: y, shape: [n, 1, 1, c] },
      backward: (dy, { stack }) => [
        g.op('Expand', [g.op('Div', [dy, g.scalar(h * w)]), g.int64s([stack * n, h, w, c])]),
      ],
    };
  }

  private pad(op: PadOp, x: Value): EmittedOp {
    const { g } = this;
    const [n, h, w, c] = x.shape as [number, number, number, number];
    const [[t, b], [l, r]] = op.padding;
    const y = g.op('Pad', [x.name, g.int64s([0, t, l, 0, 0, b, r, 0])]);
    return {
      y: { name: y, shape: [n, h + t + b, w + l + r, c] },
      backward: (dy) => [g.slice(dy, [1, 2], [t, l], [t + h, l + w])],
    };
  }

  /** [N, H, W, C] -> [N, C*H*W] in ONNX's (NCHW) order. */
  private flatten(x: Value): EmittedOp {
    const { g } = this;
    if (x.shape.length === 2) return { y: x, backward: (dy) => [dy] };
    const [n, h, w, c] = x.shape as [number, number, number, number];
    const y = g.reshape(g.transpose(x.name, [0, 3, 1, 2]), [n, c * h * w]);
    return {
      y: { name: y, shape: [n, c * h * w] },
      backward: (dy, { stack }) => [g.transpose(g.reshape(dy, [stack * n, c, h, w]), [0, 2, 3, 1])],
    };
  }

  private chain(op: ChainOp, x: Value): EmittedOp {
    const traced: EmittedOp[] = [];
    let h = x;
    for (const inner of op.ops) {
      const t = this.trace(inner, [h]);
      traced.push(t);
      h = t.y;
    }
    return { y: h, backward: (dy, sink) => [traced.reduceRight((grad, t) => t.backward(grad, sink)[0]!, dy)] };
  }
}

/** LayerEmitter.trace of an imported block. */
export function traceGraphBlock(layers: LayerEmitter, block: GraphBlock, x: Value): EmittedTrace {
  return new OpEmitter(layers).block(block, x);
}

/** One imported operation on `xs` (GraphOp.trace as graph nodes). */
export function traceImportedOp(layers: LayerEmitter, op: GraphOp, xs: Value[]): EmittedOp {
  return new OpEmitter(layers).trace(op, xs);
}
