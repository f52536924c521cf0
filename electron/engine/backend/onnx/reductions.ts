/**
 * The wasm backend's Sum over leading axes, computed by onnxruntime's ReduceSum.
 *
 * Why: batch norm needs per-channel sums of NHWC tensors (every axis but the last) twice forward
 * and twice backward. tfjs-wasm reduces innermost axes only, so it first transposes the whole
 * tensor: 3.0 ms for [128,28,28,16], where onnxruntime's ReduceSum reads it once in 0.38 ms.
 * On one thread: waking a second one cost more than it saved (1.75 ms with two).
 *
 * Other sums (innermost or scattered axes, whole tensors, small or integer ones) run the
 * kernel registered before.
 */
import { util, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { intAttribute } from '../../export/onnxProto.js';
import { GraphBuilder, onnxKernel, type ProgramCache } from './program.js';

/** Below this many elements tfjs's own sum is as fast as a call into onnxruntime. */
const MIN_ELEMENTS = 4096;

/** The reduced axes if they are the leading ones ([0 .. k-1], k < rank) of a large float32 tensor. */
function leadingAxes(x: TensorInfo, axis: number | number[]): number[] | undefined {
  if (x.dtype !== 'float32' || x.shape.length < 2 || x.shape.reduce((a, b) => a * b, 1) < MIN_ELEMENTS) return undefined;
  const axes = [...new Set(util.parseAxisParam(axis, x.shape))].sort((a, b) => a - b);
  if (axes.length === 0 || axes.length >= x.shape.length || axes.some((a, i) => a !== i)) return undefined;
  return axes;
}

export function leadingSumKernel(cache: ProgramCache, fallback: KernelFunc): KernelFunc {
  return onnxKernel(({ inputs, attrs }) => {
    const x = (inputs as { x?: TensorInfo }).x;
    const axes = x && leadingAxes(x, attrs?.axis as number | number[]);
    if (x === undefined || axes === undefined) return undefined;
    const keepDims = attrs?.keepDims === true;
    const program = cache.get(`Sum ${x.shape} ${axes.length} ${keepDims}`, () => {
      const g = new GraphBuilder();
      const output = g.op('ReduceSum', ['x', g.int64s(axes)], [intAttribute('keepdims', keepDims ? 1 : 0)]);
      const outShape = keepDims ? x.shape.map((d, i) => (i < axes.length ? 1 : d)) : x.shape.slice(axes.length);
      return { g, inputs: [['x', x.shape]], outputs: [[output, outShape]] };
    });
    return { program, inputs: [x] };
  }, fallback);
}
