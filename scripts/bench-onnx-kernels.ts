/**
 * Times the three convolution kernels on every convolution shape of MwResNet-20 (28x28x1 input),
 * on the wasm-ort path (onnxruntime graphs, backend/ortConvolutions/) against plain wasm:
 *
 *   npx tsx scripts/bench-onnx-kernels.ts [batch=128]
 *
 * GFLOP/s counts 2 * multiply-adds of the forward convolution, which is also each gradient's work.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../electron/engine/backend/index.js';
import { conv2dFilterGrad, conv2dInputGrad, type ExplicitPad } from '../electron/engine/backend/convGradientOps.js';

type Shape4 = [number, number, number, number];
const N = Number(process.argv[2] ?? 128);
/** [input, output channels, kernel, stride]: stem, stage 1, stage 2 entry (+ shortcut), stage 2, stage 3 entry (+ shortcut), stage 3. */
const SHAPES: [Shape4, number, number, number][] = [
  [[N, 28, 28, 1], 16, 3, 1],
  [[N, 28, 28, 16], 16, 3, 1],
  [[N, 28, 28, 16], 32, 3, 2],
  [[N, 28, 28, 16], 32, 1, 2],
  [[N, 14, 14, 32], 32, 3, 1],
  [[N, 14, 14, 32], 64, 3, 2],
  [[N, 14, 14, 32], 64, 1, 2],
  [[N, 7, 7, 64], 64, 3, 1],
];

/** Best of a few timed runs, in ms, after one untimed. */
function bestMs(run: () => tf.Tensor): number {
  run().dispose();
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    const out = run();
    out.dataSync();
    best = Math.min(best, performance.now() - start);
    out.dispose();
  }
  return best;
}

for (const backend of ['wasm-ort', 'wasm'] as const) {
  const info = await initBackend(backend);
  console.log(`\n${info.label}, batch ${N}: ms (GFLOP/s)`);
  for (const [xShape, outChannels, kernel, stride] of SHAPES) {
    const p = (kernel - 1) / 2;
    const pad: ExplicitPad = [
      [0, 0],
      [p, p],
      [p, p],
      [0, 0],
    ];
    const x = tf.randomNormal(xShape) as tf.Tensor4D;
    const filter = tf.randomNormal([kernel, kernel, xShape[3], outChannels]) as tf.Tensor4D;
    const dy = tf.conv2d(x, filter, stride, pad);
    const flops = 2 * dy.size * kernel * kernel * xShape[3];
    const cell = (ms: number) => `${ms.toFixed(2).padStart(6)} (${(flops / ms / 1e6).toFixed(0).padStart(3)})`;
    const forward = bestMs(() => tf.conv2d(x, filter, stride, pad));
    const input = bestMs(() => conv2dInputGrad(xShape, dy, filter, stride, pad));
    const weights = bestMs(() => conv2dFilterGrad(x, dy, filter.shape, stride, pad));
    const name = `${xShape.slice(1).join('x')} -> ${outChannels}, ${kernel}x${kernel} s${stride}`;
    console.log(`${name.padEnd(26)} forward ${cell(forward)}  input grad ${cell(input)}  filter grad ${cell(weights)}`);
    tf.dispose([x, filter, dy]);
  }
}
