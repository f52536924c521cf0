/**
 * Supervision shares: which exits' losses drive each layer. For one batch, each exit's loss is
 * weighted as the run's method weights it and back-propagated alone from the same forward
 * pass; a layer's share of exit k is the norm of that gradient over the sum of all exits' norms.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { SupervisionShares } from '../../../shared/analysis.js';
import type { Method } from '../../../shared/spec.js';
import { GradSink, type MwNetwork, type Param } from '../models/index.js';
import { methodLossWeights } from '../train/lossWeights.js';
import { seedsFor, softmaxCrossEntropy } from '../train/methods.js';

export interface LabelledBatch {
  x: tf.Tensor4D;
  labels: tf.Tensor1D;
}

/**
 * Stacked, not tf.addN: tfjs-webgpu's AddN binds every input in one shader and fails validation
 * past the adapter's storage-buffer limit (8 by default), leaving zeros; stack splits its inputs.
 */
function gradientNorm(params: readonly Param[], sink: GradSink): tf.Scalar {
  return tf.sqrt(tf.sum(tf.stack(params.map((p) => tf.sum(tf.square(sink.get(p) ?? tf.zeros([]))))))) as tf.Scalar;
}

export async function supervisionShares(
  net: MwNetwork,
  batch: LabelledBatch,
  method: Method,
  gamma: number,
): Promise<SupervisionShares> {
  const weights = methodLossWeights(method, net.exits, gamma);
  // An imported network's stem is empty (its first block starts at the image): it has no share to report.
  const layers = [
    { name: 'stem', params: net.stem.params },
    ...net.blocks.map((block, i) => ({ name: `block ${i + 1}`, params: block.params })),
  ].filter((layer) => layer.params.length > 0);
  // The training-mode pass updates batch-norm running statistics; an analysis must leave them as they were.
  const savedBuffers = net.buffers.map((b) => tf.clone(b.variable));
  let norms: number[][];
  try {
    const perExit = tf.tidy(() => {
      const traced = net.trace(batch.x);
      const oneHot = tf.oneHot(batch.labels, net.description.classes) as tf.Tensor2D;
      return tf.stack(
        net.exits.map((exit) => {
          const { dLogits } = softmaxCrossEntropy(traced.logits[exit.index]!, oneHot);
          const sink = new GradSink();
          traced.backward(seedsFor(net, exit.index, tf.mul(dLogits, weights[exit.index]!)), sink);
          return tf.stack(layers.map((layer) => gradientNorm(layer.params, sink)));
        }),
      );
    });
    norms = (await perExit.array()) as number[][];
    perExit.dispose();
  } finally {
    net.buffers.forEach((b, i) => b.variable.assign(savedBuffers[i]!));
    tf.dispose(savedBuffers);
  }
  return {
    method,
    weights,
    exitBlocks: net.exits.map((e) => e.block),
    batchSize: batch.x.shape[0],
    layers: layers.map((layer, l) => {
      const layerNorms = norms.map((exitNorms) => exitNorms[l]!);
      const total = layerNorms.reduce((a, b) => a + b, 0);
      return { name: layer.name, norms: layerNorms, shares: layerNorms.map((n) => (total ? n / total : 0)) };
    }),
  };
}
