/**
 * A segment of an imported graph between two exit candidates, as one engine block: a small DAG
 * of operations run in the file's (topological) order. Backward walks it in reverse, adding up
 * the gradients of values read by several operations (a residual block's input, DenseNet's
 * concatenated features).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Block } from '../blocks.js';
import type { FeatureShape, GradSink, Param, Traced } from '../layers.js';
import type { ImportedNode } from './graph.js';
import type { TracedOp } from './ops.js';

export class GraphBlock implements Block {
  readonly params: readonly Param[];
  readonly buffers: readonly Param[];
  /** The graph decides what a block is; deleting one (a lesion) is not defined for it. */
  readonly skippable = false;
  private readonly totalMacs: number;
  /** For each value, the index of the last node reading it (forward frees values after it). */
  private readonly lastUse = new Map<string, number>();

  constructor(
    readonly nodes: readonly ImportedNode[],
    readonly input: string,
    readonly output: string,
    readonly shape: readonly number[],
  ) {
    this.params = nodes.flatMap((n) => n.operation.params);
    this.buffers = nodes.flatMap((n) => n.operation.buffers);
    this.totalMacs = nodes.reduce((sum, n) => sum + n.macs, 0);
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

  trace(x: tf.Tensor): Traced {
    const values = new Map<string, tf.Tensor>([[this.input, x]]);
    const traced: TracedOp[] = this.nodes.map((node) => {
      const t = node.operation.trace(node.inputs.map((v) => values.get(v)!));
      values.set(node.output, t.y);
      return t;
    });
    return {
      y: values.get(this.output)!,
      backward: (dy, sink) => backwardThrough(this.nodes, traced, [this.input, x], this.output, dy, sink),
    };
  }

  lesionForward(): null {
    return null;
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

/** Reverse-mode pass over traced nodes from the gradient of `output` to that of `input`. */
export function backwardThrough(
  nodes: readonly ImportedNode[],
  traced: readonly TracedOp[],
  [input, x]: [string, tf.Tensor],
  output: string,
  dy: tf.Tensor,
  sink: GradSink,
): tf.Tensor {
  const grads = new Map<string, tf.Tensor>([[output, dy]]);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    const g = grads.get(node.output);
    if (!g) continue;
    traced[i]!.backward(g, sink).forEach((dx, k) => {
      if (!dx) return;
      const v = node.inputs[k]!;
      const previous = grads.get(v);
      grads.set(v, previous ? tf.add(previous, dx) : dx);
    });
  }
  // Every node of a block descends from its input; a classifier reached only through constants has none.
  return grads.get(input) ?? tf.zerosLike(x);
}
