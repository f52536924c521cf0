/**
 * An export graph as a tfjs-layers model (NHWC, like our network), with our weights copied in
 * and batch norm in inference mode. Saved with model.save it is a standard layers model that
 * TensorFlow.js loads anywhere with tf.loadLayersModel.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ExportError } from '../errors.js';
import type { BatchNormTensors, ExportGraph, ExportNode, SpatialPadding } from '../models/inferenceGraph.js';

type Symbolic = tfl.SymbolicTensor;

/** Layers that exist only to be filled with our weights: no point drawing random ones first. */
const NO_INIT = { kernelInitializer: 'zeros', biasInitializer: 'zeros' } as const;

function batchNormLayer(name: string, input: Symbolic, values: BatchNormTensors): Symbolic {
  const layer = tfl.layers.batchNormalization({ name, axis: -1, epsilon: values.epsilon });
  const output = layer.apply(input) as Symbolic;
  layer.setWeights([values.gamma, values.beta, values.mean, values.variance]);
  return output;
}

/** A layer applied to `input`, then given `weights` (tfjs creates a layer's weights when it is first applied). */
function applied(layer: tfl.layers.Layer, input: Symbolic | Symbolic[], weights?: tf.Tensor[]): Symbolic {
  const output = layer.apply(input) as Symbolic;
  if (weights) layer.setWeights(weights);
  return output;
}

function zeroPadding(name: string, input: Symbolic, padding: SpatialPadding): Symbolic {
  return applied(tfl.layers.zeroPadding2d({ name, padding }), input);
}

/** Whether tfjs's 'same' padding of a window of `k` at `stride` over `size` pads `pad` before and gives the same windows. */
function sameIsSymmetric(size: number, k: number, stride: number, pad: number): boolean {
  const outSize = Math.ceil(size / stride);
  const total = Math.max(0, (outSize - 1) * stride + k - size);
  return Math.floor(total / 2) === pad && outSize === Math.floor((size + 2 * pad - k) / stride) + 1;
}

/** [height, width] of an NHWC value. */
function spatialSize(value: Symbolic): [number, number] {
  return [value.shape[1]!, value.shape[2]!];
}

/**
 * Our convolutions pad explicitly (PyTorch's symmetric (k-1)/2, or an imported graph's pads).
 * tfjs 'same' agrees at stride 1 with symmetric padding, but at stride 2 on an even size it pads
 * 0 before and 1 after, which shifts every window by one pixel; there (and for any other
 * padding) an explicit zero padding and a 'valid' convolution reproduce ours exactly.
 */
function convLayers(node: Extract<ExportNode, { op: 'conv' }>, input: Symbolic): Symbolic {
  const [[top, bottom], [left, right]] = node.padding;
  const [kh, kw] = node.kernel;
  const unpadded = top + bottom + left + right === 0;
  // At stride 1, 'same' pads (k - 1) / 2 on each side of an odd filter.
  const same =
    !unpadded &&
    node.stride === 1 &&
    [top, bottom].every((p) => 2 * p === kh - 1) &&
    [left, right].every((p) => 2 * p === kw - 1);
  const x = unpadded || same ? input : zeroPadding(`${node.convName}.pad`, input, node.padding);
  const common = {
    name: node.convName,
    kernelSize: node.kernel,
    strides: node.stride,
    padding: same ? ('same' as const) : ('valid' as const),
    useBias: node.bias !== undefined,
  };
  const conv = node.depthwise
    ? tfl.layers.depthwiseConv2d({ ...common, depthMultiplier: 1, depthwiseInitializer: 'zeros' })
    : tfl.layers.conv2d({ ...common, filters: node.outChannels, ...NO_INIT });
  const y = applied(conv, x, node.bias ? [node.weight, node.bias] : [node.weight]);
  return node.batchNorm ? batchNormLayer(node.batchNormName!, y, node.batchNorm) : y;
}

/** Operations whose outputs are never negative: a max pool over them may pad with zeros instead of minus infinity. */
function nonNegative(node: ExportNode | undefined): boolean {
  if (!node) return false;
  return (
    node.op === 'relu' || node.op === 'sigmoid' || node.op === 'hardSigmoid' || (node.op === 'clip' && node.min >= 0)
  );
}

function cannotExport(node: ExportNode, why: string): never {
  throw new ExportError(
    `${node.name} (${node.op}) has no TensorFlow.js layer: ${why}; export this exit as ONNX instead`,
  );
}

/**
 * Pooling with the graph's padding, which max pooling ignores and average pooling leaves out of
 * the count: tfjs 'same' does both where it pads as the graph does; else a max pool over values
 * that cannot be negative may pad with zeros.
 */
function poolLayers(
  node: Extract<ExportNode, { op: 'maxPool' | 'avgPool' }>,
  input: Symbolic,
  producer: ExportNode | undefined,
): Symbolic {
  const [h, w] = spatialSize(input);
  const [kh, kw] = node.window;
  const make = node.op === 'maxPool' ? tfl.layers.maxPooling2d : tfl.layers.averagePooling2d;
  const pool = (padding: 'same' | 'valid') =>
    make({ name: node.name, poolSize: node.window, strides: node.stride, padding });
  if (node.pad === 0) return applied(pool('valid'), input);
  if (sameIsSymmetric(h, kh, node.stride, node.pad) && sameIsSymmetric(w, kw, node.stride, node.pad))
    return applied(pool('same'), input);
  if (node.op === 'maxPool' && nonNegative(producer)) {
    const p = node.pad;
    const padded = zeroPadding(`${node.name}.pad`, input, [
      [p, p],
      [p, p],
    ]);
    return applied(pool('valid'), padded);
  }
  return cannotExport(node, `padding ${node.pad} on a ${h}x${w} input is not what 'same' pads`);
}

/** x + c or x * c for a scalar (a Rescaling layer) or per-channel constant (a 1x1 depthwise convolution with bias). */
function constantLayers(node: Extract<ExportNode, { op: 'addConstant' | 'mulConstant' }>, input: Symbolic): Symbolic {
  const adds = node.op === 'addConstant';
  const { constant } = node;
  if (constant.size === 1) {
    const c = constant.dataSync()[0]!;
    return applied(tfl.layers.rescaling({ name: node.name, scale: adds ? 1 : c, offset: adds ? c : 0 }), input);
  }
  const channels = input.shape[3];
  const perChannel = input.rank === 4 && constant.rank === 4 && constant.shape.slice(0, 3).every((d) => d === 1);
  if (!perChannel || constant.shape[3] !== channels)
    return cannotExport(
      node,
      `its constant of shape [${constant.shape.join(', ')}] is neither a scalar nor per channel`,
    );
  const layer = tfl.layers.depthwiseConv2d({
    name: node.name,
    kernelSize: 1,
    depthMultiplier: 1,
    useBias: adds,
    depthwiseInitializer: 'zeros',
  });
  const weights = tf.tidy(() => {
    const perFilter = tf.reshape(constant, [1, 1, channels!, 1]);
    return adds ? [tf.onesLike(perFilter), tf.reshape(constant, [channels!])] : [perFilter];
  });
  try {
    return applied(layer, input, weights);
  } finally {
    tf.dispose(weights);
  }
}

/** clip(alpha * x + beta, 0, 1) as a Rescaling and a ReLU capped at 1 (tfjs's own hardSigmoid is fixed at alpha 0.2). */
function hardSigmoidLayers(name: string, input: Symbolic, alpha: number, beta: number): Symbolic {
  const scaled = applied(tfl.layers.rescaling({ name: `${name}.scale`, scale: alpha, offset: beta }), input);
  return applied(tfl.layers.reLU({ name, maxValue: 1 }), scaled);
}

function nodeLayers(
  node: ExportNode,
  value: (name: string) => Symbolic,
  producer: (name: string) => ExportNode | undefined,
): Symbolic {
  switch (node.op) {
    case 'conv':
      return convLayers(node, value(node.input));
    case 'batchNorm':
      return batchNormLayer(node.name, value(node.input), node.batchNorm);
    case 'relu':
      return applied(tfl.layers.reLU({ name: node.name }), value(node.input));
    case 'sigmoid':
      return applied(tfl.layers.activation({ name: node.name, activation: 'sigmoid' }), value(node.input));
    case 'clip':
      if (node.min !== 0) return cannotExport(node, `a clip to [${node.min}, ${node.max}] does not start at 0`);
      return applied(
        tfl.layers.reLU({ name: node.name, ...(Number.isFinite(node.max) ? { maxValue: node.max } : {}) }),
        value(node.input),
      );
    case 'hardSigmoid':
      return hardSigmoidLayers(node.name, value(node.input), node.alpha, node.beta);
    case 'hardSwish': {
      const x = value(node.input);
      // PyTorch's x * relu6(x + 3) / 6.
      const gate = hardSigmoidLayers(`${node.name}.gate`, x, 1 / 6, 0.5);
      return applied(tfl.layers.multiply({ name: node.name }), [x, gate]);
    }
    case 'add':
      return applied(tfl.layers.add({ name: node.name }), node.inputs.map(value));
    case 'mul':
      return applied(tfl.layers.multiply({ name: node.name }), node.inputs.map(value));
    case 'addConstant':
    case 'mulConstant':
      return constantLayers(node, value(node.input));
    case 'concat':
      return applied(tfl.layers.concatenate({ name: node.name, axis: node.axis }), node.inputs.map(value));
    case 'maxPool':
    case 'avgPool':
      return poolLayers(node, value(node.input), producer(node.input));
    case 'pad':
      return zeroPadding(node.name, value(node.input), node.padding);
    case 'globalAveragePool': {
      const x = value(node.input);
      if (!node.keepDims) return applied(tfl.layers.globalAveragePooling2d({ name: node.name }), x);
      const pooled = applied(tfl.layers.globalAveragePooling2d({ name: `${node.name}.mean` }), x);
      return applied(tfl.layers.reshape({ name: node.name, targetShape: [1, 1, x.shape[3]!] }), pooled);
    }
    case 'dense':
      return applied(tfl.layers.dense({ name: node.name, units: node.outFeatures, ...NO_INIT }), value(node.input), [
        node.weight,
        node.bias,
      ]);
  }
}

/** Every layer that computes `outputs`, disposed with its weights (tfjs makes them when a layer is applied). */
function disposeLayersBehind(outputs: Symbolic[]): void {
  const layers = new Set<tfl.layers.Layer>();
  const pending = outputs.map((o) => o.sourceLayer as tfl.layers.Layer);
  while (pending.length) {
    const layer = pending.pop()!;
    if (layers.has(layer)) continue;
    layers.add(layer);
    for (const node of layer.inboundNodes) pending.push(...(node.inboundLayers as tfl.layers.Layer[]));
  }
  for (const layer of layers) layer.dispose();
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
  const producers = new Map(graph.nodes.map((node) => [node.name, node]));
  try {
    for (const node of graph.nodes)
      values.set(
        node.name,
        nodeLayers(node, value, (name) => producers.get(name)),
      );
  } catch (error) {
    // A node refused before making its layers: those made so far hold weights no model will dispose.
    disposeLayersBehind([...values.values()]);
    throw error;
  }
  return tfl.model({ name, inputs: input, outputs: graph.outputs.map((o) => value(o.value)) });
}
