/**
 * A sub-model's inference graph as an ONNX model (opset 13), for the export and for timing the
 * live weights in onnxruntime. ONNX convolutions are NCHW, so the NHWC input
 * (the same as the tfjs model's) is transposed once at the start. Each batch norm that follows a
 * convolution is folded into the convolution's weights and a bias, computed in float64 and
 * rounded once; the exit head's batch norm, which follows a ReLU, stays a BatchNormalization.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as ort from 'onnxruntime-node';
import {
  ATTRIBUTE_TYPE,
  encodeOnnxModel,
  floatTensor,
  type OnnxModel,
  intAttribute as int,
  intsAttribute as ints,
  tensorInfo,
  type OnnxAttribute,
  type OnnxNode,
  type OnnxTensor,
} from '../onnx/proto.js';
import { openOnnxSession } from '../onnx/runtime.js';
import {
  BATCH_NORM_EPSILON,
  exportGraph,
  type BatchNormTensors,
  type ExportGraph,
  type ExportNode,
} from './inferenceGraph.js';
import type { MwNetwork } from './network.js';

const ONNX_OPSET = 13;
/** IR version 7 is the one released with opset 13 (ONNX 1.8). */
const ONNX_IR_VERSION = 7;
/** Symbolic batch dimension: any number of images per call. */
const BATCH_DIMENSION = 'N';

type ConvNode = Extract<ExportNode, { op: 'conv' }>;

/** Every weight the graph holds, read back at once (asynchronously: a GPU backend cannot read synchronously). */
type WeightValues = Map<tf.Tensor, Float32Array>;

async function readWeights(graph: ExportGraph): Promise<WeightValues> {
  const tensors = graph.nodes.flatMap((node): tf.Tensor[] => {
    const bn = (b: BatchNormTensors | undefined) => (b ? [b.gamma, b.beta, b.mean, b.variance] : []);
    if (node.op === 'conv') return [node.weight, ...bn(node.batchNorm)];
    if (node.op === 'batchNorm') return bn(node.batchNorm);
    if (node.op === 'dense') return [node.weight, node.bias];
    return [];
  });
  const read = await Promise.all(tensors.map((t) => t.data() as Promise<Float32Array>));
  return new Map(tensors.map((t, i) => [t, read[i]!]));
}

/**
 * conv(x, W) then batch norm = conv(x, W * s) + (beta - mean * s), s = gamma / sqrt(var + eps)
 * per output channel (a convolution without a batch norm keeps W, with bias 0). Our weights are [k, k, in, out] (depthwise: [k, k, C, 1]); ONNX wants
 * [out, in / group, k, k].
 */
function foldedConv(
  node: ConvNode,
  values: (t: tf.Tensor) => Float32Array,
): { weight: Float32Array; bias: Float32Array; dims: number[] } {
  const { kernel: k, inChannels, outChannels, depthwise } = node;
  const w = values(node.weight);
  const bn = node.batchNorm;
  const [gamma, beta, mean, variance] = bn ? [bn.gamma, bn.beta, bn.mean, bn.variance].map(values) : [];
  const inPerGroup = depthwise ? 1 : inChannels;
  const weight = new Float32Array(outChannels * inPerGroup * k * k);
  const bias = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    // Without a batch norm the convolution is kept as it is: scale 1, bias 0.
    const scale = bn ? gamma![o]! / Math.sqrt(variance![o]! + BATCH_NORM_EPSILON) : 1;
    bias[o] = bn ? beta![o]! - mean![o]! * scale : 0;
    for (let i = 0; i < inPerGroup; i++) {
      for (let kh = 0; kh < k; kh++) {
        for (let kw = 0; kw < k; kw++) {
          const source = depthwise
            ? (kh * k + kw) * outChannels + o
            : ((kh * k + kw) * inChannels + i) * outChannels + o;
          weight[((o * inPerGroup + i) * k + kh) * k + kw] = w[source]! * scale;
        }
      }
    }
  }
  return { weight, bias, dims: [outChannels, inPerGroup, k, k] };
}

class OnnxGraphWriter {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];

  constructor(private readonly weights: WeightValues) {}

  private values = (tensor: tf.Tensor): Float32Array => this.weights.get(tensor)!;

  node(op_type: string, name: string, input: string[], output: string, attribute?: OnnxAttribute[]): void {
    this.nodes.push({ name, op_type, input, output: [output], ...(attribute ? { attribute } : {}) });
  }

  initializer(name: string, dims: number[], data: Float32Array): string {
    this.initializers.push(floatTensor(name, dims, data));
    return name;
  }

  write(node: ExportNode, value: (name: string) => string): void {
    switch (node.op) {
      case 'conv': {
        const folded = foldedConv(node, this.values);
        const pad = (node.kernel - 1) / 2;
        const weight = this.initializer(`${node.convName}.weight`, folded.dims, folded.weight);
        const bias = this.initializer(`${node.convName}.bias`, [node.outChannels], folded.bias);
        this.node('Conv', node.convName, [value(node.input), weight, bias], node.name, [
          ints('kernel_shape', [node.kernel, node.kernel]),
          ints('strides', [node.stride, node.stride]),
          ints('pads', [pad, pad, pad, pad]),
          ints('dilations', [1, 1]),
          int('group', node.depthwise ? node.inChannels : 1),
        ]);
        return;
      }
      case 'batchNorm': {
        const { gamma, beta, mean, variance } = node.batchNorm;
        const channels = [gamma.size];
        const inputs = [
          this.initializer(`${node.name}.scale`, channels, this.values(gamma)),
          this.initializer(`${node.name}.bias`, channels, this.values(beta)),
          this.initializer(`${node.name}.mean`, channels, this.values(mean)),
          this.initializer(`${node.name}.var`, channels, this.values(variance)),
        ];
        this.node('BatchNormalization', node.name, [value(node.input), ...inputs], node.name, [
          { name: 'epsilon', type: ATTRIBUTE_TYPE.float, f: BATCH_NORM_EPSILON },
        ]);
        return;
      }
      case 'relu':
        this.node('Relu', node.name, [value(node.input)], node.name);
        return;
      case 'add':
        this.node('Add', node.name, node.inputs.map(value), node.name);
        return;
      case 'globalAveragePool': {
        // [N, C, H, W] -> [N, C, 1, 1] -> [N, C], the shape our pooling gives.
        const pooled = `${node.name}.nchw`;
        this.node('GlobalAveragePool', pooled, [value(node.input)], pooled);
        this.node('Flatten', node.name, [pooled], node.name, [int('axis', 1)]);
        return;
      }
      case 'dense': {
        const weight = this.initializer(
          `${node.name}.weight`,
          [node.inFeatures, node.outFeatures],
          this.values(node.weight),
        );
        const bias = this.initializer(`${node.name}.bias`, [node.outFeatures], this.values(node.bias));
        this.node('Gemm', node.name, [value(node.input), weight, bias], node.name);
        return;
      }
    }
  }
}

export interface OnnxExportInfo {
  name: string;
  description: string;
  metadata: Record<string, string>;
}

/** The serialized ModelProto: input [N, H, W, C] float32, one [N, classes] logits output per exported exit. */
export async function onnxModelBytes(graph: ExportGraph, info: OnnxExportInfo): Promise<Uint8Array> {
  return encodeOnnxModel(await onnxModelOf(graph, info));
}

/** The ModelProto before encoding, for graph transforms such as int8 quantization. */
export async function onnxModelOf(graph: ExportGraph, info: OnnxExportInfo): Promise<OnnxModel> {
  const writer = new OnnxGraphWriter(await readWeights(graph));
  const input = graph.input.name;
  const inputNchw = `${input}.nchw`;
  writer.node('Transpose', inputNchw, [input], inputNchw, [ints('perm', [0, 3, 1, 2])]);
  const value = (name: string) => (name === input ? inputNchw : name);
  for (const node of graph.nodes) writer.write(node, value);
  const [height, width, channels] = graph.input.shape;
  return {
    ir_version: ONNX_IR_VERSION,
    opset_import: [{ domain: '', version: ONNX_OPSET }],
    producer_name: 'Mw Studio',
    doc_string: info.description,
    metadata_props: Object.entries(info.metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: info.name,
      node: writer.nodes,
      initializer: writer.initializers,
      input: [tensorInfo(input, [BATCH_DIMENSION, height, width, channels])],
      output: graph.outputs.map((o) => tensorInfo(o.value, [BATCH_DIMENSION, graph.classes])),
    },
  };
}

/**
 * The sub-model of `exits` with the network's current weights (batch norms folded, as exported),
 * as an onnxruntime session: inference as a deployed model would run it.
 */
export async function openSubModelSession(net: MwNetwork, exits: readonly number[]): Promise<ort.InferenceSession> {
  const bytes = await onnxModelBytes(exportGraph(net, exits), {
    name: net.description.name,
    description: '',
    metadata: {},
  });
  return openOnnxSession(bytes, `the ONNX sub-model of ${net.description.name}`);
}
