import { createPinia, setActivePinia } from 'pinia';
import { describe, expect, it } from 'vitest';
import type { EarlyExitSweep, LesionStudy, SupervisionShares } from '../../../shared/analysis.js';
import { ResponseSchemas } from '../../../shared/api.js';
import { provideStudioApi } from '../../../renderer/src/api/current.js';
import { useAnalysesStore } from '../../../renderer/src/stores/analyses.js';
import { useStudioStore } from '../../../renderer/src/stores/studio.js';
import { RUN_DIR, fakeStudio, runStream } from './fixtures.js';

const point = (threshold: number, accuracy: number, meanMacs: number) => ({
  threshold,
  accuracy,
  meanMacs,
  meanLatencyMs: meanMacs / 1000,
  exitShares: [0.5, 0.25, 0.25],
  macsRatio: meanMacs / 4000,
  latencyRatio: meanMacs / 4000,
});

const SWEEP: EarlyExitSweep = ResponseSchemas.earlyExit.parse({
  criterion: 'entropy',
  samples: 256,
  final: { accuracy: 0.9, macs: 4000, latencyMs: 4 },
  points: [point(0, 0.7, 1000), point(0.5, 0.897, 2000), point(1, 0.9, 4000)],
  equalAccuracy: point(0.5, 0.897, 2000),
});
const LESION: LesionStudy = {
  samples: 256,
  exitBlocks: [3, 6, 9],
  baseline: [0.6, 0.8, 0.9],
  blocks: [{ block: 1, accuracy: [0.3, 0.4, 0.5] }],
};
const SUPERVISION: SupervisionShares = {
  method: 'multiway',
  weights: [0.25, 1, 1],
  exitBlocks: [3, 6, 9],
  batchSize: 128,
  layers: [{ name: 'stem', norms: [1, 1, 2], shares: [0.25, 0.25, 0.5] }],
};

function shownRun(
  handlers: Parameters<typeof fakeStudio>[0] = {
    earlyExit: () => SWEEP,
    lesion: () => LESION,
    supervision: () => SUPERVISION,
  },
) {
  const studio = fakeStudio(handlers);
  provideStudioApi(studio.api);
  setActivePinia(createPinia());
  const analyses = useAnalysesStore();
  studio.emit(runStream());
  return { studio, analyses };
}

describe('analyses store', () => {
  it('asks the engine for each analysis of the shown run and starts the slider at the equal-accuracy threshold', async () => {
    const { studio, analyses } = shownRun();
    analyses.criterion = 'entropy';
    expect(await analyses.computeEarlyExit()).toBe(true);
    expect(studio.calls.at(-1)).toEqual({ method: 'earlyExit', request: { run: RUN_DIR, criterion: 'entropy' } });
    expect(analyses.thresholdIndex).toBe(1);
    expect(analyses.thresholdPoint?.threshold).toBe(0.5);
    analyses.thresholdIndex = 0;
    expect(analyses.thresholdPoint?.meanMacs).toBe(1000);

    await analyses.computeLesion();
    await analyses.computeSupervision();
    expect(studio.calls.slice(-2)).toEqual([
      { method: 'lesion', request: { run: RUN_DIR } },
      { method: 'supervision', request: { run: RUN_DIR } },
    ]);
    expect(analyses.lesion).toEqual(LESION);
    expect(analyses.supervision).toEqual(SUPERVISION);
  });

  it('shows a failure as an error message and keeps no result', async () => {
    const { analyses } = shownRun({ lesion: () => Promise.reject(new Error('the run has no checkpoint yet')) });
    expect(await analyses.computeLesion()).toBe(false);
    expect(analyses.lesion).toBeUndefined();
    expect(analyses.computingLesion).toBe(false);
    expect(useStudioStore().toasts.at(-1)?.text).toBe('Lesion study failed: the run has no checkpoint yet');
  });

  it('does nothing without a run', async () => {
    const studio = fakeStudio();
    provideStudioApi(studio.api);
    setActivePinia(createPinia());
    expect(await useAnalysesStore().computeEarlyExit()).toBe(false);
    expect(studio.calls).toEqual([]);
  });
});
