/**
 * Self-distillation ("Be Your Own Teacher", arXiv 1905.08094): each auxiliary exit also learns
 * from the final exit's softened predictions. Exit k's loss is
 *   (1 - a) * CE(z_k, y) + a * T^2 * KL(softmax(z_final / T) || softmax(z_k / T)),
 * the final logits a detached teacher, so only the student's logits get a gradient.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface Distillation {
  /** Weight a of the distillation term. */
  alpha: number;
  /** Softening temperature T. */
  temperature: number;
}

/**
 * The batch-mean loss above, given the exit's batch-mean cross-entropy: what an auxiliary exit
 * optimises under self-distillation, reported as its loss.
 */
export function distilledLoss(
  logits: tf.Tensor2D,
  teacher: tf.Tensor2D,
  crossEntropy: tf.Scalar,
  d: Distillation,
): tf.Scalar {
  return tf.tidy(() => {
    const T = d.temperature;
    const teacherLog = tf.logSoftmax(tf.div(teacher, T));
    const kl = tf.mean(tf.sum(tf.mul(tf.exp(teacherLog), tf.sub(teacherLog, tf.logSoftmax(tf.div(logits, T)))), 1));
    return tf.add(tf.mul(crossEntropy, 1 - d.alpha), tf.mul(kl, d.alpha * T * T)) as tf.Scalar;
  });
}

/**
 * Gradient of the batch-mean loss above w.r.t. the student's logits: the cross-entropy part
 * (softmax(z) - y) / N and the distillation part T * (softmax(z / T) - softmax(t / T)) / N
 * (the T^2 factor keeps its size independent of T, as in Hinton et al.).
 */
export function distilledLogitGradient(
  logits: tf.Tensor2D,
  teacher: tf.Tensor2D,
  oneHot: tf.Tensor2D,
  d: Distillation,
): tf.Tensor2D {
  return tf.tidy(() => {
    const batch = logits.shape[0];
    const T = d.temperature;
    const crossEntropy = tf.sub(tf.softmax(logits), oneHot);
    const distill = tf.mul(tf.sub(tf.softmax(tf.div(logits, T)), tf.softmax(tf.div(teacher, T))), T);
    return tf.div(tf.add(tf.mul(crossEntropy, 1 - d.alpha), tf.mul(distill, d.alpha)), batch) as tf.Tensor2D;
  });
}
