import { createPinia, setActivePinia } from 'pinia';
import { describe, expect, it } from 'vitest';
import type { RunDetail } from '../../../shared/api.js';
import { provideStudioApi } from '../../../renderer/src/api/current.js';
import { useRunsStore } from '../../../renderer/src/stores/runs.js';
import { useStudioStore } from '../../../renderer/src/stores/studio.js';
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

  it('compares two runs exit by exit, aligning auxiliary exits by block and the finals together', async () => {
    const { runs } = runsStore();
    runs.toggleCompare(RUN_DIR);
    runs.toggleCompare('/somewhere/else');
    runs.toggleCompare(OTHER_DIR);
    expect(runs.compareDirs).toEqual(['/somewhere/else', OTHER_DIR]);
    runs.toggleCompare('/somewhere/else');
    runs.toggleCompare(RUN_DIR);
    await runs.compare();
    expect(runs.comparisonRows.map((row) => [row.label, row.a?.top1, row.b?.top1, row.b?.provisional])).toEqual([
      ['exit @ block 3', 0.6, reports[0]!.top1, false],
      ['exit @ block 4', 0.62, undefined, undefined],
      ['exit @ block 6', 0.65, reports[1]!.top1, false],
      ['final output', 0.7, reports[2]!.top1, false],
    ]);
    expect(runs.comparisonRows[0]!.a?.provisional).toBe(true);
  });
});
