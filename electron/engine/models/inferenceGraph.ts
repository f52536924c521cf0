/**
 * A trained Mw-network's sub-model as a flat list of inference operations: the one description
 * both exporters (tfjs layers, ONNX) translate, so the walk over stem, blocks and heads is
 * written once. A convolution followed by a batch norm travels with it, so ONNX can fold the
 * norm into the convolution while tfjs keeps both layers; pre-activation blocks and the
 * option-A shortcut have convolutions without one.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { ResidualBlock, SeparableBlock, type Block } from './blocks.js';
import {
  BatchNorm,
  Conv2d,
  Dense,
  DepthwiseConv2d,
  GlobalAveragePool,
  Relu,
  Sequence,
  ZeroPadShortcut,
  type FeatureShape,
  type Layer,
  type Param,
} from './layers.js';
import type { ExitCost, MwNetwork } from './network.js';

/** The epsilon the network's batch norm uses, so exported models normalise identically. */
export { BN_EPSILON as BATCH_NORM_EPSILON } from './layers.js';

export interface BatchNormTensors {
  gamma: tf.Tensor;
  beta: tf.Tensor;
  mean: tf.Tensor;
  variance: tf.Tensor;
}

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
      kernel: number;
      stride: number;
      inChannels: number;
      outChannels: number;
      /** One filter per channel (MobileNet): weight [k, k, C, 1] instead of [k, k, in, out]. */
      depthwise: boolean;
      weight: tf.Tensor;
      batchNorm?: BatchNormTensors;
    }
  | { op: 'batchNorm'; name: string; input: string; batchNorm: BatchNormTensors }
  | { op: 'relu'; name: string; input: string }
  | { op: 'add'; name: string; inputs: [string, string] }
  | { op: 'globalAveragePool'; name: string; input: string }
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
  };
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
    throw new Error(`cannot export block ${number}: ${block.constructor.name} has no exporter`);
  }

  /** A convolution, with the batch norm that follows it if any (the option-A shortcut's filter is its fixed embedding). */
  private conv(layer: Conv2d | DepthwiseConv2d | ZeroPadShortcut, bn: BatchNorm | undefined, input: string): string {
    const depthwise = layer instanceof DepthwiseConv2d;
    const weight = layer instanceof ZeroPadShortcut ? layer.embedding : layer.weight;
    const [kernel, , inChannels, outChannels] = weight.variable.shape as [number, number, number, number];
    const convName = scopeOf(weight);
    return this.push({
      op: 'conv',
      name: bn ? scopeOf(bn.gamma) : convName,
      input,
      convName,
      kernel,
      stride: layer.stride,
      inChannels,
      outChannels: depthwise ? inChannels : outChannels,
      depthwise,
      weight: weight.variable,
      ...(bn ? { batchNormName: scopeOf(bn.gamma), batchNorm: batchNormTensors(bn) } : {}),
    });
  }

  private layer(layer: Layer, input: string): string {
    if (layer instanceof Conv2d || layer instanceof DepthwiseConv2d || layer instanceof ZeroPadShortcut)
      return this.conv(layer, undefined, input);
    if (layer instanceof Relu) return this.push({ op: 'relu', name: `${input}.relu`, input });
    if (layer instanceof GlobalAveragePool) return this.push({ op: 'globalAveragePool', name: `${input}.pool`, input });
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

/** Whether the writer knows every block of the network (an imported backbone's graph blocks it does not write yet). */
export function exportable(net: MwNetwork): boolean {
  return net.blocks.every((b) => b instanceof SeparableBlock || b instanceof ResidualBlock);
}

function asSequence(layer: Layer): Sequence {
  return layer instanceof Sequence ? layer : new Sequence([layer]);
}
