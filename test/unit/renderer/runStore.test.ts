import { createPinia, setActivePinia } from 'pinia';
import { describe, expect, it } from 'vitest';
import { provideStudioApi } from '../../../renderer/src/api/current.js';
import { applyRecord, progressFraction, traceFromStart } from '../../../renderer/src/runTrace.js';
import { useRunStore } from '../../../renderer/src/stores/run.js';
import { useStudioStore } from '../../../renderer/src/stores/studio.js';
import {
  EPOCHS,
  RUN_DIR,
  TOTAL_STEPS,
  batch,
  config,
  detail,
  epoch,
  exits,
  fakeStudio,
  lossAt,
  reports,
  runStream,
  settle,
  start,
  state,
  summary,
  type FakeStudio,
} from './fixtures.js';

let studio: FakeStudio;

function stores(handlers: Parameters<typeof fakeStudio>[0] = {}) {
  studio = fakeStudio(handlers);
  provideStudioApi(studio.api);
  setActivePinia(createPinia());
  return { run: useRunStore(), app: useStudioStore() };
}

const steps = (series: { x: number }[] | undefined) => series?.map((p) => p.x);

describe('run trace', () => {
  it("keeps each exit's cross-entropy apart from its loss when the run distils, and none otherwise", () => {
    const distilled = traceFromStart(start);
    const entropyAt = (step: number, k: number) => lossAt(step, k) + 0.25;
    for (const step of [1, 2, 3])
      applyRecord(distilled, { ...batch(step), crossEntropy: exits.map((_, k) => entropyAt(step, k)) });
    distilled.crossEntropy.forEach((series, k) =>
      expect(series).toEqual([1, 2, 3].map((s) => ({ x: s, y: entropyAt(s, k) }))),
    );
    distilled.loss.forEach((series, k) => expect(series).toEqual([1, 2, 3].map((s) => ({ x: s, y: lossAt(s, k) }))));
    const plain = traceFromStart(start);
    applyRecord(plain, batch(1));
    expect(plain.crossEntropy.every((series) => series.length === 0)).toBe(true);
  });
});

describe('run store, following a live run', () => {
  it('builds per-exit loss and accuracy series, progress and ETA from the event stream', () => {
    const { run } = stores();
    const stream = runStream();
    // The engine coalesces events: deliver them in uneven chunks.
    studio.emit(stream.slice(0, 3));
    expect(run.trace?.dir).toBe(RUN_DIR);
    expect(run.trace?.status).toBe('running');
    expect(run.trace?.backend).toEqual(start.backend);
    expect(run.trace?.progress).toMatchObject({
      step: 1,
      totalSteps: TOTAL_STEPS,
      epoch: 1,
      epochs: EPOCHS,
      etaSeconds: 3.5,
    });

    const sixth = stream.findIndex((e) => e.type === 'batch' && e.step === 6);
    studio.emit(stream.slice(3, sixth + 1));
    let trace = run.trace!;
    expect(trace.progress).toMatchObject({ step: 6, etaSeconds: 1, imagesPerSecond: 406 });
    expect(progressFraction(trace)).toBe(0.75);
    expect(trace.loss).toHaveLength(exits.length);
    trace.loss.forEach((series, k) =>
      expect(series).toEqual([1, 2, 3, 4, 5, 6].map((s) => ({ x: s, y: lossAt(s, k) }))),
    );
    expect(trace.testAccuracy.map((s) => s.map((p) => p.y))).toEqual(epoch(1).testAccuracy.map((a) => [a]));
    expect(trace.trainAccuracy.map((s) => s.map((p) => p.y))).toEqual(epoch(1).trainAccuracy.map((a) => [a]));

    const lossSeries = trace.loss[0];
    studio.emit(stream.slice(sixth + 1, -3));
    // A new trace object per batch of events (so views update), sharing its long series.
    expect(run.trace).not.toBe(trace);
    expect(run.trace?.loss[0]).toBe(lossSeries);
    trace = run.trace!;
    expect(trace.evaluating).toBe('test accuracy and latency of every exit');
    expect(trace.reports).toBeUndefined();

    studio.emit(stream.slice(-3));
    trace = run.trace!;
    expect(trace.evaluating).toBeUndefined();
    expect(trace.status).toBe('completed');
    expect(trace.reports).toEqual(reports);
    expect(trace.summary).toEqual(summary);
    expect(progressFraction(trace)).toBe(1);
    trace.testAccuracy.forEach((series, k) =>
      expect(series).toEqual([1, 2].map((e) => ({ x: e, y: epoch(e).testAccuracy[k] }))),
    );
    expect(run.engineBusy).toBe(false);
  });

  it('offers pause, continue and stop according to the status, and forwards them to the engine', async () => {
    const { run } = stores({ pauseRun: () => ({}), continueRun: () => ({}), stopRun: () => ({}) });
    studio.emit([{ type: 'started', start }, { type: 'status', state: state('running', 0) }, batch(1)]);
    expect([run.canPause, run.canContinue, run.canStop, run.canResume]).toEqual([true, false, true, false]);
    expect(await run.pause()).toBe(true);
    studio.emit([{ type: 'status', state: state('paused', 1) }]);
    expect([run.canPause, run.canContinue, run.canStop]).toEqual([false, true, true]);
    expect(run.engineBusy).toBe(true);
    await run.proceed();
    await run.stop();
    studio.emit([{ type: 'status', state: state('stopped', 1, 'stopped at step 1; resume continues from here') }]);
    expect([run.canPause, run.canStop, run.canResume]).toEqual([false, false, true]);
    expect(run.trace?.statusMessage).toContain('resume continues');
    expect(studio.calls.map((c) => c.method)).toEqual(['pauseRun', 'continueRun', 'stopRun']);
  });

  it("reports a refused action as an error toast with the engine's message", async () => {
    const { run, app } = stores({ stopRun: () => Promise.reject(new Error('no run is training')) });
    expect(await run.stop()).toBe(false);
    expect(app.toasts).toEqual([
      expect.objectContaining({ kind: 'error', text: 'Could not stop: no run is training' }),
    ]);
  });

  it('waits for the engine to announce a started run, then shows it', async () => {
    const { run } = stores({ startRun: () => ({ run: RUN_DIR }) });
    expect(await run.start(config)).toBe(true);
    expect(studio.calls).toEqual([{ method: 'startRun', request: { config } }]);
    expect(run.waitingForStart).toBe(true);
    studio.emit([{ type: 'started', start }]);
    expect(run.waitingForStart).toBe(false);
    expect(run.showsActiveRun).toBe(true);
  });

  it('marks the run failed when the trainer crashes', () => {
    const { run, app } = stores();
    studio.emit([{ type: 'started', start }, batch(1)]);
    studio.push({ type: 'trainer-crashed', message: 'out of memory', run: RUN_DIR });
    expect(run.trace?.status).toBe('failed');
    expect(run.trace?.statusMessage).toBe('out of memory');
    expect(app.toasts[0]).toMatchObject({ kind: 'error', text: 'The trainer crashed: out of memory' });
  });
});

describe('run store, runs read from disk', () => {
  it('joins a run in progress: history from its folder, then live events, without repeats', async () => {
    let answer!: (d: ReturnType<typeof detail>) => void;
    const { run } = stores({ openRun: () => new Promise((resolve) => (answer = resolve)) });
    const following = run.follow(RUN_DIR);
    // Steps 5 and 6 arrive while the folder (logged up to step 5) is being read.
    studio.emit([batch(5), batch(6)]);
    answer(detail('running', 4, 5));
    expect(await following).toBe(true);
    studio.emit([batch(6), batch(7)]);
    expect(steps(run.trace?.loss[0])).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(steps(run.trace?.testAccuracy[2])).toEqual([1]);
    expect(run.canPause).toBe(true);
  });

  it("keeps a resumed run's history up to its checkpoint and drops the steps trained again", async () => {
    // Stopped after step 6; the checkpoint is from the end of epoch 1 (step 4).
    const { run } = stores({ openRun: () => detail('stopped', 4, 6), resumeRun: () => ({ run: RUN_DIR }) });
    expect(await run.resume(RUN_DIR)).toBe(true);
    studio.emit([{ type: 'started', start: { ...start, resumedFrom: { epoch: 1, step: 4 } } }, batch(5)]);
    expect(steps(run.trace?.loss[1])).toEqual([1, 2, 3, 4, 5]);
    expect(steps(run.trace?.trainAccuracy[0])).toEqual([1]);
    expect(run.trace?.status).toBe('running');
  });

  it("shows a past run without letting another run's events into it", async () => {
    const other = '/home/user/runs/older';
    const { run } = stores({ openRun: ({ run: dir }) => ({ ...detail('completed', 8, 8), dir }) });
    studio.emit([{ type: 'started', start }, batch(1)]);
    await run.open(other);
    studio.emit([batch(2), batch(3)]);
    await settle();
    expect(run.trace?.dir).toBe(other);
    expect(run.trace?.reports).toEqual(reports);
    expect(steps(run.trace?.loss[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(run.followsLive).toBe(false);
    expect(run.engineBusy).toBe(true);
    expect(run.canPause).toBe(false);
  });
});
