/** The check that onnxruntime computes tfjs's convolution, and the search for MLAS's NCHWc block size on this CPU. */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import type { Shape4D } from './geometry.js';
import { forwardGraph } from './graphs.js';
import { OnnxProgram } from './program.js';

function randomArray(size: number, seed: number): Float32Array {
  return Float32Array.from({ length: size }, (_, i) => Math.sin(seed + i * 12.9898) * 0.5);
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** The probe convolution: 16 -> 16 channels, 3x3, 'same', on deterministic values. */
const PROBE = {
  xShape: [2, 5, 5, 16] as Shape4D,
  filterShape: [3, 3, 16, 16] as Shape4D,
  x: randomArray(2 * 5 * 5 * 16, 1),
  filter: randomArray(9 * 16 * 16, 2),
};

/** The probe convolution through onnxruntime, blocked by `block` or plain. */
function probeConvolution(block: number | undefined, threads: number): Float32Array {
  const info = backend_util.computeConv2DInfo(PROBE.xShape, PROBE.filterShape, 1, 1, 'same');
  const program = new OnnxProgram(forwardGraph({ info, pads: [1, 1, 1, 1] }, block), threads);
  try {
    const out = new Float32Array(info.outShape.reduce((a, b) => a * b, 1));
    program.run([PROBE.x, PROBE.filter], [out]);
    return out;
  } finally {
    program.dispose();
  }
}

/**
 * Checks onnxruntime's plain convolution against the active tfjs backend's on the probe (an Error
 * if they disagree), then finds MLAS's NCHWc block size on this CPU by trying: the blocked graph
 * must reproduce the plain one. The block is undefined when no candidate does (or the blocked
 * operators are missing, as on CPUs without AVX2), and then every graph is a plain one.
 */
export function probeOnnxConvolutions(threads: number): { block: number | undefined } {
  const reference = probeConvolution(undefined, threads);
  const expected = tf.tidy(() => {
    const x = tf.tensor4d(PROBE.x, PROBE.xShape);
    const filter = tf.tensor4d(PROBE.filter, PROBE.filterShape);
    return tf.conv2d(x, filter, 1, 'same').dataSync() as Float32Array;
  });
  const difference = maxDifference(reference, expected);
  if (!(difference < 1e-4))
    throw new Error(
      `onnxruntime's convolution disagrees with the ${tf.getBackend()} backend's (max difference ${difference})`,
    );
  for (const block of [16, 8]) {
    try {
      if (maxDifference(probeConvolution(block, threads), reference) < 1e-4) return { block };
    } catch {
      // The blocked operators are not available here.
    }
  }
  return { block: undefined };
}
