/** Shapes of the step graph's values: stacked batches, and convolutions' geometry. */
import { backend_util } from '@tensorflow/tfjs-core';
import type { ExplicitPad } from '../../backend/convGradientOps.js';
import type { ConvGeometry } from '../../backend/ortConvolutions/index.js';
import { symmetricPad } from '../../models/layers.js';

/** A forward shape with its batch axis holding `stack` batches (the stacked gradients of several exits, step.ts). */
export function stackedShape([n, ...rest]: readonly number[], stack: number): number[] {
  return [stack * n!, ...rest];
}

/** tfjs's geometry of the convolution, as the wasm-ort kernels compute it (padded as the engine's layers unless `pad` says). */
export function convGeometry(
  x: number[],
  filter: number[],
  stride: number,
  depthwise: boolean,
  pad: ExplicitPad | number = symmetricPad(filter[0]!),
): ConvGeometry {
  const info = backend_util.computeConv2DInfo(
    x as [number, number, number, number],
    filter as [number, number, number, number],
    stride,
    1,
    pad,
    undefined,
    depthwise,
    'channelsLast',
  );
  const { top, left, bottom, right } = info.padInfo;
  return { info, pads: [top, left, bottom, right] };
}
