/**
 * Element-wise steps of batch norm and ReLU as single ops: the fused kernels of the wasm backend
 * (backend/wasm/channelKernels.ts) or their WGSL counterparts on webgpu (backend/webgpu/
 * channelKernels.ts) where they are registered and the tensor fits them, else the same
 * arithmetic composed from tfjs ops (every other backend; tests compare the two).
 * Tensors are channels-last; per-channel vectors have the last axis' length.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FUSED_KERNELS } from './wasm/channelKernels.js';

/** Values per row when a large NHWC tensor meets a per-channel vector (see perChannel). */
const CHANNEL_ROW_TARGET = 1024;
/**
 * From this many elements on, per-channel work takes the wide-row path. Below it, tfjs-wasm's own
 * broadcasting (and its fused batch-norm kernel) are as fast or faster: at [4,28,28,16] a
 * multiply-add took 229 us broadcast, 206 us on wide rows, 181 us as tf.batchNorm; at [1,7,7,64]
 * 27, 180 and 37 us (tf.tile's fixed cost dominates).
 */
export const WIDE_ROWS_FROM = 65536;

/**
 * op(x, v) for a channels-last tensor x and a per-channel vector v. Why not plain broadcasting:
 * tfjs-wasm broadcasts one row at a time, and with rows of 16 channels a multiply of
 * [128,28,28,16] took 1.48 ms; viewed as rows of about 1024 values, with v tiled to match, it
 * takes 0.24 ms, as fast as a same-shape multiply. The reshapes are free and the tiled vector is
 * small, so every backend takes this path for large tensors.
 */
export function perChannel(op: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, x: tf.Tensor, v: tf.Tensor): tf.Tensor {
  const channels = v.size;
  const pixels = x.size / channels;
  let k = x.size < WIDE_ROWS_FROM ? 1 : Math.min(pixels, Math.max(1, Math.floor(CHANNEL_ROW_TARGET / channels)));
  while (pixels % k !== 0) k--;
  if (k === 1) return op(x, v);
  return tf.reshape(op(tf.reshape(x, [pixels / k, k * channels]), tf.tile(v, [k])), x.shape);
}

/** The fused loops take channels four at a time (per-channel) or values four at a time. */
function fused(kernel: string, x: tf.Tensor, perChannelVectors: boolean): boolean {
  if (x.dtype !== 'float32' || tf.getKernel(kernel, tf.getBackend()) === undefined) return false;
  return perChannelVectors ? x.shape[x.rank - 1]! % 4 === 0 : x.size % 4 === 0;
}

/** x * a + b, with a and b per channel. */
export function channelAffine(x: tf.Tensor, a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (fused(FUSED_KERNELS.channelAffine, x, true))
    return tf.engine().runKernel(FUSED_KERNELS.channelAffine, { x, a, b }) as tf.Tensor;
  return tf.tidy(() => perChannel(tf.add, perChannel(tf.mul, x, a), b));
}

/** x * a + y * b + c, with a, b and c per channel (x and y of one shape). */
export function channelAffine2(x: tf.Tensor, a: tf.Tensor, y: tf.Tensor, b: tf.Tensor, c: tf.Tensor): tf.Tensor {
  if (fused(FUSED_KERNELS.channelAffine2, x, true))
    return tf.engine().runKernel(FUSED_KERNELS.channelAffine2, { x, a, y, b, c }) as tf.Tensor;
  return tf.tidy(() => tf.add(perChannel(tf.mul, x, a), perChannel(tf.add, perChannel(tf.mul, y, b), c)));
}

/** Sum of x per channel (over every axis but the last). */
export function channelSum(x: tf.Tensor): tf.Tensor1D {
  if (!fused(FUSED_KERNELS.channelSums, x, true))
    return tf.sum(
      x,
      x.shape.slice(0, -1).map((_, i) => i),
    );
  // The fused kernel also sums x * x: in registers, on the same single read of x.
  const [sum, squares] = channelSums(x, x);
  squares.dispose();
  return sum;
}

/** [sum of x, sum of x * y] per channel (over every axis but the last; x and y of one shape). */
export function channelSums(x: tf.Tensor, y: tf.Tensor): [tf.Tensor1D, tf.Tensor1D] {
  if (fused(FUSED_KERNELS.channelSums, x, true))
    return tf.engine().runKernel(FUSED_KERNELS.channelSums, { x, y }) as unknown as [tf.Tensor1D, tf.Tensor1D];
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  return tf.tidy(() => [tf.sum(x, axes), tf.sum(tf.mul(x, y), axes)]);
}

/** ReLU's input gradient from its output y: dy where y > 0, else 0. */
export function reluGrad(dy: tf.Tensor, y: tf.Tensor): tf.Tensor {
  if (fused(FUSED_KERNELS.reluGrad, dy, false))
    return tf.engine().runKernel(FUSED_KERNELS.reluGrad, { dy, y }) as tf.Tensor;
  return tf.tidy(() => tf.mul(dy, tf.step(y)));
}
