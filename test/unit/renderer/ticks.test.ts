/** Tick labels of narrow accuracy ranges: every tick Chart.js places gets a label of its own. */
import { describe, expect, it } from 'vitest';
import { percentTick, tickDigits } from '../../../renderer/src/charts/ticks.js';

describe('percent ticks', () => {
  it('chooses the digits from the tick step', () => {
    expect(tickDigits(0.1, 100)).toBe(0);
    expect(tickDigits(0.01, 100)).toBe(0);
    expect(tickDigits(0.002, 100)).toBe(1);
    expect(tickDigits(0.0025, 100)).toBe(1);
    expect(tickDigits(0.0005, 100)).toBe(2);
    expect(tickDigits(0, 100)).toBe(0);
  });

  it('labels the ticks of a 96.0-96.6% range apart, where whole percents repeated "96%"', () => {
    // Chart.js's nice steps are 1, 2, 2.5 and 5 times a power of ten.
    for (const step of [0.001, 0.002, 0.0025, 0.005, 0.0001]) {
      const ticks = Array.from({ length: 7 }, (_, i) => ({ value: 0.96 + i * step }));
      const labels = ticks.map((t, i) => percentTick(t.value, i, ticks));
      expect(new Set(labels).size, labels.join(' ')).toBe(ticks.length);
    }
  });
});
