/**
 * The feature cache of a frozen backbone (SDN IC-only, Elastic's frozen epochs) trained without
 * augmentation: every training image's head inputs (MwNetwork.headInputs) are computed once,
 * in the first frozen epoch, and read back in later epochs, so those cost only the heads.
 *
 * What is kept per exit is the head's input reduced as far as the head allows: the pooled
 * vector for an Elastic head (pool first), the whole feature map for a head that starts with
 * batch norm (its batch statistics and the ReLU before pooling need every pixel). Feature
 * maps can be large, so the cache is only made when it fits a byte budget; otherwise every
 * epoch recomputes the backbone, and the run says why.
 */
import * as tf from '@tensorflow/tfjs-core';
import { formatBytes } from '../../../shared/format.js';
import type { MwNetwork } from '../models/index.js';

/** The default budget: a cache larger than this is not made. */
export const FEATURE_CACHE_BYTES = 1024 ** 3;

export class FeatureCache {
  private readonly rows: Float32Array[];
  private readonly sizes: number[];
  private readonly filled: Uint8Array;

  private constructor(
    private readonly shapes: number[][],
    count: number,
  ) {
    this.sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
    this.rows = this.sizes.map((size) => new Float32Array(size * count));
    this.filled = new Uint8Array(count);
  }

  /**
   * A cache for `count` training images of `net` when it fits `budgetBytes`, and a one-line
   * note on what is cached (or why nothing is).
   */
  static plan(net: MwNetwork, count: number, budgetBytes: number): { cache?: FeatureCache; note: string } {
    const shapes = net.headInputShapes();
    const bytes = 4 * count * shapes.reduce((sum, s) => sum + s.reduce((a, b) => a * b, 1), 0);
    const pooled = shapes.every((s) => s.length === 1);
    const what = pooled ? "each exit's pooled features" : "each exit's feature map (its head starts with batch norm)";
    if (bytes > budgetBytes) {
      const hint = pooled ? '' : '; --head elastic pools first and caches far less';
      return {
        note: `no feature cache: ${what} would take ${formatBytes(bytes)} for ${count} images, over the ${formatBytes(budgetBytes)} budget${hint}`,
      };
    }
    return {
      cache: new FeatureCache(shapes, count),
      note: `feature cache: ${what}, ${formatBytes(bytes)}, filled in the first frozen epoch`,
    };
  }

  /** The head inputs of the images at `indices`, or undefined while any of them is not cached yet. */
  read(indices: ArrayLike<number>): tf.Tensor[] | undefined {
    for (let i = 0; i < indices.length; i++) if (!this.filled[indices[i]!]) return undefined;
    return this.rows.map((rows, k) => {
      const size = this.sizes[k]!;
      const batch = new Float32Array(indices.length * size);
      for (let i = 0; i < indices.length; i++)
        batch.set(rows.subarray(indices[i]! * size, (indices[i]! + 1) * size), i * size);
      return tf.tensor(batch, [indices.length, ...this.shapes[k]!]);
    });
  }

  /** Keeps the computed head inputs (aligned with the exits) of the images at `indices`. */
  write(indices: ArrayLike<number>, inputs: readonly tf.Tensor[]): void {
    inputs.forEach((input, k) => {
      const values = input.dataSync();
      const size = this.sizes[k]!;
      for (let i = 0; i < indices.length; i++)
        this.rows[k]!.set(values.subarray(i * size, (i + 1) * size), indices[i]! * size);
    });
    for (let i = 0; i < indices.length; i++) this.filled[indices[i]!] = 1;
  }
}
