/** The Study view's store and form: the request it makes, the engine's study events followed, progress and ETA. */
import { createPinia, setActivePinia } from 'pinia';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RUN_CONFIG } from '../../../shared/spec.js';
import { newStudyRecord, parseStudyMethod, type StudyView } from '../../../shared/study.js';
import { provideStudioApi } from '../../../renderer/src/api/current.js';
import { useRunFormStore } from '../../../renderer/src/stores/runForm.js';
import { useStudioStore } from '../../../renderer/src/stores/studio.js';
import { useStudyStore } from '../../../renderer/src/stores/study.js';
import { STUDY_METHOD_CHOICES, validateStudyForm } from '../../../renderer/src/studyPlan.js';
import { batch, fakeStudio, start } from './fixtures.js';

const base = DEFAULT_RUN_CONFIG;

function studyStore(handlers: Parameters<typeof fakeStudio>[0] = {}) {
  const studio = fakeStudio(handlers);
  provideStudioApi(studio.api);
  setActivePinia(createPinia());
  return { studio, study: useStudyStore(), runForm: useRunFormStore() };
}

/** A study of joint x 2 seeds, `finished` of them done: the first run started 100 s ago, each finished one took 40 s. */
function view(finished: number): StudyView {
  const record = newStudyRecord('2026-12-02_13-00-00_resnet20_study', {
    base,
    methods: [parseStudyMethod('joint')],
    seeds: 2,
  });
  const t = (s: number) => new Date(Date.now() - 1000 * (100 - s)).toISOString();
  record.runs = record.runs.map((r, i) => ({
    ...r,
    ...(i <= finished ? { run: `run-${i}`, startedAt: t(i * 40) } : {}),
    ...(i < finished ? { finishedAt: t(i * 40 + 40) } : {}),
  }));
  record.status = finished === 2 ? 'completed' : 'running';
  return { record, rows: [], missing: [] };
}

describe('the study form', () => {
  it('offers each method with and without self-distillation, except plain BP', () => {
    expect(STUDY_METHOD_CHOICES).toEqual([
      'plain',
      'joint',
      'joint+distill',
      'pairwise',
      'pairwise+distill',
      'multiway',
      'multiway+distill',
    ]);
  });

  it('builds the request in the canonical method order, and names each problem at its field', () => {
    const { request } = validateStudyForm({ methods: ['multiway+distill', 'plain'], seeds: '3' }, base);
    expect(request).toEqual({
      config: base,
      methods: [parseStudyMethod('plain'), parseStudyMethod('multiway+distill')],
      seeds: 3,
    });
    expect(validateStudyForm({ methods: [], seeds: 0 }, base).errors).toEqual({
      methods: 'a study needs at least one method',
      seeds: 'seeds must be at least 1',
    });
    expect(validateStudyForm({ methods: ['joint'], seeds: '' }, base).errors).toEqual({
      seeds: 'seeds must be a number',
    });
    expect(validateStudyForm({ methods: ['joint'], seeds: 2 }, undefined).errors).toEqual({
      form: 'The New run settings have problems: fix them there first.',
    });
    expect(validateStudyForm({ methods: ['joint'], seeds: 2 }, { ...base, seed: 2 ** 31 - 1 }).errors.form).toMatch(
      /^joint: seed: /,
    );
  });

  it("starts a study from the New run form's settings, and only a valid one", async () => {
    const { studio, study, runForm } = studyStore({ startStudy: () => ({ study: 's1' }) });
    runForm.form.epochs = 0;
    expect(study.valid).toBe(false);
    expect(await study.start()).toBe(false);
    runForm.form.epochs = 1;
    study.toggleMethod('plain');
    study.toggleMethod('joint+distill');
    expect(await study.start()).toBe(true);
    expect(studio.calls).toEqual([
      {
        method: 'startStudy',
        request: {
          config: { ...base, epochs: 1 },
          methods: [parseStudyMethod('joint+distill'), parseStudyMethod('multiway')],
          seeds: 2,
        },
      },
    ]);
  });
});

describe('study progress and results', () => {
  it("follows the engine's study events: the live run, the ETA over the whole study, the result", () => {
    const { studio, study } = studyStore();
    studio.push({ type: 'study', study: view(0) });
    expect(study.training).toBe(true);
    expect(study.liveEntry).toMatchObject({ method: 'joint', seed: 0, run: 'run-0' });
    expect(study.etaSeconds).toBeUndefined();
    studio.emit([{ type: 'started', start }, batch(4)]);
    // 100 s into the first run with 2 s to go: 102 s a run, one more to come.
    expect(study.etaSeconds).toBeCloseTo(2 + 102, 0);
    const second = view(1);
    studio.push({ type: 'study', study: second });
    studio.emit([batch(6)]);
    expect(study.finished).toBe(1);
    // The first run took 40 s: the second's 1 s to go is all that is left.
    expect(study.etaSeconds).toBeCloseTo(1, 5);
    const done = {
      ...view(2),
      rows: [{ method: 'joint', runs: 2, exits: [{ block: 9, final: true, mean: 0.8, spread: 0.01 }] }],
    };
    studio.push({ type: 'study', study: done });
    expect(study.training).toBe(false);
    expect(study.shown).toEqual(done);
    expect(study.studies).toEqual([done]);
  });

  it('says when a study failed, once', () => {
    const { studio, study } = studyStore();
    studio.push({ type: 'study', study: view(0) });
    const failed = {
      ...view(0),
      record: { ...view(0).record, status: 'failed' as const, message: 'joint, seed 0: x: file not found' },
    };
    studio.push({ type: 'study', study: failed });
    studio.push({ type: 'study', study: failed });
    expect(useStudioStore().toasts.map((t) => [t.kind, t.text])).toEqual([
      ['error', 'The study stopped: joint, seed 0: x: file not found'],
    ]);
    expect(study.training).toBe(false);
  });

  it('lists the studies, showing the one training, and stops and continues through the engine', async () => {
    const older = { ...view(2), record: { ...view(2).record, id: 'older' } };
    const { studio, study } = studyStore({
      listStudies: () => ({ studies: [view(1), older], problems: ['/runs/x.study.json: not valid JSON'] }),
      stopStudy: () => ({}),
      resumeStudy: ({ study: id }) => ({ study: id }),
    });
    await study.refresh();
    expect(study.shown?.record.id).toBe('2026-12-02_13-00-00_resnet20_study');
    expect(study.problems).toEqual(['/runs/x.study.json: not valid JSON']);
    study.show('older');
    expect(study.shown?.record.id).toBe('older');
    await study.stop();
    await study.resume('older');
    expect(studio.calls.map((c) => c.method)).toEqual(['listStudies', 'stopStudy', 'resumeStudy']);
  });
});
