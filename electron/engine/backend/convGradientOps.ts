/**
 * Convolution gradients by kernel name. tfjs-core does not export these ops publicly; calling
 * the kernels directly lets each backend use its own (native on tfjs-node, the fast ones
 * registered by electron/engine/backend on wasm/cpu).
 */
import * as tf from '@tensorflow/tfjs-core';

export type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];
type Shape4 = [number, number, number, number];

function run(kernel: string, inputs: tf.NamedTensorMap, attrs: object): tf.Tensor4D {
  return tf.engine().runKernel(kernel, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

export function conv2dFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: Shape4,
  stride: number,
  pad: ExplicitPad,
): tf.Tensor4D {
  return run(
    'Conv2DBackpropFilter',
    { x, dy },
    { strides: [stride, stride], pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape },
  );
}

export function conv2dInputGrad(
  inputShape: Shape4,
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  stride: number,
  pad: ExplicitPad,
): tf.Tensor4D {
  return run(
    'Conv2DBackpropInput',
    { dy, filter },
    { strides: [stride, stride], pad, dataFormat: 'NHWC', dimRoundingMode: undefined, inputShape },
  );
}

export function depthwiseFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: Shape4,
  stride: number,
  pad: ExplicitPad,
): tf.Tensor4D {
  return run(
    'DepthwiseConv2dNativeBackpropFilter',
    { x, dy },
    { strides: [stride, stride], dilations: [1, 1], pad, dimRoundingMode: undefined, filterShape },
  );
}

export function depthwiseInputGrad(
  inputShape: Shape4,
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  stride: number,
  pad: ExplicitPad,
): tf.Tensor4D {
  return run(
    'DepthwiseConv2dNativeBackpropInput',
    { dy, filter },
    { strides: [stride, stride], dilations: [1, 1], pad, dimRoundingMode: undefined, inputShape },
  );
}
