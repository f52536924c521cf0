/**
 * The compiled step's input gradients of convolutions in MLAS's NCHWc kernels (backend/
 * ortConvolutions/graphs.ts: dy spread to the stride's grid, then a stride-1 convolution with the
 * flipped filter), against tfjs's own Conv2DBackpropInput and DepthwiseConv2dNativeBackpropInput
 * on the plain JavaScript backend: strides 1 and 2, odd and even sizes, 1x1, 3x3 and 5x5 filters,
 * symmetric and one-sided padding (a stride that skips the image's last rows).
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../electron/engine/backend/index.js';
import {
  conv2dInputGrad,
  depthwiseInputGrad,
  type ExplicitPad,
} from '../../electron/engine/backend/convGradientOps.js';
import {
  emitConvInputGradient,
  emitDepthwiseInputGradient,
  GraphBuilder,
  OnnxProgram,
  onnxConvolutionSupport,
} from '../../electron/engine/backend/ortConvolutions/index.js';
import { randomTensor } from './helpers.js';

/** This machine's NCHWc block (16 with AVX-512, 8 with AVX2); without one the NCHW path runs. */
let support: ReturnType<typeof onnxConvolutionSupport>;

beforeAll(async () => {
  await initBackend('cpu');
  support = onnxConvolutionSupport();
});

const CASES: [number, number, number, number, [number, number]][] = [
  // size, channels, kernel, stride, padding (top/left, bottom/right)
  [8, 16, 3, 2, [0, 1]],
  [9, 32, 3, 2, [1, 1]],
  [7, 16, 5, 2, [2, 2]],
  [9, 16, 3, 2, [0, 0]],
  [8, 16, 3, 1, [1, 1]],
  [6, 16, 1, 2, [0, 0]],
  [7, 16, 3, 2, [0, 2]],
];

describe('input gradients in NCHWc blocks equal tfjs kernels', () => {
  it.each(CASES.flatMap((c) => [[true, ...c] as const, [false, ...c] as const]))(
    'depthwise %s: %i-pixel square images, %i channels, a %i-wide filter, stride %i, pads %j',
    (depthwise, size, channels, kernel, stride, [before, after]) => {
      const xShape: [number, number, number, number] = [2, size, size, channels];
      const pad: ExplicitPad = [
        [0, 0],
        [before, after],
        [before, after],
        [0, 0],
      ];
      // A regular convolution doubles the channels, so that I and O differ.
      const filterShape: [number, number, number, number] = [kernel, kernel, channels, depthwise ? 1 : 2 * channels];
      const info = backend_util.computeConv2DInfo(
        xShape,
        filterShape,
        stride,
        1,
        pad,
        undefined,
        depthwise,
        'channelsLast',
      );
      const filter = randomTensor(filterShape, 1) as tf.Tensor4D;
      const dy = randomTensor(info.outShape, 2) as tf.Tensor4D;
      const expected = (depthwise ? depthwiseInputGrad : conv2dInputGrad)(xShape, dy, filter, stride, pad);

      const g = new GraphBuilder();
      const geometry = { info, pads: [before, before, after, after] };
      const dx = (depthwise ? emitDepthwiseInputGradient : emitConvInputGradient)(
        g,
        geometry,
        support.block,
        'dy',
        'filter',
      );
      const program = new OnnxProgram(
        {
          g,
          inputs: [
            ['dy', info.outShape],
            ['filter', filterShape],
          ],
          outputs: [[dx, xShape]],
        },
        support.threads,
      );
      const actual = new Float32Array(expected.size);
      program.run([dy.dataSync() as Float32Array, filter.dataSync() as Float32Array], [actual]);
      program.dispose();
      const reference = expected.dataSync();
      const worst = actual.reduce((m, v, i) => Math.max(m, Math.abs(v - reference[i]!)), 0);
      expect(worst).toBeLessThan(1e-4);
      tf.dispose([filter, dy, expected]);
    },
  );
});
