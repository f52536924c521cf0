/** The Study view's store and form: the request it makes, the engine's study events followed, progress and ETA. */
import { createPinia, setActivePinia } from 'pinia';
import { describe, expect, it, vi } from 'vitest';
import { methodLabel } from '../../../shared/comparison.js';
import { DEFAULT_RUN_CONFIG } from '../../../shared/spec.js';
import { newStudyRecord, parseStudyMethod, type StudyView } from '../../../shared/study.js';
import { provideStudioApi } from '../../../renderer/src/api/current.js';
import { useRunFormStore } from '../../../renderer/src/stores/runForm.js';
import { useStudioStore } from '../../../renderer/src/stores/studio.js';
import { ELEMENT_POLL_MS, useStudyStore } from '../../../renderer/src/stores/study.js';
import {
  EMPTY_SLURM_FORM,
  STUDY_METHOD_CHOICES,
  validateStudyForm,
  type StudyForm,
} from '../../../renderer/src/studyPlan.js';
import { backend, batch, detail, fakeStudio, start } from './fixtures.js';

/** A form for a study trained here. */
const local = (fields: Pick<StudyForm, 'methods' | 'seeds'>): StudyForm => ({
  ...fields,
  executor: 'local',
  slurm: { ...EMPTY_SLURM_FORM },
});

const INFO = { version: 'test', backend, backendNotes: [], runsRoot: '/runs', nativeDialogs: false };

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
  it('offers each method alone, with self-distillation, gradient equilibrium or both, except plain BP', () => {
    const extras = (m: string) => [m, `${m}+distill`, `${m}+ge`, `${m}+distill+ge`];
    expect(STUDY_METHOD_CHOICES).toEqual(['plain', ...extras('joint'), ...extras('pairwise'), ...extras('multiway')]);
    // Each is a method the engine accepts, the inverse of its label.
    for (const label of STUDY_METHOD_CHOICES) expect(methodLabel(parseStudyMethod(label))).toBe(label);
  });

  it('builds the request in the canonical method order, and names each problem at its field', () => {
    const { request } = validateStudyForm(
      local({ methods: ['multiway+ge', 'multiway+distill', 'plain'], seeds: '3' }),
      base,
    );
    expect(request).toEqual({
      config: base,
      methods: [parseStudyMethod('plain'), parseStudyMethod('multiway+distill'), parseStudyMethod('multiway+ge')],
      seeds: 3,
      executor: { kind: 'local' },
    });
    expect(validateStudyForm(local({ methods: [], seeds: 0 }), base).errors).toEqual({
      methods: 'a study needs at least one method',
      seeds: 'seeds must be at least 1',
    });
    expect(validateStudyForm(local({ methods: ['joint'], seeds: '' }), base).errors).toEqual({
      seeds: 'seeds must be a number',
    });
    expect(validateStudyForm(local({ methods: ['joint'], seeds: 2 }), undefined).errors).toEqual({
      form: 'The New run settings have problems: fix them there first.',
    });
    expect(
      validateStudyForm(local({ methods: ['joint'], seeds: 2 }), { ...base, seed: 2 ** 31 - 1 }).errors.form,
    ).toMatch(/^joint: seed: /);
  });

  it('validates the Slurm settings per field, and sends them as the executor, sbatch options one a line', () => {
    const slurm = (fields: Partial<StudyForm['slurm']>) =>
      validateStudyForm(
        { ...local({ methods: ['joint'], seeds: 1 }), executor: 'slurm', slurm: { ...EMPTY_SLURM_FORM, ...fields } },
        base,
      );
    expect(
      slurm({ partition: ' gpu ', time: '2:00:00', gpusPerRun: '1', sbatchArgs: '--mem=8G\n\n --qos=short ' }).request
        ?.executor,
    ).toEqual({
      kind: 'slurm',
      partition: 'gpu',
      time: '2:00:00',
      gpusPerRun: 1,
      cpusPerRun: 1,
      sbatchArgs: ['--mem=8G', '--qos=short'],
    });
    expect(slurm({ partition: 'a;b', time: 'soon', cpusPerRun: 0, sbatchArgs: '--array=1-9' }).errors).toEqual({
      partition: 'partition is letters, digits, "_", "-" and "."',
      time: "time is minutes, HH:MM:SS or D-HH:MM:SS (Slurm's --time format)",
      cpusPerRun: 'CPUs per run must be at least 1',
      sbatchArgs: '--array is set by the studio; give partition, GPUs, CPUs, time and account as their own settings',
    });
    // Left as typed while the study runs here: Slurm's fields are not checked then.
    expect(
      validateStudyForm(
        { ...local({ methods: ['joint'], seeds: 1 }), slurm: { ...EMPTY_SLURM_FORM, time: 'soon' } },
        base,
      ).errors,
    ).toEqual({});
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
          executor: { kind: 'local' },
        },
      },
    ]);
  });

  it('offers Slurm only when the engine has sbatch, and starts a study there with its settings', async () => {
    const { studio, study } = studyStore({
      getInfo: () => ({ ...INFO, slurm: true }),
      startStudy: () => ({ study: 's1' }),
    });
    expect(study.slurmAvailable).toBe(false);
    await useStudioStore().refreshInfo();
    expect(study.slurmAvailable).toBe(true);
    study.setExecutor('slurm');
    study.setSlurmField('partition', 'debug');
    study.setSlurmField('cpusPerRun', '2');
    study.setSeeds('1');
    expect(await study.start()).toBe(true);
    expect(studio.calls.at(-1)).toMatchObject({
      method: 'startStudy',
      request: { seeds: 1, executor: { kind: 'slurm', partition: 'debug', cpusPerRun: 2, sbatchArgs: [] } },
    });
  });
});

describe('study progress and results', () => {
  it("on Slurm, shows the states, reads a running element's folder for its curves, and counts the study's ETA in waves", async () => {
    vi.useFakeTimers();
    try {
      const { studio, study } = studyStore({ openRun: ({ run }) => ({ ...detail('running', 3), dir: run }) });
      const slurmView = (states: string[]): StudyView => {
        const record = newStudyRecord('slurm-study', {
          base,
          methods: [parseStudyMethod('joint')],
          seeds: states.length,
          executor: { kind: 'slurm', cpusPerRun: 1, sbatchArgs: [] },
        });
        record.runs = record.runs.map((r, i) => ({
          ...r,
          run: `run-${i}`,
          ...(states[i] === 'RUNNING' ? { startedAt: new Date(Date.now() - 10_000).toISOString() } : {}),
          slurm: { job: `12_${i}`, state: states[i]!, resubmits: 0 },
        }));
        return { record, rows: [], missing: [] };
      };
      studio.push({ type: 'study', study: slurmView(['PENDING', 'PENDING', 'PENDING']) });
      expect(study.onSlurm).toBe(true);
      expect(study.watchedIndex).toBeUndefined();
      expect(study.progressLine).toBe('0 of 3 runs finished · 0 running · 3 pending');
      studio.push({ type: 'study', study: slurmView(['RUNNING', 'RUNNING', 'PENDING']) });
      expect(study.watchedIndex).toBe(0);
      await vi.advanceTimersByTimeAsync(0);
      expect(studio.calls.filter((c) => c.method === 'openRun').map((c) => c.request)).toEqual([{ run: 'run-0' }]);
      expect(study.element?.dir).toBe('run-0');
      expect(study.element?.loss[0]?.length).toBe(3);
      // Two running, one to come: the live element's ETA (5 batches of 0.5 s) plus one wave of 10 s + its 2.5 s.
      expect(study.etaSeconds).toBeCloseTo(2.5 + (10 + 2.5), 0);
      study.watchElement(1);
      await vi.advanceTimersByTimeAsync(0);
      expect(study.element?.dir).toBe('run-1');
      await vi.advanceTimersByTimeAsync(ELEMENT_POLL_MS);
      expect(studio.calls.filter((c) => c.method === 'openRun').map((c) => c.request)).toEqual([
        { run: 'run-0' },
        { run: 'run-1' },
        { run: 'run-1' },
      ]);
      // No run of the study runs any more: the folder is no longer read.
      studio.push({ type: 'study', study: slurmView(['COMPLETED', 'COMPLETED', 'COMPLETED']) });
      const reads = studio.calls.length;
      await vi.advanceTimersByTimeAsync(3 * ELEMENT_POLL_MS);
      expect(studio.calls.length).toBe(reads);
    } finally {
      vi.useRealTimers();
    }
  });

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
