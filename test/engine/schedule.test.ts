/** The step schedule cuts the lr x0.1 at each milestone (the paper's code: 40% and 60% of training). */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RUN_CONFIG, parseRunConfig } from '../../shared/spec.js';
import { learningRateFactor } from '../../electron/engine/train/schedule.js';

describe('learning-rate schedule', () => {
  it('defaults to the paper: x0.1 from 40% and x0.01 from 60% of training', () => {
    const { milestones } = parseRunConfig({ ...DEFAULT_RUN_CONFIG, milestones: undefined });
    expect(milestones).toEqual([0.4, 0.6]);
    const factors = [0, 39, 40, 59, 60, 99].map((step) => learningRateFactor('step', step, 100, milestones));
    expect(factors.map((f) => +f.toPrecision(6))).toEqual([1, 1, 0.1, 0.1, 0.01, 0.01]);
  });

  it('takes other milestones as a setting', () => {
    const factors = [49, 50, 74, 75].map((step) => learningRateFactor('step', step, 100, [0.5, 0.75]));
    expect(factors.map((f) => +f.toPrecision(6))).toEqual([1, 0.1, 0.1, 0.01]);
    expect(learningRateFactor('step', 99, 100, [])).toBe(1);
  });

  it('cosine ignores the milestones', () => {
    expect(learningRateFactor('cosine', 50, 100, [0.4, 0.6])).toBeCloseTo(0.5, 12);
  });
});
