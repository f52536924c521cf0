/**
 * Static post-training int8 quantization of a float ONNX graph in QDQ form, the form
 * onnxruntime's graph optimiser turns into integer kernels (QLinearConv, QGemm, QLinearAdd...):
 * - weights of Conv and Gemm: int8, symmetric, one scale per output channel, behind a
 *   DequantizeLinear; biases int32 with scale = input scale * weight scale (zero point 0);
 * - activations: int8, asymmetric, one scale and zero point per tensor, from min-max
 *   calibration (the range of each value over the calibration images, widened to hold 0), as a
 *   QuantizeLinear -> DequantizeLinear pair on every value a node consumes. A Relu that alone
 *   reads a value is folded into that value's quantization: the value gets the Relu output's
 *   range, which starts at 0, so QuantizeLinear clamps negatives to the zero point, exactly what
 *   the Relu did. That leaves Conv -> QuantizeLinear, which onnxruntime fuses into QLinearConv.
 */
import * as ort from 'onnxruntime-node';
import {
  encodeOnnxModel,
  floatTensor,
  floatValueOfAnyShape,
  integerTensor,
  intAttribute,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
} from './proto.js';
import { openOnnxSession, type ImageShape } from './runtime.js';

export interface ValueRange {
  min: number;
  max: number;
}

/** int8: activations use the full [-128, 127]; weights the symmetric [-127, 127]. */
const INT8_MIN = -128;
const INT8_MAX = 127;
const WEIGHT_MAX = 127;

/** The values a QDQ pair goes on: consumed by some node other than a lone Relu. */
function quantizedValues(model: OnnxModel): Set<string> {
  const initializers = new Set(model.graph.initializer.map((t) => t.name));
  const consumers = new Map<string, OnnxNode[]>();
  for (const node of model.graph.node) {
    for (const input of node.input)
      if (!initializers.has(input)) consumers.set(input, [...(consumers.get(input) ?? []), node]);
  }
  const graphInputs = new Set(model.graph.input.map((i) => i.name));
  const values = new Set<string>();
  for (const [value, readers] of consumers) {
    if (graphInputs.has(value)) continue;
    if (readers.length === 1 && readers[0]!.op_type === 'Relu') continue;
    values.add(value);
  }
  return values;
}

/** Relus to fold: the value each alone reads (produced by a node), mapped to the Relu's output. */
function foldedRelus(model: OnnxModel, quantized: ReadonlySet<string>): Map<string, string> {
  const readers = new Map<string, number>();
  for (const node of model.graph.node)
    for (const input of node.input) readers.set(input, (readers.get(input) ?? 0) + 1);
  const produced = new Set(model.graph.node.flatMap((n) => n.output));
  const outputs = new Set(model.graph.output.map((o) => o.name));
  const folded = new Map<string, string>();
  for (const node of model.graph.node) {
    const [input] = node.input;
    const [output] = node.output;
    if (node.op_type !== 'Relu' || input === undefined || output === undefined) continue;
    if (
      readers.get(input) === 1 &&
      produced.has(input) &&
      !outputs.has(input) &&
      quantized.has(output) &&
      !outputs.has(output)
    )
      folded.set(input, output);
  }
  return folded;
}

/** The model with every value that will be quantized also a graph output, to measure its range. */
export function calibrationModel(model: OnnxModel): OnnxModel {
  const outputs = new Set(model.graph.output.map((o) => o.name));
  const extra = [...quantizedValues(model)].filter((v) => !outputs.has(v)).map(floatValueOfAnyShape);
  return { ...model, graph: { ...model.graph, output: [...model.graph.output, ...extra] } };
}

/**
 * Min-max ranges of the values to quantize over the calibration batches (NHWC float32, already
 * preprocessed as the model expects).
 */
export async function calibrateRanges(
  model: OnnxModel,
  batches: Iterable<Float32Array>,
  shape: ImageShape,
): Promise<Map<string, ValueRange>> {
  const session = await openOnnxSession(encodeOnnxModel(calibrationModel(model)), 'the calibration model');
  const wanted = quantizedValues(model);
  const ranges = new Map<string, ValueRange>();
  try {
    for (const images of batches) {
      const batch = images.length / (shape[0] * shape[1] * shape[2]);
      const results = await session.run({
        [session.inputNames[0]!]: new ort.Tensor('float32', images, [batch, ...shape]),
      });
      for (const name of wanted) {
        const data = results[name]!.data as Float32Array;
        const range = ranges.get(name) ?? { min: 0, max: 0 };
        for (let i = 0; i < data.length; i++) {
          const v = data[i]!;
          if (v < range.min) range.min = v;
          else if (v > range.max) range.max = v;
        }
        ranges.set(name, range);
      }
    }
  } finally {
    await session.release();
  }
  if (!ranges.size && wanted.size) throw new Error('int8 calibration needs at least one batch of images');
  return ranges;
}

/** Scale and zero point mapping [min, max] (holding 0) onto [-128, 127]. */
function activationParameters({ min, max }: ValueRange): { scale: number; zeroPoint: number } {
  const low = Math.min(0, min);
  const high = Math.max(0, max);
  const scale = high > low ? (high - low) / (INT8_MAX - INT8_MIN) : 1;
  const zeroPoint = Math.max(INT8_MIN, Math.min(INT8_MAX, Math.round(INT8_MIN - low / scale)));
  return { scale: Math.fround(scale), zeroPoint };
}

function floatsOf(tensor: OnnxTensor): Float32Array {
  const bytes = tensor.raw_data!;
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/**
 * Per-channel symmetric int8 of a weight along `axis` (Conv: 0 of [out, in, k, k]; our Gemm:
 * 1 of [in, out]): scale[c] = max |w[c]| / 127.
 */
function quantizeWeight(
  values: Float32Array,
  dims: number[],
  axis: number,
): { quantized: Int8Array; scales: Float32Array } {
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number) => Math.floor(i / inner) % channels;
  const largest = new Float32Array(channels);
  values.forEach((v, i) => {
    const c = channelOf(i);
    largest[c] = Math.max(largest[c]!, Math.abs(v));
  });
  const scales = largest.map((m) => (m > 0 ? m / WEIGHT_MAX : 1));
  const quantized = Int8Array.from(values, (v, i) =>
    Math.max(-WEIGHT_MAX, Math.min(WEIGHT_MAX, Math.round(v / scales[channelOf(i)]!))),
  );
  return { quantized, scales };
}

/** Which axis of a node's weight holds its output channels. */
const WEIGHT_AXIS: Record<string, (node: OnnxNode) => number> = {
  Conv: () => 0,
  // Gemm's B is [K, N] unless transB: the output channels are its last axis.
  Gemm: (node) => (node.attribute?.find((a) => a.name === 'transB')?.i ? 0 : 1),
};

/**
 * The model in QDQ form with `ranges` (from calibrateRanges) for its activations. The inputs and
 * outputs stay float32, so the quantized model is a drop-in replacement for the float one.
 */
export function quantizeQdq(model: OnnxModel, ranges: ReadonlyMap<string, ValueRange>): OnnxModel {
  const initializers = new Map(model.graph.initializer.map((t) => [t.name, t]));
  const kept: OnnxTensor[] = [];
  const added: OnnxTensor[] = [];
  const nodes: OnnxNode[] = [];
  /** Quantized activations: the QuantizeLinear's output and its parameters' initializers. */
  const activations = new Map<string, { scale: number; quantized: string; scaleName: string; zeroPointName: string }>();
  const quantized = quantizedValues(model);

  const folded = foldedRelus(model, quantized);
  const foldedOutputs = new Set(folded.values());

  const quantizeActivation = (value: string) => {
    const rangeOf = folded.get(value) ?? value;
    if (!quantized.has(rangeOf)) return;
    const range = ranges.get(rangeOf);
    if (!range) throw new Error(`int8 quantization: no calibration range for ${rangeOf}`);
    const { scale, zeroPoint } = activationParameters(range);
    // Suffixes no operator input uses (a batch norm's own inputs end in .scale): names must be unique in the graph.
    const names = {
      scale: `${value}.activation_scale`,
      zeroPoint: `${value}.activation_zero_point`,
      q: `${value}.quantized`,
    };
    added.push(
      floatTensor(names.scale, [], Float32Array.of(scale)),
      integerTensor(names.zeroPoint, [], Int8Array.of(zeroPoint)),
    );
    nodes.push({
      name: names.q,
      op_type: 'QuantizeLinear',
      input: [value, names.scale, names.zeroPoint],
      output: [names.q],
    });
    activations.set(value, { scale, quantized: names.q, scaleName: names.scale, zeroPointName: names.zeroPoint });
  };

  /**
   * The float input `value` of `node`: through a DequantizeLinear of its own when the value is
   * quantized. One per reader, as onnxruntime's QDQ fusion wants (it fuses a DequantizeLinear
   * into the node it feeds only when it feeds that node alone).
   */
  const readAs = (node: OnnxNode, value: string, slot: number): string => {
    const quantizedValue = activations.get(value);
    if (!quantizedValue) return value;
    const dq = `${value}.dequantized.${node.name}.${slot}`;
    nodes.push({
      name: dq,
      op_type: 'DequantizeLinear',
      input: [quantizedValue.quantized, quantizedValue.scaleName, quantizedValue.zeroPointName],
      output: [dq],
    });
    return dq;
  };

  /**
   * Replaces an initializer by its integer form behind a DequantizeLinear of the same name. The
   * zero point is 0: explicit for int8, left out for int32 (which the operator allows only as 0).
   */
  const dequantized = (
    name: string,
    integers: Int8Array | Int32Array,
    dims: number[],
    scales: Float32Array,
    axis: number,
  ) => {
    const names = { q: `${name}.quantized`, scale: `${name}.scale`, zeroPoint: `${name}.zero_point` };
    added.push(integerTensor(names.q, dims, integers), floatTensor(names.scale, [scales.length], scales));
    const inputs = [names.q, names.scale];
    if (integers instanceof Int8Array) {
      added.push(integerTensor(names.zeroPoint, [scales.length], new Int8Array(scales.length)));
      inputs.push(names.zeroPoint);
    }
    nodes.push({
      name: `${name}.dequantize`,
      op_type: 'DequantizeLinear',
      input: inputs,
      output: [name],
      attribute: [intAttribute('axis', axis)],
    });
  };

  const weighted = new Set<string>();
  for (const node of model.graph.node) {
    const axisOf = WEIGHT_AXIS[node.op_type];
    const [input, weightName, biasName] = node.input;
    const weight = weightName === undefined ? undefined : initializers.get(weightName);
    if (axisOf && input !== undefined && weight && activations.has(input)) {
      const axis = axisOf(node);
      const { quantized: q, scales } = quantizeWeight(floatsOf(weight), weight.dims, axis);
      dequantized(weight.name, q, weight.dims, scales, axis);
      weighted.add(weight.name);
      const bias = biasName === undefined ? undefined : initializers.get(biasName);
      if (bias) {
        const inputScale = activations.get(input)!.scale;
        const biasScales = scales.map((s) => inputScale * s);
        const values = floatsOf(bias);
        dequantized(
          bias.name,
          Int32Array.from(values, (v, c) => Math.round(v / biasScales[c]!)),
          bias.dims,
          biasScales,
          0,
        );
        weighted.add(bias.name);
      }
    }
    if (node.op_type === 'Relu' && foldedOutputs.has(node.output[0]!)) {
      // Folded into its input's quantization: readers of its output read that instead.
      activations.set(node.output[0]!, activations.get(node.input[0]!)!);
      continue;
    }
    nodes.push({ ...node, input: node.input.map((name, slot) => readAs(node, name, slot)) });
    for (const output of node.output) quantizeActivation(output);
  }
  for (const tensor of model.graph.initializer) if (!weighted.has(tensor.name)) kept.push(tensor);
  return { ...model, graph: { ...model.graph, node: nodes, initializer: [...kept, ...added] } };
}
