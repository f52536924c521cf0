/**
 * Every operation of an imported graph (models/import/ops.ts) on small inputs: the cases
 * importOps.test.ts checks against autodiff and ortImportedOps.test.ts against the step graph's
 * nodes. Inputs avoid the kinks of the piecewise operations.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { ExplicitPad } from '../../../electron/engine/backend/convGradientOps.js';
import { ParamFactory } from '../../../electron/engine/models/layers.js';
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
  PadOp,
  PoolOp,
  SigmoidOp,
  SpatialMeanOp,
  type GraphOp,
} from '../../../electron/engine/models/import/ops.js';
import { Random } from '../../../electron/engine/random.js';
import { randomTensor } from '../helpers.js';

const make = new ParamFactory(new Random(1));

/** Values in [-4, 4] kept 0.05 away from the kinks at -3, 0, 3 and 6 (clip, hard sigmoid, hard swish). */
export function awayFromKinks(shape: number[], seed: number): tf.Tensor {
  return tf.tidy(() => {
    const x = tf.mul(randomTensor(shape, seed), 4);
    const nearest = tf.round(tf.div(x, 3));
    const gap = tf.sub(x, tf.mul(nearest, 3));
    return tf.add(x, tf.mul(tf.sign(gap), tf.relu(tf.sub(0.05, tf.abs(gap)))));
  });
}

const ASYMMETRIC: ExplicitPad = [
  [0, 0],
  [1, 0],
  [0, 1],
  [0, 0],
];

const conv = (depthwise: boolean, bias: boolean, stride: number, kernel = 3, pad = ASYMMETRIC) => {
  const child = make.child(`conv${depthwise}${bias}${stride}${kernel}`);
  const weight = child.given('weight', randomTensor([kernel, kernel, 4, depthwise ? 1 : 6], 3, 0.5));
  const b = bias ? child.given('bias', randomTensor([depthwise ? 4 : 6], 4)) : null;
  return new ConvOp(weight, b, stride, pad, depthwise);
};

export const IMPORTED_OP_CASES: [string, () => GraphOp, number[][]][] = [
  ['conv with bias, stride 2, asymmetric pads', () => conv(false, true, 2), [[2, 7, 7, 4]]],
  ['depthwise conv without bias', () => conv(true, false, 1), [[2, 6, 6, 4]]],
  [
    'depthwise 5x5 conv with bias, stride 2',
    () =>
      conv(true, true, 2, 5, [
        [0, 0],
        [2, 2],
        [2, 2],
        [0, 0],
      ]),
    [[2, 9, 9, 4]],
  ],
  ['clip (ReLU6)', () => new ClipOp(0, 6), [[2, 4, 4, 3]]],
  ['hard sigmoid', () => new HardSigmoidOp(1 / 6, 0.5), [[2, 4, 4, 3]]],
  ['hard swish', () => new HardSwishOp(), [[2, 4, 4, 3]]],
  ['sigmoid', () => new SigmoidOp(), [[2, 4, 4, 3]]],
  [
    'sum with broadcasting',
    () => new BinaryOp('add'),
    [
      [2, 4, 4, 3],
      [2, 1, 1, 3],
    ],
  ],
  [
    'product with broadcasting (squeeze-and-excitation)',
    () => new BinaryOp('mul'),
    [
      [2, 4, 4, 3],
      [2, 1, 1, 3],
    ],
  ],
  [
    'product with a constant',
    () => new ConstantOperandOp(new BinaryOp('mul'), make.fixed('scale', randomTensor([1, 1, 3], 8))),
    [[2, 4, 4, 3]],
  ],
  [
    'concat of channels',
    () => new ConcatOp(3),
    [
      [2, 3, 3, 2],
      [2, 3, 3, 5],
      [2, 3, 3, 1],
    ],
  ],
  ['max pool 3x3 stride 2 pad 1', () => new PoolOp('max', [3, 3], 2, 1), [[2, 8, 8, 3]]],
  ['average pool 2x2 stride 2', () => new PoolOp('avg', [2, 2], 2, 0), [[2, 8, 8, 3]]],
  [
    'zero pad',
    () =>
      new PadOp([
        [1, 2],
        [0, 1],
      ]),
    [[2, 3, 3, 2]],
  ],
  ['spatial mean', () => new SpatialMeanOp(), [[2, 5, 3, 4]]],
  ['flatten in NCHW order', () => new FlattenOp(), [[2, 3, 2, 4]]],
  [
    'mean then flatten (ReduceMean without keepdims)',
    () => new ChainOp([new SpatialMeanOp(), new FlattenOp()]),
    [[2, 3, 3, 4]],
  ],
];

/**
 * Pooling geometries beyond the common ones: strided and padded, a stride wider than the window
 * (pixels no window reads), an input reaching past the last window, an oblong window. Checked
 * against PyTorch (importOps.test.ts; tfjs's own pooling gradients differ) and the step graph.
 */
export const POOL_CASES: [string, () => PoolOp, number[]][] = [
  ['max 3x3 stride 2 pad 1', () => new PoolOp('max', [3, 3], 2, 1), [2, 7, 7, 3]],
  ['max 3x3 stride 1 pad 1', () => new PoolOp('max', [3, 3], 1, 1), [2, 7, 7, 3]],
  ['max 2x2 stride 3', () => new PoolOp('max', [2, 2], 3, 0), [2, 8, 8, 3]],
  ['max 2x2 stride 2 on an odd size', () => new PoolOp('max', [2, 2], 2, 0), [2, 9, 9, 3]],
  ['average 3x3 stride 1 pad 1', () => new PoolOp('avg', [3, 3], 1, 1), [2, 7, 7, 3]],
  ['average 3x3 stride 2 pad 1', () => new PoolOp('avg', [3, 3], 2, 1), [2, 7, 7, 3]],
  ['average 3x2 stride 2 pad 1', () => new PoolOp('avg', [3, 2], 2, 1), [2, 7, 8, 3]],
  ['max 2x3 stride 2 pad 1', () => new PoolOp('max', [2, 3], 2, 1), [2, 8, 7, 3]],
];
