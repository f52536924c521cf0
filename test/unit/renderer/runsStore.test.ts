import { createPinia, setActivePinia } from 'pinia';
import { describe, expect, it } from 'vitest';
import type { RunDetail } from '../../../shared/api.js';
import { provideStudioApi } from '../../../renderer/src/api/current.js';
import { useRunsStore } from '../../../renderer/src/stores/runs.js';
import { useStudioStore } from '../../../renderer/src/stores/studio.js';
import type { RunSummary } from '../../../shared/metrics.js';
import { RUN_DIR, config, detail, epoch, exits, fakeStudio, reports, summary } from './fixtures.js';

const OTHER_DIR = '/home/user/runs/2026-11-22_16-10-00_resnet20_joint';

/** A second run of the same network with an extra exit after block 4, stopped after epoch 1 (never evaluated). */
const other: RunDetail = {
  ...detail('stopped', 4),
  dir: OTHER_DIR,
  exits: [
    exits[0]!,
    { index: 1, block: 4, layer: 9, final: false, params: 30_000, macs: 12_000_000 },
    { ...exits[1]!, index: 2 },
    { ...exits[2]!, index: 3 },
  ],
  metrics: [{ ...epoch(1), testAccuracy: [0.6, 0.62, 0.65, 0.7] }],
};

function runsStore() {
  const studio = fakeStudio({
    listRuns: () => [
      { dir: RUN_DIR, name: 'a', config, status: 'completed', summary },
      { dir: OTHER_DIR, name: 'b', config, status: 'interrupted' },
    ],
    openRun: ({ run }) => (run === RUN_DIR ? detail('completed', 8) : other),
  });
  provideStudioApi(studio.api);
  setActivePinia(createPinia());
  return { studio, runs: useRunsStore() };
}

describe('menu commands', () => {
  it("File > New Run's declared event shows the new-run view", async () => {
    const { studio, runs } = runsStore();
    await runs.open(RUN_DIR);
    expect(useStudioStore().view).toBe('exits');
    studio.push({ type: 'menu-command', command: 'new-run' });
    expect(useStudioStore().view).toBe('new');
  });
});

describe('runs store', () => {
  it('lists runs, and opens an evaluated one on its exits, another on its curves', async () => {
    const { runs } = runsStore();
    await runs.refresh();
    expect(runs.runs.map((r) => r.status)).toEqual(['completed', 'interrupted']);
    await runs.open(RUN_DIR);
    expect(useStudioStore().view).toBe('exits');
    await runs.open(OTHER_DIR);
    expect(useStudioStore().view).toBe('live');
  });

  it('compares three finished runs exit by exit, with each exit tax against the plain run among them', async () => {
    const plainDir = '/home/user/runs/2026-11-22_15-00-00_resnet20_plain';
    const jointDir = '/home/user/runs/2026-11-22_17-00-00_resnet20_joint';
    const plain: RunSummary = {
      ...summary,
      run: plainDir,
      config: { ...config, method: 'plain', seed: 1 },
      exits: summary.exits.map((e, k) => ({ ...e, top1: [0.3, 0.5, 0.85][k]! })),
    };
    // Joint BP with an extra exit after block 4 and self-distillation.
    const joint: RunSummary = {
      ...summary,
      run: jointDir,
      config: { ...config, method: 'joint', distill: true },
      exits: [
        { ...reports[0]!, top1: 0.7 },
        { ...reports[0]!, index: 1, block: 4, top1: 0.75 },
        { ...reports[1]!, index: 2, top1: 0.8 },
        { ...reports[2]!, index: 3, top1: 0.81 },
      ],
    };
    const studio = fakeStudio({
      listRuns: () => [
        { dir: RUN_DIR, name: 'a', config, status: 'completed', summary },
        { dir: OTHER_DIR, name: 'b', config, status: 'interrupted' },
        { dir: plainDir, name: 'c', config: plain.config, status: 'completed', summary: plain },
        { dir: jointDir, name: 'd', config: joint.config, status: 'completed', summary: joint },
      ],
    });
    provideStudioApi(studio.api);
    setActivePinia(createPinia());
    const runs = useRunsStore();
    await runs.refresh();
    runs.toggleCompare(RUN_DIR);
    expect(runs.compare()).toBe(false);
    // An unfinished run is left out of the comparison.
    for (const dir of [OTHER_DIR, plainDir, jointDir]) runs.toggleCompare(dir);
    expect(runs.compare()).toBe(true);
    const comparison = runs.comparison!;
    expect(comparison.runs.map((r) => r.label)).toEqual(['multiway, seed 0', 'plain, seed 1', 'joint+distill, seed 0']);
    expect(comparison.rows.map((row) => [row.block, row.final, row.top1])).toEqual([
      [3, false, [0.712, 0.3, 0.7]],
      [4, false, [undefined, undefined, 0.75]],
      [6, false, [0.804, 0.5, 0.8]],
      [9, true, [0.836, 0.85, 0.81]],
    ]);
    expect(comparison.taxes.map((t) => t && Number(t.difference.toFixed(3)))).toEqual([-0.014, undefined, -0.04]);
    runs.toggleCompare(plainDir);
    expect(runs.comparison).toBeUndefined();
  });
});
