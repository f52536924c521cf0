/**
 * Reads an ONNX file into a graph of engine operations (ops.ts): constants and the glue that
 * exporters emit around them (Constant, Identity, Dropout, Shape/Gather/Unsqueeze/Concat feeding
 * a Reshape) are evaluated here, every other node becomes one operation with its output shape
 * and its multiply-accumulates. Values are NHWC, as everywhere in the engine: the NCHW weights
 * and axes of the file are translated once, here. Anything it cannot translate exactly is
 * refused with one line naming the operator and the node.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ImportError } from '../../errors.js';
import { BatchNorm, Dense, Relu, type ParamFactory } from '../layers.js';
import {
  ATTRIBUTE_TYPE,
  decodeOnnxModel,
  ONNX_DOUBLE,
  ONNX_FLOAT,
  ONNX_INT32,
  ONNX_INT64,
  type OnnxAttribute,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
} from '../../onnx/proto.js';
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
  SigmoidOp,
  SpatialMeanOp,
  type GraphOp,
} from './ops.js';

/** A constant of the graph: float values, or integers (shapes, axes, indices). */
interface Constant {
  dims: number[];
  floats?: Float32Array;
  ints?: number[];
}

/** One operation of the imported graph. */
export interface ImportedNode {
  /** The ONNX node's name (or its operator and position when it has none). */
  name: string;
  op: string;
  /** Activation values it reads (constants are inside `operation`). */
  inputs: string[];
  output: string;
  operation: GraphOp;
  /** Output shape of one image: [H, W, C], or [F] after a flatten. */
  shape: number[];
  /** Multiply-accumulates per image. */
  macs: number;
}

export interface ImportedGraph {
  input: { name: string; shape: [number, number, number] };
  nodes: ImportedNode[];
  /** The graph's outputs (activation values). */
  outputs: string[];
  /** Operator set version of the standard domain. */
  opset: number;
}

/** Operators the importer reads (glue included), named when it refuses another. */
const SUPPORTED_OPERATORS = [
  'Conv',
  'BatchNormalization',
  'Relu',
  'Clip',
  'HardSigmoid',
  'HardSwish',
  'Sigmoid',
  'Mul',
  'Add',
  'Concat',
  'MaxPool',
  'AveragePool',
  'Pad',
  'GlobalAveragePool',
  'ReduceMean',
  'Flatten',
  'Gemm',
  'Reshape',
  'Transpose',
  'Constant',
  'Identity',
  'Dropout',
  'Shape',
  'Gather',
  'Unsqueeze',
  'Cast',
] as const;

/** The one-line refusal: what is not supported, at which node, and what the importer does read. */
function refuse(node: OnnxNode, why: string): never {
  const known = (SUPPORTED_OPERATORS as readonly string[]).includes(node.op_type);
  const advice = known
    ? `the importer reads ${node.op_type} in the forms torchvision models use; re-export without this one`
    : `the importer reads ${SUPPORTED_OPERATORS.join(', ')}`;
  throw new ImportError(`Unsupported ONNX ${why} at node "${node.name}": ${advice}`);
}

function littleEndian(raw: Uint8Array): DataView {
  return new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
}

function readConstant(tensor: OnnxTensor, where: string): Constant {
  const dims = (tensor.dims ?? []).map(Number);
  const size = dims.reduce((a, b) => a * b, 1);
  if (tensor.data_location === 1)
    throw new ImportError(
      `ONNX tensor "${tensor.name}" (${where}) keeps its values in an external file; save the model with its weights inside (onnx.save(model, path, save_as_external_data=False))`,
    );
  const raw = tensor.raw_data && tensor.raw_data.byteLength ? littleEndian(tensor.raw_data) : undefined;
  switch (tensor.data_type) {
    case ONNX_FLOAT:
      return {
        dims,
        floats: raw
          ? Float32Array.from({ length: size }, (_, i) => raw.getFloat32(4 * i, true))
          : Float32Array.from(tensor.float_data ?? []),
      };
    case ONNX_DOUBLE:
      return {
        dims,
        floats: Float32Array.from(
          raw ? Array.from({ length: size }, (_, i) => raw.getFloat64(8 * i, true)) : (tensor.double_data ?? []),
        ),
      };
    case ONNX_INT64:
      return {
        dims,
        ints: raw
          ? Array.from({ length: size }, (_, i) => Number(raw.getBigInt64(8 * i, true)))
          : (tensor.int64_data ?? []).map(Number),
      };
    case ONNX_INT32:
      return {
        dims,
        ints: raw ? Array.from({ length: size }, (_, i) => raw.getInt32(4 * i, true)) : (tensor.int32_data ?? []),
      };
    default:
      throw new ImportError(
        `ONNX tensor "${tensor.name}" (${where}) has element type ${tensor.data_type}; the importer reads float32/float64 weights and int32/int64 shapes`,
      );
  }
}

class Attributes {
  private readonly byName: Map<string, OnnxAttribute>;

  constructor(private readonly node: OnnxNode) {
    this.byName = new Map((node.attribute ?? []).map((a) => [a.name, a]));
  }

  int(name: string, fallback: number): number {
    const a = this.byName.get(name);
    return a ? Number(a.i ?? 0) : fallback;
  }

  float(name: string, fallback: number): number {
    const a = this.byName.get(name);
    return a ? (a.f ?? 0) : fallback;
  }

  ints(name: string): number[] | undefined {
    const a = this.byName.get(name);
    return a ? (a.ints ?? []).map(Number) : undefined;
  }

  string(name: string): string | undefined {
    const s = this.byName.get(name)?.s;
    return s ? new TextDecoder().decode(s) : undefined;
  }

  tensor(name: string): OnnxTensor | undefined {
    const a = this.byName.get(name);
    return a?.type === ATTRIBUTE_TYPE.tensor ? a.t : undefined;
  }

  /** Refuses the node when an attribute has a value other than the one the importer implements. */
  expect(name: string, allowed: (value: OnnxAttribute) => boolean, what: string): void {
    const a = this.byName.get(name);
    if (a && !allowed(a)) refuse(this.node, what);
  }
}

/** "/layer1/layer1.0/conv1/Conv" -> "layer1.layer1.0.conv1.Conv": a node's name as a scope of weight and layer names. */
export function nodeScope(name: string): string {
  return name.replace(/^\/+/, '').replace(/[/:]+/g, '.');
}

/** NCHW axis of a 4-D value -> NHWC axis. */
const NHWC_AXIS = [0, 3, 1, 2];

function nhwcAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  return rank === 4 ? NHWC_AXIS[a]! : a;
}

/** Shape of a value as ONNX sees it ([C, H, W] or [F], batch excluded) from the engine's. */
function onnxShape(shape: number[]): number[] {
  return shape.length === 3 ? [shape[2]!, shape[0]!, shape[1]!] : shape;
}

export interface ImportOptions {
  /** Where the weights are created (their names are the node names). */
  make: ParamFactory;
}

/** Converts the nodes of the file; weights become tf variables made by `make`. */
export function importGraph(bytes: Uint8Array, options: ImportOptions): ImportedGraph {
  let model: OnnxModel;
  try {
    model = decodeOnnxModel(bytes);
  } catch (error) {
    throw new ImportError(
      `not an ONNX model (${error instanceof Error ? error.message : String(error)}); give a .onnx file written by torch.onnx.export, tf2onnx or this studio`,
    );
  }
  const opset = model.opset_import?.find((o) => !o.domain || o.domain === 'ai.onnx')?.version;
  if (!model.graph || opset === undefined)
    throw new ImportError('the ONNX file holds no graph of the standard operator set');
  return new GraphReader(model, Number(opset), options.make).read();
}

class GraphReader {
  private readonly constants = new Map<string, Constant>();
  /** Activation values: their engine shape (one image). */
  private readonly shapes = new Map<string, number[]>();
  private readonly aliases = new Map<string, string>();
  private readonly nodes: ImportedNode[] = [];

  constructor(
    private readonly model: OnnxModel,
    private readonly opset: number,
    private readonly make: ParamFactory,
  ) {}

  read(): ImportedGraph {
    const graph = this.model.graph;
    for (const init of graph.initializer ?? []) this.constants.set(init.name, readConstant(init, 'an initializer'));
    const inputs = (graph.input ?? []).filter((i) => !this.constants.has(i.name));
    if (inputs.length !== 1)
      throw new ImportError(
        `the ONNX graph has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}); a backbone takes one image tensor`,
      );
    const input = inputs[0]!;
    const dims = (input.type?.tensor_type?.shape?.dim ?? []).map((d) => ('dim_value' in d ? Number(d.dim_value) : 0));
    if (dims.length !== 4)
      throw new ImportError(
        `the ONNX graph's input "${input.name}" has ${dims.length} dimensions; a backbone takes [N, C, H, W] images`,
      );
    const nodes = graph.node ?? [];
    // This studio's own exports take NHWC and transpose to NCHW first.
    const first = nodes[0];
    const nhwcInput =
      first?.op_type === 'Transpose' &&
      first.input[0] === input.name &&
      new Attributes(first).ints('perm')?.join() === '0,3,1,2';
    const [c, h, w] = nhwcInput ? [dims[3]!, dims[1]!, dims[2]!] : [dims[1]!, dims[2]!, dims[3]!];
    if (!(h > 0 && w > 0 && c > 0))
      throw new ImportError(
        `the ONNX graph's input "${input.name}" has no fixed image size; export it with a fixed height and width (only the batch may vary)`,
      );
    this.shapes.set(input.name, [h, w, c]);
    nodes.forEach((node, index) => {
      const named = { ...node, name: node.name || `${node.op_type}_${index}` };
      if (nhwcInput && index === 0) this.aliases.set(node.output[0]!, input.name);
      else this.readNode(named);
    });
    const outputs = (graph.output ?? []).map((o) => this.resolve(o.name));
    for (const output of outputs)
      if (!this.shapes.has(output))
        throw new ImportError(`the ONNX graph's output "${output}" is a constant, not a feature`);
    return { input: { name: input.name, shape: [h, w, c] }, nodes: this.nodes, outputs, opset: this.opset };
  }

  private resolve(name: string): string {
    return this.aliases.get(name) ?? name;
  }

  private constant(name: string | undefined): Constant | undefined {
    return name ? this.constants.get(this.resolve(name)) : undefined;
  }

  private readNode(node: OnnxNode): void {
    if (node.domain && node.domain !== 'ai.onnx') refuse(node, `operator ${node.domain}.${node.op_type}`);
    const attrs = new Attributes(node);
    const inputs = node.input.map((i) => (i ? this.resolve(i) : ''));
    const output = node.output[0]!;
    const value = (i: number): string | undefined => (inputs[i] && this.shapes.has(inputs[i]!) ? inputs[i] : undefined);
    const shapeOf = (i: number): number[] => this.shapes.get(inputs[i]!)!;
    const allConstant = inputs.every((i) => !i || this.constants.has(i));

    switch (node.op_type) {
      case 'Constant': {
        const t = attrs.tensor('value');
        if (!t) refuse(node, 'Constant without a tensor value');
        this.constants.set(output, readConstant(t, `node "${node.name}"`));
        return;
      }
      case 'Identity':
      case 'Dropout':
        // Dropout is the identity in an inference graph (its mask output, if any, is unused).
        this.aliases.set(output, inputs[0]!);
        return;
      case 'Shape': {
        const shape = value(0) && shapeOf(0);
        if (!shape) refuse(node, 'operator Shape of a constant');
        // The batch is not fixed: -1, which a Reshape fed by this shape infers again.
        this.constants.set(output, { dims: [shape.length + 1], ints: [-1, ...onnxShape(shape)] });
        return;
      }
    }
    if (allConstant && ['Gather', 'Unsqueeze', 'Concat', 'Cast', 'Reshape'].includes(node.op_type)) {
      this.foldConstant(node, attrs, inputs);
      return;
    }
    if (!value(0)) refuse(node, `operator ${node.op_type} on constants only`);
    const x = shapeOf(0);
    const add = (operation: GraphOp, shape: number[], macs = 0, reads = [inputs[0]!]) => {
      this.nodes.push({ name: node.name, op: node.op_type, inputs: reads, output, operation, shape, macs });
      this.shapes.set(output, shape);
    };
    const spatial = () => {
      if (x.length !== 3) refuse(node, `operator ${node.op_type} on a ${x.length + 1}-D value`);
      return x as [number, number, number];
    };
    const child = this.make.child(nodeScope(node.name));

    switch (node.op_type) {
      case 'Conv': {
        const [h, w, c] = spatial();
        const weight = this.constant(node.input[1]);
        if (!weight?.floats || weight.dims.length !== 4) refuse(node, 'Conv whose weight is not a constant 4-D tensor');
        const [outC, inPerGroup, kh, kw] = weight.dims as [number, number, number, number];
        const group = attrs.int('group', 1);
        const depthwise = group > 1;
        if (depthwise && !(group === c && inPerGroup === 1 && outC === c))
          refuse(node, `grouped Conv with ${group} groups (only depthwise, groups = channels, is supported)`);
        if (!depthwise && inPerGroup !== c) refuse(node, `Conv expecting ${inPerGroup} channels on ${c}`);
        attrs.expect('dilations', (a) => (a.ints ?? []).every((d) => Number(d) === 1), 'dilated Conv');
        const strides = attrs.ints('strides') ?? [1, 1];
        if (strides[0] !== strides[1]) refuse(node, `Conv with unequal strides ${strides.join('x')}`);
        const stride = strides[0]!;
        const [top, left, bottom, right] = this.pads(node, attrs, [kh, kw], stride, [h, w]);
        const values = tf.tidy(() =>
          tf.transpose(
            tf.tensor4d(weight.floats!, [outC, inPerGroup, kh, kw]),
            depthwise ? [2, 3, 0, 1] : [2, 3, 1, 0],
          ),
        );
        const bias = this.constant(node.input[2]);
        const op = new ConvOp(
          child.given('weight', values),
          bias?.floats ? child.given('bias', tf.tensor1d(bias.floats)) : null,
          stride,
          [
            [0, 0],
            [top, bottom],
            [left, right],
            [0, 0],
          ],
          depthwise,
        );
        const outH = Math.floor((h + top + bottom - kh) / stride) + 1;
        const outW = Math.floor((w + left + right - kw) / stride) + 1;
        add(op, [outH, outW, outC], outH * outW * kh * kw * inPerGroup * outC);
        return;
      }
      case 'BatchNormalization': {
        const [, , c] = spatial();
        attrs.expect('training_mode', (a) => Number(a.i ?? 0) === 0, 'BatchNormalization in training mode');
        if (node.output.filter(Boolean).length > 1) refuse(node, 'BatchNormalization with statistics outputs');
        const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => this.constant(node.input[i])?.floats);
        if (!gamma || !beta || !mean || !variance) refuse(node, 'BatchNormalization without constant statistics');
        const layer = new BatchNorm(child, c, {
          gamma: tf.tensor1d(gamma),
          beta: tf.tensor1d(beta),
          mean: tf.tensor1d(mean),
          variance: tf.tensor1d(variance),
          epsilon: attrs.float('epsilon', 1e-5),
          // ONNX's momentum weighs the running statistics; PyTorch's (and the engine's) the batch's.
          momentum: 1 - attrs.float('momentum', 0.9),
        });
        add(new LayerOp(layer), x);
        return;
      }
      case 'Relu':
        add(new LayerOp(new Relu()), x);
        return;
      case 'Clip': {
        const bound = (attribute: string, input: number, fallback: number) => {
          if (this.opset < 11) return attrs.float(attribute, fallback);
          if (!node.input[input]) return fallback;
          const c = this.constant(node.input[input]);
          if (!c?.floats || c.floats.length !== 1) refuse(node, 'Clip with a non-constant bound');
          return c.floats[0]!;
        };
        add(new ClipOp(bound('min', 1, -Infinity), bound('max', 2, Infinity)), x);
        return;
      }
      case 'HardSigmoid':
        add(new HardSigmoidOp(attrs.float('alpha', 0.2), attrs.float('beta', 0.5)), x);
        return;
      case 'HardSwish':
        add(new HardSwishOp(), x);
        return;
      case 'Sigmoid':
        add(new SigmoidOp(), x);
        return;
      case 'Add':
      case 'Mul': {
        const op = new BinaryOp(node.op_type === 'Add' ? 'add' : 'mul');
        const second = value(1);
        if (second) {
          const shape = this.broadcast(node, x, shapeOf(1));
          add(op, shape, 0, [inputs[0]!, second]);
          return;
        }
        const c = this.constant(node.input[1]);
        if (!c?.floats) refuse(node, `${node.op_type} with a non-float constant`);
        add(new ConstantOperandOp(op, child.fixed('constant', this.engineConstant(node, c, x.length))), x);
        return;
      }
      case 'Concat': {
        const reads = inputs.filter((i) => this.shapes.has(i));
        if (reads.length !== inputs.length) refuse(node, 'Concat of a value with a constant');
        const rank = x.length + 1;
        const axis = nhwcAxis(attrs.int('axis', 0), rank);
        if (axis === 0) refuse(node, 'Concat along the batch axis');
        const shape = [...x];
        shape[axis - 1] = reads.reduce((sum, r) => sum + this.shapes.get(r)![axis - 1]!, 0);
        add(new ConcatOp(axis), shape, 0, reads);
        return;
      }
      case 'MaxPool':
      case 'AveragePool': {
        const [h, w, c] = spatial();
        if (node.output.filter(Boolean).length > 1) refuse(node, 'MaxPool with an indices output');
        const kernel = attrs.ints('kernel_shape') ?? [];
        const strides = attrs.ints('strides') ?? [1, 1];
        attrs.expect('dilations', (a) => (a.ints ?? []).every((d) => Number(d) === 1), 'dilated pooling');
        if (kernel.length !== 2 || strides[0] !== strides[1]) refuse(node, `${node.op_type} of this window`);
        const stride = strides[0]!;
        const pads = this.pads(node, attrs, kernel as [number, number], stride, [h, w]);
        if (new Set(pads).size !== 1) refuse(node, `${node.op_type} with unequal pads ${pads.join(',')}`);
        const pad = pads[0]!;
        if (node.op_type === 'AveragePool' && pad > 0 && attrs.int('count_include_pad', 0) !== 0)
          refuse(node, 'AveragePool counting its padding');
        const outH = Math.floor((h + 2 * pad - kernel[0]!) / stride) + 1;
        const outW = Math.floor((w + 2 * pad - kernel[1]!) / stride) + 1;
        if (attrs.int('ceil_mode', 0) !== 0) {
          const ceilH = Math.ceil((h + 2 * pad - kernel[0]!) / stride) + 1;
          const ceilW = Math.ceil((w + 2 * pad - kernel[1]!) / stride) + 1;
          if (ceilH !== outH || ceilW !== outW) refuse(node, `${node.op_type} with ceil_mode at this input size`);
        }
        const op = new PoolOp(node.op_type === 'MaxPool' ? 'max' : 'avg', kernel as [number, number], stride, pad);
        add(op, [outH, outW, c], node.op_type === 'AveragePool' ? outH * outW * c * kernel[0]! * kernel[1]! : 0);
        return;
      }
      case 'Pad': {
        const [h, w, c] = spatial();
        const mode = attrs.string('mode') ?? 'constant';
        const pads = this.opset < 11 ? attrs.ints('pads') : this.constant(node.input[1])?.ints;
        const fill = this.opset < 11 ? attrs.float('value', 0) : (this.constant(node.input[2])?.floats?.[0] ?? 0);
        if (mode !== 'constant' || fill !== 0 || !pads || pads.length !== 8)
          refuse(node, `Pad (${mode}, value ${fill})`);
        // [n, c, h, w] begins then ends.
        if (pads[0] || pads[1] || pads[4] || pads[5]) refuse(node, 'Pad of the batch or channel axis');
        if (pads.some((p) => p < 0)) refuse(node, 'Pad with negative amounts (a crop)');
        const [t, l, b, r] = [pads[2]!, pads[3]!, pads[6]!, pads[7]!];
        if (t + l + b + r === 0) {
          this.aliases.set(output, inputs[0]!);
          return;
        }
        add(
          new PadOp([
            [t, b],
            [l, r],
          ]),
          [h + t + b, w + l + r, c],
        );
        return;
      }
      case 'GlobalAveragePool': {
        const [h, w, c] = spatial();
        add(new SpatialMeanOp(), [1, 1, c], h * w * c);
        return;
      }
      case 'ReduceMean': {
        const [h, w, c] = spatial();
        const axes = (this.opset >= 18 ? this.constant(node.input[1])?.ints : attrs.ints('axes')) ?? [];
        const spatialAxes = axes.map((a) => nhwcAxis(a, 4)).sort();
        if (spatialAxes.join() !== '1,2')
          refuse(node, `ReduceMean over axes ${axes.join(',')} (only height and width)`);
        if (attrs.int('keepdims', 1) === 1) add(new SpatialMeanOp(), [1, 1, c], h * w * c);
        else add(new ChainOp([new SpatialMeanOp(), new FlattenOp()]), [c], h * w * c);
        return;
      }
      case 'Flatten':
      case 'Reshape': {
        const size = x.reduce((a, b) => a * b, 1);
        if (node.op_type === 'Flatten') {
          if (attrs.int('axis', 1) !== 1) refuse(node, 'Flatten at an axis other than 1');
        } else {
          const target = this.constant(node.input[1])?.ints;
          const flattens =
            target?.length === 2 && (target[1] === size || target[1] === -1) && (target[0] === -1 || target[0] === 0);
          if (!flattens)
            refuse(node, `Reshape to ${target ? `[${target.join(', ')}]` : 'a computed shape'} (only a flatten)`);
        }
        add(new FlattenOp(), [size]);
        return;
      }
      case 'Gemm': {
        if (x.length !== 1) refuse(node, 'Gemm on a value that is not flat');
        const b = this.constant(node.input[1]);
        const bias = this.constant(node.input[2]);
        if (!b?.floats || b.dims.length !== 2) refuse(node, 'Gemm with a non-constant weight');
        if (attrs.int('transA', 0) !== 0) refuse(node, 'Gemm with transA');
        const alpha = attrs.float('alpha', 1);
        const beta = attrs.float('beta', 1);
        const transB = attrs.int('transB', 0) === 1;
        const [inF, outF] = transB ? [b.dims[1]!, b.dims[0]!] : [b.dims[0]!, b.dims[1]!];
        if (inF !== x[0]) refuse(node, `Gemm expecting ${inF} features on ${x[0]}`);
        if (bias?.floats && bias.floats.length !== outF) refuse(node, 'Gemm with a broadcast bias');
        const dense = new Dense(child, inF, outF);
        tf.tidy(() => {
          const w = tf.tensor2d(b.floats!, b.dims as [number, number]);
          dense.weight.variable.assign(tf.mul(transB ? tf.transpose(w) : w, alpha));
          if (bias?.floats) dense.bias.variable.assign(tf.mul(tf.tensor1d(bias.floats), beta));
        });
        add(new LayerOp(dense), [outF], inF * outF);
        return;
      }
      default:
        refuse(node, `operator ${node.op_type}`);
    }
  }

  /** [top, left, bottom, right] from pads or auto_pad. */
  private pads(
    node: OnnxNode,
    attrs: Attributes,
    [kh, kw]: [number, number],
    stride: number,
    [h, w]: [number, number],
  ): [number, number, number, number] {
    const autoPad = attrs.string('auto_pad') ?? 'NOTSET';
    if (autoPad === 'NOTSET') {
      const pads = attrs.ints('pads') ?? [0, 0, 0, 0];
      if (pads.length !== 4) refuse(node, `${node.op_type} with pads ${pads.join(',')}`);
      return pads as [number, number, number, number];
    }
    if (autoPad === 'VALID') return [0, 0, 0, 0];
    // SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning.
    const split = (size: number, k: number): [number, number] => {
      const total = Math.max(0, (Math.ceil(size / stride) - 1) * stride + k - size);
      const small = Math.floor(total / 2);
      return autoPad === 'SAME_LOWER' ? [total - small, small] : [small, total - small];
    };
    const [top, bottom] = split(h, kh);
    const [left, right] = split(w, kw);
    return [top, left, bottom, right];
  }

  private broadcast(node: OnnxNode, a: number[], b: number[]): number[] {
    if (a.length !== b.length) refuse(node, `${node.op_type} of values of ranks ${a.length + 1} and ${b.length + 1}`);
    return a.map((size, i) => {
      const other = b[i]!;
      if (size !== other && size !== 1 && other !== 1)
        refuse(node, `${node.op_type} of shapes [${onnxShape(a).join(',')}] and [${onnxShape(b).join(',')}]`);
      return Math.max(size, other);
    });
  }

  /** A float constant operand in the engine's layout (a scalar, a per-channel [C,1,1] vector, or a full value). */
  private engineConstant(node: OnnxNode, c: Constant, rank: number): tf.Tensor {
    const dims = c.dims;
    if (dims.reduce((a, b) => a * b, 1) === 1) return tf.scalar(c.floats![0]!);
    if (rank === 3) {
      // Up to [1, C, H, W] in ONNX: transpose the trailing three axes to [H, W, C].
      const full = [...Array(4 - Math.min(4, dims.length)).fill(1), ...dims] as number[];
      if (full.length !== 4 || full[0] !== 1)
        refuse(node, `${node.op_type} with a constant of shape [${dims.join(',')}]`);
      return tf.tidy(() =>
        tf.transpose(tf.tensor4d(c.floats!, full as [number, number, number, number]), [0, 2, 3, 1]),
      );
    }
    return tf.tensor(c.floats!, dims);
  }

  private foldConstant(node: OnnxNode, attrs: Attributes, inputs: string[]): void {
    const output = node.output[0]!;
    const ints = (i: number) => {
      const c = this.constants.get(inputs[i]!);
      if (!c?.ints) refuse(node, `${node.op_type} of float constants`);
      return c;
    };
    switch (node.op_type) {
      case 'Gather': {
        const data = ints(0);
        const index = ints(1);
        if (data.dims.length !== 1 || attrs.int('axis', 0) !== 0) refuse(node, 'Gather of a shape other than a list');
        const picked = index.ints!.map((i) => data.ints![i < 0 ? i + data.ints!.length : i]!);
        this.constants.set(output, { dims: index.dims, ints: picked });
        return;
      }
      case 'Unsqueeze': {
        const data = ints(0);
        // Only the element count matters to the shapes these lists become.
        this.constants.set(output, { dims: [...data.dims, 1], ints: data.ints! });
        return;
      }
      case 'Concat': {
        const parts = inputs.map((_, i) => ints(i).ints!);
        const all = parts.flat();
        this.constants.set(output, { dims: [all.length], ints: all });
        return;
      }
      case 'Cast': {
        this.constants.set(output, this.constants.get(inputs[0]!)!);
        return;
      }
      default:
        refuse(node, `operator ${node.op_type} on constants only`);
    }
  }
}
