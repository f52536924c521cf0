import { createPinia, setActivePinia } from 'pinia';
import { describe, expect, it } from 'vitest';
import type { ExitReport } from '../../../shared/metrics.js';
import { provideStudioApi } from '../../../renderer/src/api/current.js';
import {
  bestWithinBudget,
  budgetCost,
  paretoFront,
  parseBudget,
  parseCount,
  type Budget,
} from '../../../renderer/src/selection.js';
import { useSelectionStore } from '../../../renderer/src/stores/selection.js';
import { useStudioStore } from '../../../renderer/src/stores/studio.js';
import { EXPORT_DEPLOYMENT, RUN_DIR, exits, fakeStudio, reports, runStream, start } from './fixtures.js';

/** Deterministic random numbers (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random exits on a coarse grid, so ties in cost and accuracy are common. */
function randomReports(next: () => number, count: number): ExitReport[] {
  return Array.from({ length: count }, (_, index) => ({
    index,
    block: index + 1,
    layer: 2 * index + 3,
    final: index === count - 1,
    params: 1000 * Math.floor(next() * 8),
    macs: 1000,
    top1: Math.floor(next() * 6) / 5,
    latencyMs: { batch1: { median: Math.floor(next() * 6) / 2, p90: 9 }, batch32: { median: 9, p90: 9 } },
  }));
}

describe('paretoFront', () => {
  const x = (r: ExitReport) => r.latencyMs.batch1.median;
  const y = (r: ExitReport) => r.top1;

  it('keeps exactly the points no other point dominates, cheapest first (against brute force)', () => {
    const next = random(7);
    for (let trial = 0; trial < 500; trial++) {
      const points = randomReports(next, 1 + Math.floor(next() * 12));
      const dominated = (p: ExitReport) =>
        points.some((q) => x(q) <= x(p) && y(q) >= y(p) && (x(q) < x(p) || y(q) > y(p)));
      const expected = points.filter((p) => !dominated(p));
      const front = paretoFront(points, x, y);
      expect(new Set(front)).toEqual(new Set(expected));
      expect(front).toHaveLength(expected.length);
      expect(front.map(x)).toEqual([...front.map(x)].sort((a, b) => a - b));
    }
  });

  it('handles no points', () => {
    expect(paretoFront([], x, y)).toEqual([]);
  });
});

describe('bestWithinBudget', () => {
  it('picks the most accurate exit that fits, then the cheaper, then the shallower (against brute force)', () => {
    const next = random(11);
    for (let trial = 0; trial < 500; trial++) {
      const points = randomReports(next, 1 + Math.floor(next() * 10));
      const budget: Budget =
        next() < 0.5 ? { metric: 'latency', limit: next() * 3 } : { metric: 'params', limit: next() * 8000 };
      const cost = (r: ExitReport) => budgetCost(r, budget.metric);
      const [expected] = points
        .filter((r) => cost(r) <= budget.limit)
        .sort((a, b) => b.top1 - a.top1 || cost(a) - cost(b) || a.index - b.index);
      expect(bestWithinBudget(points, budget)).toBe(expected);
    }
  });

  it('finds nothing when no exit fits', () => {
    expect(bestWithinBudget(reports, { metric: 'latency', limit: 0.1 })).toBeUndefined();
  });
});

describe('budget input', () => {
  it('reads counts with k/M/G suffixes', () => {
    expect(parseCount('272474')).toBe(272474);
    expect(parseCount('250k')).toBe(250_000);
    expect(parseCount(' 1.5 M ')).toBe(1_500_000);
    expect(parseCount('2G')).toBe(2e9);
    expect(parseCount('.5k')).toBe(500);
    expect(parseCount('12 apples')).toBeUndefined();
    expect(parseCount('')).toBeUndefined();
  });

  it('accepts only positive amounts', () => {
    expect(parseBudget('latency', '0.8')).toEqual({ metric: 'latency', limit: 0.8 });
    expect(parseBudget('params', '100k')).toEqual({ metric: 'params', limit: 100_000 });
    expect(parseBudget('latency', '')).toBeUndefined();
    expect(parseBudget('latency', '0')).toBeUndefined();
    expect(parseBudget('latency', 'fast')).toBeUndefined();
    expect(parseBudget('params', '-5')).toBeUndefined();
  });
});

describe('selection store', () => {
  function evaluatedRun(handlers: Parameters<typeof fakeStudio>[0] = {}) {
    const studio = fakeStudio(handlers);
    provideStudioApi(studio.api);
    setActivePinia(createPinia());
    const selection = useSelectionStore();
    studio.emit(runStream());
    return { studio, selection };
  }

  it('draws the Pareto fronts and recommends the best exit within the budget', () => {
    const { selection } = evaluatedRun();
    // The fixture's exits get both more accurate and more costly with depth: all are on both fronts.
    expect(selection.latencyFront.map((r) => r.index)).toEqual([0, 1, 2]);
    expect(selection.paramsFront.map((r) => r.index)).toEqual([0, 1, 2]);
    expect(selection.selectedIndex).toBe(2);

    selection.budgetText = '0.8';
    expect(selection.recommended?.index).toBe(1);
    expect(selection.selectedIndex).toBe(1);

    selection.budgetMetric = 'params';
    selection.budgetText = '20k';
    expect(selection.recommended?.index).toBe(0);

    selection.budgetText = '10k';
    expect(selection.recommended).toBeUndefined();
    expect(selection.budgetInvalid).toBe(false);
    selection.budgetText = 'lots';
    expect(selection.budgetInvalid).toBe(true);
  });

  it('lets a click override the recommendation until the budget changes', () => {
    const { selection } = evaluatedRun();
    selection.budgetText = '0.5';
    expect(selection.selectedIndex).toBe(0);
    selection.select(2);
    expect(selection.selected).toEqual(reports[2]);
    selection.budgetText = '0.9';
    expect(selection.selectedIndex).toBe(1);
  });

  it('exports the selected exit and keeps the files written', async () => {
    const files = ['model.json', 'group1-shard1of1.bin'].map((f) => `${RUN_DIR}/exports/exit-1/${f}`);
    const { studio, selection } = evaluatedRun({
      exportExit: () => ({ directory: `${RUN_DIR}/exports/exit-1`, files, deployment: EXPORT_DEPLOYMENT }),
    });
    selection.select(1);
    expect(await selection.exportSelected()).toBe(true);
    // Index 1 in the table is the exit after block 6: the API names it by its block.
    expect(studio.calls.at(-1)).toEqual({ method: 'exportExit', request: { run: RUN_DIR, exit: 6, format: 'tfjs' } });
    expect(selection.exportResult?.files).toEqual(files);

    selection.exportFormat = 'onnx';
    selection.exportDestination = '/tmp/models';
    await selection.exportSelected();
    expect(studio.calls.at(-1)?.request).toEqual({ run: RUN_DIR, exit: 6, format: 'onnx', destination: '/tmp/models' });
    selection.select(2);
    await selection.exportSelected();
    expect(studio.calls.at(-1)?.request).toMatchObject({ exit: 'final' });
  });

  it('reports a failed export', async () => {
    const { selection } = evaluatedRun({
      exportExit: () => Promise.reject(new Error('onnx export needs onnxruntime')),
    });
    expect(await selection.exportSelected()).toBe(false);
    expect(selection.exportResult).toBeUndefined();
    expect(useStudioStore().toasts.map((t) => t.text)).toEqual(['Export failed: onnx export needs onnxruntime']);
  });

  it('shows costs before the run is evaluated', () => {
    const studio = fakeStudio();
    provideStudioApi(studio.api);
    setActivePinia(createPinia());
    const selection = useSelectionStore();
    studio.emit([{ type: 'started', start }]);
    expect(selection.rows).toEqual(exits);
    expect(selection.latencyFront).toEqual([]);
    expect(selection.selectedIndex).toBe(2);
  });
});
