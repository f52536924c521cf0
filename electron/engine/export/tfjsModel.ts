/**
 * An export graph as a tfjs-layers model (NHWC, like our network), with our weights copied in
 * and batch norm in inference mode. Saved with model.save it is a standard layers model that
 * TensorFlow.js loads anywhere with tf.loadLayersModel.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import {
  BATCH_NORM_EPSILON,
  type BatchNormTensors,
  type ExportGraph,
  type ExportNode,
} from '../models/inferenceGraph.js';

type Symbolic = tfl.SymbolicTensor;

/** Layers that exist only to be filled with our weights: no point drawing random ones first. */
const NO_INIT = { kernelInitializer: 'zeros', biasInitializer: 'zeros' } as const;

function batchNormLayer(name: string, input: Symbolic, values: BatchNormTensors): Symbolic {
  const layer = tfl.layers.batchNormalization({ name, axis: -1, epsilon: BATCH_NORM_EPSILON });
  const output = layer.apply(input) as Symbolic;
  layer.setWeights([values.gamma, values.beta, values.mean, values.variance]);
  return output;
}

/**
 * Our convolutions pad symmetrically by (k-1)/2 (PyTorch). tfjs 'same' agrees at stride 1, but
 * at stride 2 on an even size it pads 0 before and 1 after, which shifts every window by one
 * pixel; there an explicit zero padding and a 'valid' convolution reproduce ours exactly.
 */
function convLayers(node: Extract<ExportNode, { op: 'conv' }>, input: Symbolic): Symbolic {
  const pad = (node.kernel - 1) / 2;
  let x = input;
  if (pad > 0 && node.stride > 1) {
    x = tfl.layers
      .zeroPadding2d({
        name: `${node.convName}.pad`,
        padding: [
          [pad, pad],
          [pad, pad],
        ],
      })
      .apply(x) as Symbolic;
  }
  const common = {
    name: node.convName,
    kernelSize: node.kernel,
    strides: node.stride,
    padding: pad > 0 && node.stride === 1 ? ('same' as const) : ('valid' as const),
    useBias: false,
  };
  const conv = node.depthwise
    ? tfl.layers.depthwiseConv2d({ ...common, depthMultiplier: 1, depthwiseInitializer: 'zeros' })
    : tfl.layers.conv2d({ ...common, filters: node.outChannels, ...NO_INIT });
  x = conv.apply(x) as Symbolic;
  conv.setWeights([node.weight]);
  return node.batchNorm ? batchNormLayer(node.batchNormName!, x, node.batchNorm) : x;
}

function nodeLayers(node: ExportNode, value: (name: string) => Symbolic): Symbolic {
  switch (node.op) {
    case 'conv':
      return convLayers(node, value(node.input));
    case 'batchNorm':
      return batchNormLayer(node.name, value(node.input), node.batchNorm);
    case 'relu':
      return tfl.layers.reLU({ name: node.name }).apply(value(node.input)) as Symbolic;
    case 'add':
      return tfl.layers.add({ name: node.name }).apply(node.inputs.map(value)) as Symbolic;
    case 'globalAveragePool':
      return tfl.layers.globalAveragePooling2d({ name: node.name }).apply(value(node.input)) as Symbolic;
    case 'dense': {
      const dense = tfl.layers.dense({ name: node.name, units: node.outFeatures, ...NO_INIT });
      const output = dense.apply(value(node.input)) as Symbolic;
      dense.setWeights([node.weight, node.bias]);
      return output;
    }
  }
}

/** The graph as a LayersModel: one output per exported exit (logits), shallowest first. The caller disposes it. */
export function buildLayersModel(graph: ExportGraph, name: string): tfl.LayersModel {
  const input = tfl.input({ name: graph.input.name, shape: [...graph.input.shape] });
  const values = new Map<string, Symbolic>([[graph.input.name, input]]);
  const value = (name: string): Symbolic => {
    const found = values.get(name);
    if (!found) throw new Error(`export graph: ${name} is used before it is computed`);
    return found;
  };
  for (const node of graph.nodes) values.set(node.name, nodeLayers(node, value));
  return tfl.model({ name, inputs: input, outputs: graph.outputs.map((o) => value(o.value)) });
}
