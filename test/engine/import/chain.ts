/** Hand-built ONNX backbones for operators and patterns the torchvision models do not use. */
import {
  encodeOnnxModel,
  floatTensor,
  tensorInfo,
  type OnnxNode,
  type OnnxTensor,
} from '../../../electron/engine/onnx/proto.js';
import { randomTensor } from '../helpers.js';

/** A one-input graph of ONNX nodes (opset 14) on [N, 3, size, size] images, its last value the backbone's features. */
export function chainModel(size: number, nodes: OnnxNode[], initializers: OnnxTensor[]): Uint8Array {
  return encodeOnnxModel({
    ir_version: 8,
    opset_import: [{ domain: '', version: 14 }],
    producer_name: 'test',
    graph: {
      name: 'chain',
      node: nodes,
      initializer: initializers,
      input: [tensorInfo('image', ['N', 3, size, size])],
      output: [tensorInfo(nodes.at(-1)!.output[0]!, ['N'])],
    },
  });
}

/** A random float initializer. */
export const weights = (name: string, dims: number[], seed: number, scale = 0.5): OnnxTensor =>
  floatTensor(name, dims, Float32Array.from(randomTensor(dims, seed, scale).dataSync()));
