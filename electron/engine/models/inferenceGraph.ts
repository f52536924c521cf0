/**
 * A trained Mw-network's sub-model as a flat list of inference operations: the one description
 * both exporters (tfjs layers, ONNX) translate, so the walk over stem, blocks and heads is
 * written once, for the engine's own families and for imported graphs alike. A convolution
 * followed by a batch norm travels with it, so ONNX can fold the norm into the convolution while
 * tfjs keeps both layers; pre-activation blocks, the option-A shortcut and imported graphs have
 * convolutions without one (an imported one may carry a bias: an exporter's folded batch norm).
 * Values are NHWC with the engine's axes; each exporter translates them to its own layout.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { ResidualBlock, SeparableBlock, type Block } from './blocks.js';
import { GraphBlock } from './import/block.js';
import { nodeScope } from './import/graph.js';
import {
  BinaryOp,
  ClipOp,
  ConcatOp,
  ConstantOperandOp,
  ConvOp,
  HardSigmoidOp,
  HardSwishOp,
  LayerOp,
  PadOp,
  PoolOp,
  SigmoidOp,
  SpatialMeanOp,
  type GraphOp,
} from './import/ops.js';
import {
  BatchNorm,
  Conv2d,
  Dense,
  DepthwiseConv2d,
  Dropout,
  GlobalAveragePool,
  Relu,
  Sequence,
  ZeroPadShortcut,
  type FeatureShape,
  type Layer,
  type Param,
} from './layers.js';
import type { ExitCost, MwNetwork } from './network.js';

export interface BatchNormTensors {
  gamma: tf.Tensor;
  beta: tf.Tensor;
  mean: tf.Tensor;
  variance: tf.Tensor;
  /** The norm's own epsilon (the engine's 1e-5, or an imported network's). */
  epsilon: number;
}

/** Zero padding of height and width: [[top, bottom], [left, right]]. */
export type SpatialPadding = [[number, number], [number, number]];

/** Every node produces the value called `name`; inputs name earlier values or the graph input. */
export type ExportNode =
  | {
      op: 'conv';
      name: string;
      input: string;
      /** Name of the convolution itself (the node's output is after its batch norm, if any). */
      convName: string;
      /** Absent where no batch norm follows the convolution. */
      batchNormName?: string;
      /** [height, width] of the filter. */
      kernel: [number, number];
      stride: number;
      padding: SpatialPadding;
      inChannels: number;
      outChannels: number;
      /** One filter per channel (MobileNet): weight [kh, kw, C, 1] instead of [kh, kw, in, out]. */
      depthwise: boolean;
      weight: tf.Tensor;
      /** Per output channel, added before the batch norm; absent for the engine's own convolutions. */
      bias?: tf.Tensor;
      batchNorm?: BatchNormTensors;
    }
  | { op: 'batchNorm'; name: string; input: string; batchNorm: BatchNormTensors }
  | { op: 'relu' | 'sigmoid' | 'hardSwish'; name: string; input: string }
  /** min(max(x, min), max); either bound may be infinite. */
  | { op: 'clip'; name: string; input: string; min: number; max: number }
  /** max(0, min(1, alpha * x + beta)). */
  | { op: 'hardSigmoid'; name: string; input: string; alpha: number; beta: number }
  /** Element-wise, broadcasting a size-1 axis of either operand (squeeze-and-excitation's channel weights). */
  | { op: 'add' | 'mul'; name: string; inputs: [string, string] }
  /** A value combined with a constant: a scalar, or per channel ([1, 1, 1, C]), or of the value's shape. */
  | { op: 'addConstant' | 'mulConstant'; name: string; input: string; constant: tf.Tensor }
  /** Along an NHWC axis (3: channels, DenseNet's features). */
  | { op: 'concat'; name: string; inputs: string[]; axis: number }
  /** Max or average (padding left out of the count) over a window, padded by `pad` on every side. */
  | { op: 'maxPool' | 'avgPool'; name: string; input: string; window: [number, number]; stride: number; pad: number }
  | { op: 'pad'; name: string; input: string; padding: SpatialPadding }
  /** Mean over height and width: [N, C], or [N, 1, 1, C] with `keepDims`. */
  | { op: 'globalAveragePool'; name: string; input: string; keepDims: boolean }
  | {
      op: 'dense';
      name: string;
      input: string;
      inFeatures: number;
      outFeatures: number;
      weight: tf.Tensor;
      bias: tf.Tensor;
    };

export interface ExportGraph {
  input: { name: string; shape: FeatureShape };
  nodes: ExportNode[];
  /** Logits ([N, classes]) of the exported exits, shallowest first. */
  outputs: { exit: ExitCost; value: string }[];
  classes: number;
}

const GRAPH_INPUT = 'input';

/** "blocks.2.conv1.conv.weight" -> "blocks.2.conv1.conv": the layer's name is its parameters' prefix. */
function scopeOf(param: Param): string {
  return param.name.slice(0, param.name.lastIndexOf('.'));
}

function batchNormTensors(bn: BatchNorm): BatchNormTensors {
  return {
    gamma: bn.gamma.variable,
    beta: bn.beta.variable,
    mean: bn.runningMean.variable,
    variance: bn.runningVar.variable,
    epsilon: bn.epsilon,
  };
}

/** The batch norm an imported operation wraps, if it is one. */
function batchNormOf(op: GraphOp | undefined): BatchNorm | undefined {
  return op instanceof LayerOp && op.layer instanceof BatchNorm ? op.layer : undefined;
}

class GraphWriter {
  readonly nodes: ExportNode[] = [];

  sequence(sequence: Sequence, input: string): string {
    let value = input;
    const layers = sequence.layers;
    for (let i = 0; i < layers.length; i++) {
      const layer = layers[i]!;
      const next = layers[i + 1];
      if ((layer instanceof Conv2d || layer instanceof DepthwiseConv2d) && next instanceof BatchNorm) {
        value = this.conv(layer, next, value);
        i++;
      } else {
        value = this.layer(layer, value);
      }
    }
    return value;
  }

  block(block: Block, number: number, input: string): string {
    if (block instanceof SeparableBlock) return this.sequence(block.body, input);
    if (block instanceof ResidualBlock) {
      const main = this.sequence(block.main, input);
      const shortcut = block.shortcut ? this.layer(block.shortcut, input) : input;
      const sum = this.push({ op: 'add', name: `blocks.${number}.add`, inputs: [main, shortcut] });
      return block.activatesSum ? this.push({ op: 'relu', name: `blocks.${number}.relu`, input: sum }) : sum;
    }
    if (block instanceof GraphBlock) return this.graph(block, input);
    throw new Error(`cannot export block ${number}: ${block.constructor.name} has no exporter`);
  }

  /**
   * An imported block's operations in the file's order, its values renamed to the nodes written.
   * A convolution whose output only its batch norm reads travels with that norm, as in the
   * engine's own blocks.
   */
  private graph(block: GraphBlock, input: string): string {
    const written = new Map([[block.input, input]]);
    const value = (name: string) => written.get(name)!;
    const readers = new Map<string, number>();
    for (const node of block.nodes) for (const v of node.inputs) readers.set(v, (readers.get(v) ?? 0) + 1);
    for (let i = 0; i < block.nodes.length; i++) {
      const node = block.nodes[i]!;
      const next = block.nodes[i + 1];
      const inputs = node.inputs.map(value);
      const bn = batchNormOf(next?.operation);
      const fused =
        node.operation instanceof ConvOp &&
        bn &&
        next!.inputs[0] === node.output &&
        readers.get(node.output) === 1 &&
        node.output !== block.output;
      if (fused) {
        written.set(next!.output, this.importedConv(node.operation as ConvOp, bn, inputs[0]!));
        i++;
      } else {
        written.set(node.output, this.operation(node.operation, `backbone.${nodeScope(node.name)}`, inputs));
      }
    }
    return value(block.output);
  }

  /**
   * An imported operation on written values; `name` names the nodes of those without parameters.
   * Blocks end before the classifier, so every value is a feature map: a flatten (or a mean that
   * flattens) only ever begins a classifier, which the network replaces by its heads.
   */
  private operation(op: GraphOp, name: string, inputs: string[]): string {
    const [input] = inputs as [string];
    if (op instanceof LayerOp) return this.layer(op.layer as Layer, input);
    if (op instanceof ConvOp) return this.importedConv(op, undefined, input);
    if (op instanceof ClipOp) return this.push({ op: 'clip', name, input, min: op.lo, max: op.hi });
    if (op instanceof HardSigmoidOp)
      return this.push({ op: 'hardSigmoid', name, input, alpha: op.alpha, beta: op.beta });
    if (op instanceof HardSwishOp) return this.push({ op: 'hardSwish', name, input });
    if (op instanceof SigmoidOp) return this.push({ op: 'sigmoid', name, input });
    if (op instanceof BinaryOp) return this.push({ op: op.kind, name, inputs: [input, inputs[1]!] });
    if (op instanceof ConstantOperandOp) {
      const kind = op.op.kind === 'add' ? 'addConstant' : 'mulConstant';
      return this.push({ op: kind, name, input, constant: op.constant.variable });
    }
    if (op instanceof ConcatOp)
      return inputs.length === 1 ? input : this.push({ op: 'concat', name, inputs, axis: op.axis });
    if (op instanceof PoolOp) {
      const kind = op.kind === 'max' ? 'maxPool' : 'avgPool';
      return this.push({ op: kind, name, input, window: op.window, stride: op.stride, pad: op.pad });
    }
    if (op instanceof SpatialMeanOp) return this.push({ op: 'globalAveragePool', name, input, keepDims: true });
    if (op instanceof PadOp) return this.push({ op: 'pad', name, input, padding: op.padding });
    throw new Error(`cannot export the imported operation ${op.constructor.name}: it has no exporter`);
  }

  private importedConv(op: ConvOp, bn: BatchNorm | undefined, input: string): string {
    const [, [top, bottom], [left, right]] = op.pad;
    const padding: SpatialPadding = [
      [top, bottom],
      [left, right],
    ];
    return this.convNode(
      { weight: op.weight, bias: op.bias, stride: op.stride, padding, depthwise: op.depthwise },
      bn,
      input,
    );
  }

  /** A convolution, with the batch norm that follows it if any (the option-A shortcut's filter is its fixed embedding). */
  private conv(layer: Conv2d | DepthwiseConv2d | ZeroPadShortcut, bn: BatchNorm | undefined, input: string): string {
    const weight = layer instanceof ZeroPadShortcut ? layer.embedding : layer.weight;
    // The engine's convolutions pad symmetrically by (k - 1) / 2, as PyTorch's.
    const pad = (weight.variable.shape[0]! - 1) / 2;
    const padding: SpatialPadding = [
      [pad, pad],
      [pad, pad],
    ];
    const depthwise = layer instanceof DepthwiseConv2d;
    return this.convNode({ weight, bias: null, stride: layer.stride, padding, depthwise }, bn, input);
  }

  private convNode(
    conv: { weight: Param; bias: Param | null; stride: number; padding: SpatialPadding; depthwise: boolean },
    bn: BatchNorm | undefined,
    input: string,
  ): string {
    const [kh, kw, inChannels, outChannels] = conv.weight.variable.shape as [number, number, number, number];
    const convName = scopeOf(conv.weight);
    return this.push({
      op: 'conv',
      name: bn ? scopeOf(bn.gamma) : convName,
      input,
      convName,
      kernel: [kh, kw],
      stride: conv.stride,
      padding: conv.padding,
      inChannels,
      outChannels: conv.depthwise ? inChannels : outChannels,
      depthwise: conv.depthwise,
      weight: conv.weight.variable,
      ...(conv.bias ? { bias: conv.bias.variable } : {}),
      ...(bn ? { batchNormName: scopeOf(bn.gamma), batchNorm: batchNormTensors(bn) } : {}),
    });
  }

  private layer(layer: Layer, input: string): string {
    if (layer instanceof Conv2d || layer instanceof DepthwiseConv2d || layer instanceof ZeroPadShortcut)
      return this.conv(layer, undefined, input);
    if (layer instanceof Relu) return this.push({ op: 'relu', name: `${input}.relu`, input });
    // Dropout is the identity at inference (the Elastic head).
    if (layer instanceof Dropout) return input;
    if (layer instanceof GlobalAveragePool)
      return this.push({ op: 'globalAveragePool', name: `${input}.pool`, input, keepDims: false });
    if (layer instanceof BatchNorm)
      return this.push({ op: 'batchNorm', name: scopeOf(layer.gamma), input, batchNorm: batchNormTensors(layer) });
    if (layer instanceof Dense) {
      return this.push({
        op: 'dense',
        name: scopeOf(layer.weight),
        input,
        inFeatures: layer.inFeatures,
        outFeatures: layer.outFeatures,
        weight: layer.weight.variable,
        bias: layer.bias.variable,
      });
    }
    if (layer instanceof Sequence) return this.sequence(layer, input);
    throw new Error(`cannot export layer ${layer.constructor.name}: it has no exporter`);
  }

  private push(node: ExportNode): string {
    this.nodes.push(node);
    return node.name;
  }
}

/**
 * The sub-model computing the logits of `exits` (indices, any order): the stem, the blocks up
 * to the deepest of them, and their heads. Nodes reference the network's variables, so the
 * graph is valid while the network is.
 */
export function exportGraph(net: MwNetwork, exits: readonly number[]): ExportGraph {
  const costs = net.costs();
  const wanted = [...new Set(exits)].sort((a, b) => a - b).map((k) => costs[net.exitAt(k).index]!);
  if (!wanted.length) throw new Error('nothing to export: no exit given');
  const writer = new GraphWriter();
  let value = writer.sequence(asSequence(net.stem), GRAPH_INPUT);
  const outputs: ExportGraph['outputs'] = [];
  const lastBlock = wanted.at(-1)!.block;
  for (let b = 1; b <= lastBlock; b++) {
    value = writer.block(net.blocks[b - 1]!, b, value);
    for (const exit of wanted.filter((e) => e.block === b)) {
      outputs.push({ exit, value: writer.sequence(asSequence(net.heads[exit.index]!), value) });
    }
  }
  return {
    input: { name: GRAPH_INPUT, shape: net.description.inputShape },
    nodes: writer.nodes,
    outputs,
    classes: net.description.classes,
  };
}

function asSequence(layer: Layer): Sequence {
  return layer instanceof Sequence ? layer : new Sequence([layer]);
}
