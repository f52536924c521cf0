/** The exit tax, side-by-side comparison and study table of shared/comparison.ts on hand-made run summaries. */
import { describe, expect, it } from 'vitest';
import { exitComparison, exitTax, methodLabel, spread, studyTable } from '../../shared/comparison.js';
import { DEFAULT_RUN_CONFIG, parseRunConfig, type RunConfigInput } from '../../shared/spec.js';

function run(settings: Partial<RunConfigInput>, top1: number[]) {
  const config = parseRunConfig({ ...DEFAULT_RUN_CONFIG, ...settings });
  const blocks = [3, 6, 9].slice(-top1.length);
  return { config, exits: top1.map((t, k) => ({ block: blocks[k]!, final: k === top1.length - 1, top1: t })) };
}

describe('exit tax', () => {
  const multiway = run({ seed: 0 }, [0.7, 0.8, 0.86]);
  it("is the run's final top-1 minus the mean of plain runs on the same network, data and recipe (any seed)", () => {
    const plain = [
      run({ method: 'plain', seed: 1 }, [0.5, 0.6, 0.88]),
      run({ method: 'plain', seed: 2 }, [0.5, 0.6, 0.9]),
    ];
    const tax = exitTax(multiway, [...plain, run({ seed: 5 }, [0.1, 0.1, 0.1])])!;
    expect(tax.plainRuns).toBe(2);
    expect(tax.plainTop1).toBeCloseTo(0.89, 12);
    expect(tax.difference).toBeCloseTo(-0.03, 12);
  });

  it('ignores plain runs of another network, dataset or recipe, and has none for a plain run', () => {
    const others = [
      run({ method: 'plain', arch: { family: 'resnet', depth: 32, width: 1, block: 'preact' } }, [0.9]),
      run({ method: 'plain', arch: { family: 'resnet', depth: 20, width: 1, block: 'projection' } }, [0.9]),
      run({ method: 'plain', dataset: '/data/cifar10' }, [0.9]),
      run({ method: 'plain', epochs: 7 }, [0.9]),
      run({ method: 'plain', limitTrain: 100 }, [0.9]),
    ];
    expect(exitTax(multiway, others)).toBeUndefined();
    expect(exitTax(others[0]!, [others[0]!])).toBeUndefined();
    // Different auxiliary exits are still the same backbone.
    expect(
      exitTax(multiway, [
        run(
          { method: 'plain', arch: { family: 'resnet', depth: 20, width: 1, block: 'preact', exits: [5] } },
          [0.6, 0.9],
        ),
      ])?.difference,
    ).toBeCloseTo(-0.04, 12);
  });
});

describe('comparison and study', () => {
  it('lines up exits by block, leaving gaps where a run has no exit there', () => {
    const rows = exitComparison([run({}, [0.7, 0.8, 0.86]), run({ method: 'plain' }, [0.6, 0.9])]);
    expect(rows).toEqual([
      { block: 3, final: false, top1: [0.7, undefined] },
      { block: 6, final: false, top1: [0.8, 0.6] },
      { block: 9, final: true, top1: [0.86, 0.9] },
    ]);
  });

  it('gives per-exit mean and sample standard deviation per method, and the exit tax against plain', () => {
    const rows = studyTable([
      run({ method: 'plain', seed: 0 }, [0.5, 0.6, 0.88]),
      run({ method: 'plain', seed: 1 }, [0.5, 0.6, 0.9]),
      run({ seed: 0, distill: true }, [0.72, 0.8, 0.86]),
      run({ seed: 1, distill: true }, [0.74, 0.82, 0.88]),
    ]);
    expect(rows.map((r) => [r.method, r.runs])).toEqual([
      ['plain', 2],
      ['multiway+distill', 2],
    ]);
    expect(rows[1]!.exits[0]!.mean).toBeCloseTo(0.73, 12);
    expect(rows[1]!.exits[0]!.spread).toBeCloseTo(Math.SQRT2 * 0.01, 12);
    expect(rows[1]!.exitTax).toBeCloseTo(-0.02, 12);
    expect(rows[0]!.exitTax).toBeUndefined();
    expect(spread([0.5])).toBe(0);
    expect(methodLabel({ method: 'joint', gradientEquilibrium: true })).toBe('joint+ge');
  });
});
