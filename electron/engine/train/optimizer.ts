/**
 * SGD with momentum, Nesterov and weight decay, update rule identical to torch.optim.SGD:
 *   d = g + wd * p;  buf = (first step) ? d : momentum * buf + d;
 *   p -= lr * (nesterov ? d + momentum * buf : buf)
 * Multi-way BP gives every exit one of these, each with its own momentum buffers.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Param } from '../models/index.js';

export interface SgdSettings {
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov: boolean;
}

export class SgdOptimizer {
  private readonly velocity = new Map<Param, tf.Variable>();

  constructor(
    readonly name: string,
    readonly params: readonly Param[],
    readonly settings: SgdSettings,
    /** Per-parameter learning-rate multiplier (the backbone's lr scale); 1 where absent. */
    private readonly lrScale: ReadonlyMap<Param, number> = new Map(),
  ) {}

  /**
   * Applies one update. `grads` is aligned with `params` (a missing gradient skips the
   * parameter: no update, no weight decay, its momentum buffer untouched); `lrFactor` comes
   * from the schedule; `gradScale` is the exit's loss weight.
   */
  step(grads: readonly (tf.Tensor | undefined)[], lrFactor: number, gradScale = 1): void {
    const { momentum, weightDecay, nesterov } = this.settings;
    const lr = this.settings.lr * lrFactor;
    tf.tidy(() => {
      this.params.forEach((param, i) => {
        const grad = grads[i];
        if (!grad) return;
        const p = param.variable;
        let d = gradScale === 1 ? grad : tf.mul(grad, gradScale);
        if (weightDecay) d = tf.add(d, tf.mul(p, weightDecay));
        let update = d;
        if (momentum) {
          const buffer = this.velocity.get(param);
          if (buffer) buffer.assign(tf.add(tf.mul(buffer, momentum), d));
          else this.velocity.set(param, tf.variable(d, false));
          const buf = this.velocity.get(param)!;
          update = nesterov ? tf.add(d, tf.mul(buf, momentum)) : buf;
        }
        p.assign(tf.sub(p, tf.mul(update, lr * (this.lrScale.get(param) ?? 1))));
      });
    });
  }

  /** Momentum buffers by parameter name, for checkpoints. */
  state(): Map<string, tf.Tensor> {
    return new Map([...this.velocity].map(([param, buf]) => [param.name, buf]));
  }

  loadState(state: ReadonlyMap<string, tf.Tensor>): void {
    this.disposeState();
    for (const param of this.params) {
      const saved = state.get(param.name);
      if (saved) this.velocity.set(param, tf.variable(saved, false));
    }
  }

  disposeState(): void {
    for (const buf of this.velocity.values()) buf.dispose();
    this.velocity.clear();
  }
}
