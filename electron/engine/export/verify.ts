/**
 * The check every export passes before anything is written: the exported model reproduces the
 * trained network's logits on a few random images.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ExportError } from '../errors.js';
import type { ExportGraph } from '../models/inferenceGraph.js';
import type { MwNetwork } from '../models/index.js';
import type { ModelCard } from './modelCard.js';

/** The verification input: a few random images, the same every export. */
const PROBE_IMAGES = 4;
const PROBE_SEED = 7;
/** Largest logit difference allowed, relative to the largest logit (at least 1): float rounding, not a bug. */
const VERIFY_TOLERANCE = 1e-3;
/**
 * Runs the trained network and the exported model (`run`: logits per exported exit) on the same
 * random images and returns their largest difference; fails when it is more than rounding.
 */
export async function verify(
  net: MwNetwork,
  graph: ExportGraph,
  run: (images: tf.Tensor4D) => Promise<Float32Array[]>,
): Promise<ModelCard['verification']> {
  const images = tf.randomNormal([PROBE_IMAGES, ...graph.input.shape], 0, 1, 'float32', PROBE_SEED) as tf.Tensor4D;
  try {
    const all = tf.tidy(() => net.predict(images, { upToExit: graph.outputs.at(-1)!.exit.index }));
    const expected = await Promise.all(graph.outputs.map((o) => all[o.exit.index]!.data()));
    tf.dispose(all);
    const actual = await run(images);
    let maxAbsDiff = 0;
    let scale = 1;
    expected.forEach((values, k) =>
      values.forEach((v, i) => {
        scale = Math.max(scale, Math.abs(v));
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - actual[k]![i]!));
      }),
    );
    if (!(maxAbsDiff <= VERIFY_TOLERANCE * scale)) {
      throw new ExportError(
        `the exported model does not reproduce the trained network (logits differ by up to ${maxAbsDiff}); nothing was written`,
      );
    }
    return { images: PROBE_IMAGES, maxAbsDiff };
  } finally {
    images.dispose();
  }
}
