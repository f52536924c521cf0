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
  int64Tensor,
  type OnnxModel,
  intAttribute as int,
  intsAttribute as ints,
  tensorInfo,
  type OnnxAttribute,
  type OnnxNode,
  type OnnxTensor,
} from '../onnx/proto.js';
import { openOnnxSession } from '../onnx/runtime.js';
import { exportGraph, type BatchNormTensors, type ExportGraph, type ExportNode } from './inferenceGraph.js';
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
    if (node.op === 'conv') return [node.weight, ...(node.bias ? [node.bias] : []), ...bn(node.batchNorm)];
    if (node.op === 'batchNorm') return bn(node.batchNorm);
    if (node.op === 'dense') return [node.weight, node.bias];
    if (node.op === 'addConstant' || node.op === 'mulConstant') return [node.constant];
    return [];
  });
  const read = await Promise.all(tensors.map((t) => t.data() as Promise<Float32Array>));
  return new Map(tensors.map((t, i) => [t, read[i]!]));
}

/**
 * conv(x, W) + b then batch norm = conv(x, W * s) + ((b - mean) * s + beta), s = gamma / sqrt(var + eps)
 * per output channel (a convolution without a batch norm keeps W and b, or 0). Our weights are
 * [kh, kw, in, out] (depthwise: [kh, kw, C, 1]); ONNX wants [out, in / group, kh, kw].
 */
function foldedConv(
  node: ConvNode,
  values: (t: tf.Tensor) => Float32Array,
): { weight: Float32Array; bias: Float32Array; dims: number[] } {
  const {
    kernel: [kh, kw],
    inChannels,
    outChannels,
    depthwise,
  } = node;
  const w = values(node.weight);
  const convBias = node.bias ? values(node.bias) : undefined;
  const bn = node.batchNorm;
  const [gamma, beta, mean, variance] = bn ? [bn.gamma, bn.beta, bn.mean, bn.variance].map(values) : [];
  const inPerGroup = depthwise ? 1 : inChannels;
  const weight = new Float32Array(outChannels * inPerGroup * kh * kw);
  const bias = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    // Without a batch norm the convolution is kept as it is: scale 1, its own bias.
    const scale = bn ? gamma![o]! / Math.sqrt(variance![o]! + bn.epsilon) : 1;
    const b = convBias?.[o] ?? 0;
    bias[o] = bn ? (b - mean![o]!) * scale + beta![o]! : b;
    for (let i = 0; i < inPerGroup; i++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) {
          const source = depthwise ? (y * kw + x) * outChannels + o : ((y * kw + x) * inChannels + i) * outChannels + o;
          weight[((o * inPerGroup + i) * kh + y) * kw + x] = w[source]! * scale;
        }
      }
    }
  }
  return { weight, bias, dims: [outChannels, inPerGroup, kh, kw] };
}

/** NHWC axis of a 4-D value -> its NCHW axis. */
const NCHW_AXIS = [0, 2, 3, 1];

/** A constant operand in the graph's layout: a 4-D one from [1, H, W, C] to [1, C, H, W]. */
function nchwConstant(values: Float32Array, shape: readonly number[]): { dims: number[]; data: Float32Array } {
  if (shape.length !== 4) return { dims: [...shape], data: values };
  const [n, h, w, c] = shape as [number, number, number, number];
  const data = new Float32Array(values.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let k = 0; k < c; k++) data[((b * c + k) * h + y) * w + x] = values[((b * h + y) * w + x) * c + k]!;
  return { dims: [n, c, h, w], data };
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
        const [[top, bottom], [left, right]] = node.padding;
        const weight = this.initializer(`${node.convName}.weight`, folded.dims, folded.weight);
        const bias = this.initializer(`${node.convName}.bias`, [node.outChannels], folded.bias);
        this.node('Conv', node.convName, [value(node.input), weight, bias], node.name, [
          ints('kernel_shape', node.kernel),
          ints('strides', [node.stride, node.stride]),
          ints('pads', [top, left, bottom, right]),
          ints('dilations', [1, 1]),
          int('group', node.depthwise ? node.inChannels : 1),
        ]);
        return;
      }
      case 'batchNorm': {
        const { gamma, beta, mean, variance, epsilon } = node.batchNorm;
        const channels = [gamma.size];
        const inputs = [
          this.initializer(`${node.name}.scale`, channels, this.values(gamma)),
          this.initializer(`${node.name}.bias`, channels, this.values(beta)),
          this.initializer(`${node.name}.mean`, channels, this.values(mean)),
          this.initializer(`${node.name}.var`, channels, this.values(variance)),
        ];
        this.node('BatchNormalization', node.name, [value(node.input), ...inputs], node.name, [
          { name: 'epsilon', type: ATTRIBUTE_TYPE.float, f: epsilon },
        ]);
        return;
      }
      case 'relu':
        this.node('Relu', node.name, [value(node.input)], node.name);
        return;
      case 'sigmoid':
        this.node('Sigmoid', node.name, [value(node.input)], node.name);
        return;
      case 'hardSigmoid':
        this.node('HardSigmoid', node.name, [value(node.input)], node.name, [
          { name: 'alpha', type: ATTRIBUTE_TYPE.float, f: node.alpha },
          { name: 'beta', type: ATTRIBUTE_TYPE.float, f: node.beta },
        ]);
        return;
      case 'hardSwish': {
        // HardSwish is an operator from opset 14 on: x * HardSigmoid(x) with PyTorch's alpha 1/6, beta 1/2.
        const gate = `${node.name}.gate`;
        this.node('HardSigmoid', gate, [value(node.input)], gate, [
          { name: 'alpha', type: ATTRIBUTE_TYPE.float, f: 1 / 6 },
          { name: 'beta', type: ATTRIBUTE_TYPE.float, f: 0.5 },
        ]);
        this.node('Mul', node.name, [value(node.input), gate], node.name);
        return;
      }
      case 'clip': {
        // Opset 13 takes the bounds as inputs; an empty name leaves that side open.
        const bound = (which: string, v: number) =>
          Number.isFinite(v) ? this.initializer(`${node.name}.${which}`, [], Float32Array.of(v)) : '';
        const bounds = [bound('min', node.min), bound('max', node.max)];
        while (bounds.at(-1) === '') bounds.pop();
        this.node('Clip', node.name, [value(node.input), ...bounds], node.name);
        return;
      }
      case 'add':
      case 'mul':
        this.node(node.op === 'add' ? 'Add' : 'Mul', node.name, node.inputs.map(value), node.name);
        return;
      case 'addConstant':
      case 'mulConstant': {
        const { dims, data } = nchwConstant(this.values(node.constant), node.constant.shape);
        const constant = this.initializer(`${node.name}.constant`, dims, data);
        this.node(node.op === 'addConstant' ? 'Add' : 'Mul', node.name, [value(node.input), constant], node.name);
        return;
      }
      case 'concat':
        this.node('Concat', node.name, node.inputs.map(value), node.name, [int('axis', NCHW_AXIS[node.axis]!)]);
        return;
      case 'maxPool':
      case 'avgPool':
        // AveragePool leaves the padding out of the count by default (count_include_pad 0), as the network does.
        this.node(node.op === 'maxPool' ? 'MaxPool' : 'AveragePool', node.name, [value(node.input)], node.name, [
          ints('kernel_shape', node.window),
          ints('strides', [node.stride, node.stride]),
          ints('pads', [node.pad, node.pad, node.pad, node.pad]),
        ]);
        return;
      case 'pad': {
        const [[top, bottom], [left, right]] = node.padding;
        const pads = `${node.name}.pads`;
        this.initializers.push(int64Tensor(pads, [0, 0, top, left, 0, 0, bottom, right]));
        this.node('Pad', node.name, [value(node.input), pads], node.name);
        return;
      }
      case 'globalAveragePool': {
        if (node.keepDims) {
          // [N, C, H, W] -> [N, C, 1, 1]: the network's [N, 1, 1, C] in NCHW.
          this.node('GlobalAveragePool', node.name, [value(node.input)], node.name);
          return;
        }
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
