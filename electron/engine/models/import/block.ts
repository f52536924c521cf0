/**
 * A segment of an imported graph between two exit candidates, as one engine block: a small DAG
 * of operations run in the file's (topological) order. Backward walks it in reverse, adding up
 * the gradients of values read by several operations (a residual block's input, DenseNet's
 * concatenated features).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Block } from '../blocks.js';
import type { FeatureShape, Param, Traced } from '../layers.js';
import type { ImportedNode } from './graph.js';
import { BinaryOp, type TracedOp } from './ops.js';

/** Nodes run in order from one input to one output, freeing each value after its last reader. */
class NodeRun {
  /** For each value, the index of the last node reading it. */
  private readonly lastUse = new Map<string, number>();

  constructor(
    readonly nodes: readonly ImportedNode[],
    readonly input: string,
    readonly output: string,
  ) {
    nodes.forEach((node, i) => node.inputs.forEach((v) => this.lastUse.set(v, i)));
  }

  forward(x: tf.Tensor): tf.Tensor {
    const values = new Map<string, tf.Tensor>([[this.input, x]]);
    this.nodes.forEach((node, i) => {
      values.set(node.output, node.operation.forward(node.inputs.map((v) => values.get(v)!)));
      // Inference keeps only the live values (DenseNet's blocks would otherwise hold every layer's output).
      for (const v of new Set(node.inputs))
        if (v !== this.input && v !== this.output && this.lastUse.get(v) === i) values.get(v)!.dispose();
    });
    return values.get(this.output)!;
  }
}

/** Indices of the nodes `value` depends on (within `nodes`). */
function ancestorsOf(nodes: readonly ImportedNode[], value: string): Set<number> {
  const needed = new Set([value]);
  const found = new Set<number>();
  for (let i = nodes.length - 1; i >= 0; i--) {
    if (!needed.has(nodes[i]!.output)) continue;
    found.add(i);
    nodes[i]!.inputs.forEach((v) => needed.add(v));
  }
  return found;
}

/**
 * What stands in for a residual block in a lesion (Veit et al. 2016, as the engine's own
 * ResidualBlock): a block ending in a sum (and, post-activation, its ReLU) of a residual branch
 * and a cheaper shortcut, identity or projection, that shares none of the branch's own nodes.
 * The block without its branch: the nodes before the branch point, the shortcut, and the ReLU.
 * Null for any other block (DenseNet's, a block without a sum at its end).
 */
function residualShortcut(nodes: readonly ImportedNode[], input: string, output: string): NodeRun | null {
  const last = nodes.at(-1);
  const relu = last?.op === 'Relu' ? last : undefined;
  const sum = relu ? nodes.find((n) => n.output === relu.inputs[0]) : last;
  if (!sum || !(sum.operation instanceof BinaryOp) || sum.operation.kind !== 'add' || nodes.at(relu ? -2 : -1) !== sum)
    return null;
  const [a, b] = sum.inputs.map((v) => ancestorsOf(nodes, v)) as [Set<number>, Set<number>];
  const own = (mine: Set<number>, theirs: Set<number>) => [...mine].filter((i) => !theirs.has(i));
  const macs = (indices: number[]) => indices.reduce((total, i) => total + nodes[i]!.macs, 0);
  const [ownA, ownB] = [own(a, b), own(b, a)];
  if (macs(ownA) === macs(ownB)) return null;
  const shortcut = macs(ownA) < macs(ownB) ? 0 : 1;
  const kept = [...(shortcut === 0 ? a : b)].sort((i, j) => i - j).map((i) => nodes[i]!);
  const value = sum.inputs[shortcut]!;
  if (!relu) return new NodeRun(kept, input, value);
  // The sum's ReLU reads the shortcut's value instead of the sum.
  return new NodeRun([...kept, { ...relu, inputs: [value] }], input, output);
}

export class GraphBlock implements Block {
  readonly params: readonly Param[];
  readonly buffers: readonly Param[];
  /** Residual blocks can be skipped (their shortcut stands in); others the graph does not say how to delete. */
  readonly skippable: boolean;
  private readonly totalMacs: number;
  private readonly run: NodeRun;
  private readonly shortcut: NodeRun | null;

  constructor(
    readonly nodes: readonly ImportedNode[],
    readonly input: string,
    readonly output: string,
    readonly shape: readonly number[],
  ) {
    this.params = nodes.flatMap((n) => n.operation.params);
    this.buffers = nodes.flatMap((n) => n.operation.buffers);
    this.totalMacs = nodes.reduce((sum, n) => sum + n.macs, 0);
    this.run = new NodeRun(nodes, input, output);
    this.shortcut = residualShortcut(nodes, input, output);
    this.skippable = this.shortcut !== null;
  }

  forward(x: tf.Tensor): tf.Tensor {
    return this.run.forward(x);
  }

  trace(x: tf.Tensor): Traced {
    const values = new Map<string, tf.Tensor>([[this.input, x]]);
    const traced: TracedOp[] = this.nodes.map((node) => {
      const t = node.operation.trace(node.inputs.map((v) => values.get(v)!));
      values.set(node.output, t.y);
      return t;
    });
    return {
      y: values.get(this.output)!,
      backward: (dy, sink) =>
        // Every node of a block descends from its input; a classifier reached only through constants has none.
        backwardThrough(this.nodes, traced, this.input, this.output, dy, sink, tf.add) ?? tf.zerosLike(x),
    };
  }

  lesionForward(x: tf.Tensor): tf.Tensor | null {
    return this.shortcut ? this.shortcut.forward(x) : null;
  }

  outputShape(): FeatureShape {
    return featureShape(this.shape);
  }

  macs(): number {
    return this.totalMacs;
  }
}

/** [H, W, C] as is; a flat [F] as [1, 1, F] (the engine's convention for pooled features). */
export function featureShape(shape: readonly number[]): FeatureShape {
  return shape.length === 3 ? (shape as unknown as FeatureShape) : [1, 1, shape[0]!];
}

/** A traced operation's backward, whatever holds its values (tfjs tensors here, graph values in train/ort/). */
export interface OpBackward<T, S> {
  backward(dy: T, sink: S): (T | null)[];
}

/**
 * Reverse-mode pass over traced nodes from the gradient of `output` to that of `input`, adding
 * up the gradients of a value read by several nodes; undefined where no node's gradient reaches
 * the input.
 */
export function backwardThrough<T, S>(
  nodes: readonly ImportedNode[],
  traced: readonly OpBackward<T, S>[],
  input: string,
  output: string,
  dy: T,
  sink: S,
  add: (a: T, b: T) => T,
): T | undefined {
  const grads = new Map<string, T>([[output, dy]]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    const g = grads.get(node.output);
    if (!g) continue;
    traced[i]!.backward(g, sink).forEach((dx, k) => {
      if (!dx) return;
      const v = node.inputs[k]!;
      const previous = grads.get(v);
      grads.set(v, previous ? add(previous, dx) : dx);
    });
  }
  return grads.get(input);
}
