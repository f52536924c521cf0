/** shared/study.ts: method labels, the queue of run configs, the record's schema and the whole study's ETA. */
import { describe, expect, it } from 'vitest';
import { STUDIO_CONTRACT, StudioEventSchema } from '../../shared/api.js';
import { parseRequest } from '../../shared/protocol.js';
import { methodLabel } from '../../shared/comparison.js';
import { ConfigError, DEFAULT_RUN_CONFIG } from '../../shared/spec.js';
import { newStudyRecord, parseStudyMethod, studyEtaSeconds, studyQueue, type StudyRecord } from '../../shared/study.js';

const base = { ...DEFAULT_RUN_CONFIG, seed: 5 };

describe('study methods and queue', () => {
  it('reads method labels, the inverse of methodLabel', () => {
    for (const label of ['plain', 'joint+ge', 'multiway+distill', 'pairwise+distill+ge'])
      expect(methodLabel(parseStudyMethod(label))).toBe(label);
    expect(() => parseStudyMethod('sideways')).toThrow(
      new ConfigError('methods: "sideways" does not start with one of plain, joint, pairwise, multiway'),
    );
    expect(() => parseStudyMethod('joint+fast')).toThrow(/has "\+fast"; the options are \+distill and \+ge/);
  });

  it('queues every method with seeds counting up from the base seed, each config validated', () => {
    const queue = studyQueue({
      base,
      methods: [parseStudyMethod('plain'), parseStudyMethod('multiway+distill')],
      seeds: 2,
    });
    expect(queue.map((c) => [methodLabel(c), c.seed])).toEqual([
      ['plain', 5],
      ['plain', 6],
      ['multiway+distill', 5],
      ['multiway+distill', 6],
    ]);
    for (const config of queue) expect({ ...config, method: base.method, distill: false, seed: 5 }).toEqual(base);
    expect(() =>
      studyQueue({ base: { ...base, seed: 2 ** 31 - 1 }, methods: [parseStudyMethod('joint')], seeds: 2 }),
    ).toThrow(/^joint: seed: /);
  });
});

describe('the study protocol', () => {
  it('validates study calls and events at the boundary', () => {
    expect(
      parseRequest(STUDIO_CONTRACT, 'startStudy', { config: {}, methods: [{ method: 'joint' }], seeds: 3 }),
    ).toEqual({
      config: {},
      methods: [{ method: 'joint', distill: false, gradientEquilibrium: false }],
      seeds: 3,
      executor: { kind: 'local' },
    });
    const slurm = { config: {}, methods: [{ method: 'joint' }], seeds: 1 };
    expect(
      parseRequest(STUDIO_CONTRACT, 'startStudy', { ...slurm, executor: { kind: 'slurm', partition: 'gpu' } }),
    ).toMatchObject({
      executor: { kind: 'slurm', partition: 'gpu', cpusPerRun: 1, sbatchArgs: [] },
    });
    expect(() =>
      parseRequest(STUDIO_CONTRACT, 'startStudy', {
        ...slurm,
        executor: { kind: 'slurm', sbatchArgs: ['--mem=4G', '--wrap=rm -rf ~'] },
      }),
    ).toThrow(/startStudy: executor\.sbatchArgs\.1: --wrap is set by the studio/);
    expect(() =>
      parseRequest(STUDIO_CONTRACT, 'startStudy', { ...slurm, executor: { kind: 'slurm', time: '1h' } }),
    ).toThrow(/executor\.time: time is minutes, HH:MM:SS or D-HH:MM:SS/);
    expect(() => parseRequest(STUDIO_CONTRACT, 'startStudy', { ...slurm, executor: { kind: 'pbs' } })).toThrow(
      /startStudy: executor/,
    );
    expect(() =>
      parseRequest(STUDIO_CONTRACT, 'startStudy', { config: {}, methods: [{ method: 'joint' }], seeds: 1.5 }),
    ).toThrow('startStudy: seeds: seeds must be a whole number');
    expect(() =>
      parseRequest(STUDIO_CONTRACT, 'startStudy', { methods: [{ method: 'joint' }], seeds: 101, more: 1 }),
    ).toThrow(/seeds is at most 100.*Unrecognized key/);
    expect(() => parseRequest(STUDIO_CONTRACT, 'resumeStudy', { study: '.hidden' })).toThrow(
      /resumeStudy: study: a study id is letters/,
    );
    expect(() => parseRequest(STUDIO_CONTRACT, 'stopStudy', { now: true })).toThrow(/stopStudy/);
    const record = newStudyRecord('s1', { base, methods: [parseStudyMethod('joint')], seeds: 1 });
    expect(StudioEventSchema.safeParse({ type: 'study', study: { record, rows: [], missing: [] } }).success).toBe(true);
    expect(
      StudioEventSchema.safeParse({
        type: 'study',
        study: { record: { ...record, status: 'done' }, rows: [], missing: [] },
      }).success,
    ).toBe(false);
  });
});

describe("the whole study's ETA", () => {
  const at = (seconds: number) => new Date(Date.UTC(2026, 11, 2, 12, 0, seconds)).toISOString();
  const now = Date.parse(at(0)) + 100_000;
  const record = (runs: StudyRecord['runs']): StudyRecord => ({
    ...newStudyRecord('s', { base, methods: [parseStudyMethod('joint')], seeds: runs.length }),
    runs,
  });

  it("is the live run's ETA plus the runs not started at the mean duration of the finished ones", () => {
    const runs = [
      { method: 'joint', seed: 5, run: 'a', startedAt: at(0), finishedAt: at(30) },
      { method: 'joint', seed: 6, run: 'b', startedAt: at(30), finishedAt: at(50) },
      { method: 'joint', seed: 7, run: 'c', startedAt: at(50) },
      { method: 'joint', seed: 8 },
      { method: 'joint', seed: 9 },
    ];
    expect(studyEtaSeconds(record(runs), 12, now)).toBe(12 + 2 * 25);
    expect(studyEtaSeconds(record(runs), undefined, now)).toBeUndefined();
  });

  it("before any run finished, takes the live run's expected duration for each run to come", () => {
    const runs = [
      { method: 'joint', seed: 5, run: 'a', startedAt: at(0) },
      { method: 'joint', seed: 6 },
    ];
    // 100 s elapsed plus 20 s to go: 120 s a run.
    expect(studyEtaSeconds(record(runs), 20, now)).toBe(20 + 120);
    expect(studyEtaSeconds(record([{ method: 'joint', seed: 5 }]), undefined, now)).toBeUndefined();
  });

  it('counts the runs to come in waves as wide as the runs training side by side (a Slurm array)', () => {
    const runs = [
      { method: 'joint', seed: 5, run: 'a', startedAt: at(0), finishedAt: at(40) },
      { method: 'joint', seed: 6, run: 'b', startedAt: at(40) },
      { method: 'joint', seed: 7, run: 'c', startedAt: at(40) },
      { method: 'joint', seed: 8 },
      { method: 'joint', seed: 9 },
      { method: 'joint', seed: 10 },
    ];
    // Two run at once: the three to come take two more 40 s waves after the live ones' 10 s.
    expect(studyEtaSeconds(record(runs), 10, now)).toBe(10 + 2 * 40);
  });
});
