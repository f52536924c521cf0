/**
 * Studies through the engine host, as the studio drives them: real (tiny) training on the
 * embedded data and the portable backend, one run after another, the study file re-read from
 * disk, stopping and continuing, and bad calls refused at the boundary.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ApiError, StudioEventSchema, type StudioEvent } from '../../shared/api.js';
import { mean, spread } from '../../shared/comparison.js';
import type { RunEvent, RunSummary } from '../../shared/metrics.js';
import { ConfigError, type RunConfigInput } from '../../shared/spec.js';
import type { StudyList, StudyView } from '../../shared/study.js';
import { initBackend, type BackendInfo } from '../../electron/engine/backend/index.js';
import { EngineHost } from '../../electron/engine/host.js';
import { RunFolder } from '../../electron/engine/runs/store.js';
import { listStudies, readStudy, studyPath } from '../../electron/engine/study.js';
import { callHost } from './helpers.js';

const run = promisify(execFile);

let backend: BackendInfo;
beforeAll(async () => {
  backend = await initBackend('wasm');
});

const CONFIG: RunConfigInput = {
  dataset: 'embedded',
  arch: { family: 'resnet', depth: 8, width: 0.5, exits: [1, 2] },
  method: 'multiway',
  gamma: 2,
  epochs: 1,
  batchSize: 32,
  lr: 0.05,
  seed: 7,
  validationSplit: 0,
  limitTrain: 64,
  limitTest: 32,
};

/** A host on a fresh runs root, recording every event it pushes (each checked against the protocol's schema). */
async function studioHost(onEvent?: (event: StudioEvent, host: EngineHost) => void) {
  const runsRoot = await mkdtemp(join(tmpdir(), 'mw-study-'));
  const events: StudioEvent[] = [];
  const host: EngineHost = new EngineHost({
    backend,
    runsRoot,
    latency: { warmup: 1, minRepeats: 2, maxRepeats: 2 },
    emit: (event) => {
      events.push(StudioEventSchema.parse(event));
      onEvent?.(event, host);
    },
  });
  const studyEvents = () => events.flatMap((e) => (e.type === 'study' ? [e.study] : []));
  const runEvents = () => events.flatMap((e): RunEvent[] => (e.type === 'run' ? e.events : []));
  /** Resolves with the study's view once it is no longer running, looking at events from index `from` on. */
  const settled = async (from = 0): Promise<StudyView> => {
    for (;;) {
      const last = studyEvents().slice(from).at(-1);
      if (last && last.record.status !== 'running') return last;
      await new Promise((done) => setTimeout(done, 100));
    }
  };
  return { runsRoot, host, events, studyEvents, runEvents, settled };
}

async function summaryOf(runsRoot: string, run: string): Promise<RunSummary> {
  return (await (await RunFolder.open(join(runsRoot, run))).summary())!;
}

describe('a study in the engine', () => {
  it('trains 2 methods x 2 seeds one run at a time, records them and summarizes per exit over the seeds', async () => {
    const { runsRoot, host, studyEvents, runEvents, settled } = await studioHost();
    const { study } = (await callHost(host, 'startStudy', {
      config: CONFIG,
      methods: [{ method: 'plain' }, { method: 'multiway', distill: true }],
      seeds: 2,
    })) as { study: string };
    // The engine trains one thing at a time: no single run while the study owns it.
    await expect(callHost(host, 'startRun', { config: CONFIG })).rejects.toThrow(/study .* is training; stop it first/);
    expect(((await callHost(host, 'getInfo', {})) as { activeStudy?: string }).activeStudy).toBe(study);

    const done = await settled();
    expect(done.record.status).toBe('completed');
    expect(done.record.runs.map((r) => [r.method, r.seed])).toEqual([
      ['plain', 7],
      ['plain', 8],
      ['multiway+distill', 7],
      ['multiway+distill', 8],
    ]);
    // Each run started only after the one before it had finished.
    const order = runEvents().flatMap((e) =>
      e.type === 'started' ? [`start ${e.start.run}`] : e.type === 'finished' ? [`end ${e.summary.run}`] : [],
    );
    const folders = done.record.runs.map((r) => join(runsRoot, r.run!));
    expect(order).toEqual(folders.flatMap((dir) => [`start ${dir}`, `end ${dir}`]));
    // Progress: the record at every run's start and end, finished runs counting up.
    expect(studyEvents().map((v) => v.record.runs.filter((r) => r.finishedAt).length)).toEqual([
      0, 0, 1, 1, 2, 2, 3, 3, 4, 4,
    ]);

    // The persisted study is what the host reported, and its result is rebuilt from the run folders.
    expect(await readStudy(runsRoot, study)).toEqual(done.record);
    expect(await listStudies(runsRoot)).toEqual({ studies: [done], problems: [] });
    expect(done.missing).toEqual([]);
    const summaries = await Promise.all(done.record.runs.map((r) => summaryOf(runsRoot, r.run!)));
    expect(summaries.map((s) => [s.config.method, s.config.distill, s.config.seed])).toEqual([
      ['plain', false, 7],
      ['plain', false, 8],
      ['multiway', true, 7],
      ['multiway', true, 8],
    ]);
    // Under self-distillation the step losses are each exit's objective, with the cross-entropy beside them.
    const steps = async (run: string) =>
      (await (await RunFolder.open(join(runsRoot, run))).metrics()).records.flatMap((r) =>
        r.type === 'batch' ? [r] : [],
      );
    expect((await steps(done.record.runs[0]!.run!)).every((b) => b.crossEntropy === undefined)).toBe(true);
    const distilledSteps = await steps(done.record.runs[2]!.run!);
    expect(distilledSteps.length).toBeGreaterThan(0);
    for (const b of distilledSteps) {
      expect(b.crossEntropy).toHaveLength(3);
      expect(b.losses[0]).not.toBe(b.crossEntropy![0]);
      expect(b.losses[2]).toBe(b.crossEntropy![2]);
    }
    const [plain, multiway] = done.rows;
    expect([plain!.method, plain!.runs, multiway!.method, multiway!.runs]).toEqual(['plain', 2, 'multiway+distill', 2]);
    multiway!.exits.forEach((exit, k) => {
      const top1 = summaries.slice(2).map((s) => s.exits[k]!.top1);
      expect(exit.mean).toBeCloseTo(mean(top1), 12);
      expect(exit.spread).toBeCloseTo(spread(top1), 12);
    });
    const finals = summaries.map((s) => s.exits.at(-1)!.top1);
    expect(multiway!.exitTax).toBeCloseTo(mean(finals.slice(2)) - mean(finals.slice(0, 2)), 12);
    expect(plain!.exitTax).toBeUndefined();
  });

  it('stops during a run, and continues with that run from its checkpoint', async () => {
    let stopped = false;
    const { runsRoot, host, runEvents, studyEvents, settled } = await studioHost((event, h) => {
      // Stop once the first run is training (its first batch).
      if (!stopped && event.type === 'run' && event.events.some((e) => e.type === 'batch')) {
        stopped = true;
        void callHost(h, 'stopStudy', {});
      }
    });
    const { study } = (await callHost(host, 'startStudy', {
      // 8 steps an epoch: the stop lands well before the end.
      config: { ...CONFIG, epochs: 2, limitTrain: 256 },
      methods: [{ method: 'joint' }],
      seeds: 2,
    })) as { study: string };
    const halted = await settled();
    expect(halted.record.status).toBe('stopped');
    const [first, second] = halted.record.runs;
    expect(first!.run).toBeDefined();
    expect(first!.finishedAt).toBeUndefined();
    expect(second!.run).toBeUndefined();
    expect(halted.rows).toEqual([]);
    expect((await readStudy(runsRoot, study)).status).toBe('stopped');
    expect(runEvents().filter((e) => e.type === 'started')).toHaveLength(1);

    const before = studyEvents().length;
    await callHost(host, 'resumeStudy', { study });
    const resumed = await settled(before);
    expect(resumed.record.status).toBe('completed');
    expect(resumed.record.runs[0]!.run).toBe(first!.run);
    const starts = runEvents().flatMap((e) => (e.type === 'started' ? [e.start] : []));
    expect(starts.map((s) => [s.run, s.resumedFrom !== undefined])).toEqual([
      [join(runsRoot, first!.run!), false],
      [join(runsRoot, first!.run!), true],
      [join(runsRoot, resumed.record.runs[1]!.run!), false],
    ]);
    expect(resumed.rows.map((r) => [r.method, r.runs])).toEqual([['joint', 2]]);
    await expect(callHost(host, 'resumeStudy', { study })).rejects.toThrow(/has completed/);
  });

  it("is the same queue and record under the CLI's `mw-studio study`", async () => {
    const runsRoot = await mkdtemp(join(tmpdir(), 'mw-study-cli-'));
    const args = ['--methods', 'plain,joint', '--seeds', '1', '--depth', '8', '--width', '0.5', '--exits', '1,2'];
    const tiny = ['--epochs', '1', '--batch', '32', '--limit-train', '64', '--limit-test', '32', '--validation', '0'];
    const { stdout } = await run(
      process.execPath,
      ['bin/mw-studio.js', 'study', ...args, ...tiny, '--out', runsRoot, '--json'],
      {
        env: { ...process.env, MW_BACKEND: 'wasm' },
      },
    );
    const printed = JSON.parse(stdout.trim().split('\n').at(-1)!) as { study: string; runs: string[]; rows: unknown };
    const record = await readStudy(runsRoot, printed.study);
    expect(record.status).toBe('completed');
    expect(record.runs.map((r) => [r.method, join(runsRoot, r.run!)])).toEqual([
      ['plain', printed.runs[0]],
      ['joint', printed.runs[1]],
    ]);
    const {
      studies: [listed],
    } = await listStudies(runsRoot);
    expect(listed!.rows).toEqual(printed.rows);
    expect(stdout).toMatch(/^joint +1 +.* ± 0\.00/m);

    // A run folder deleted afterwards is left out of the result and named; a corrupt study file is a problem, not a failure.
    await rm(printed.runs[0]!, { recursive: true });
    await writeFile(join(runsRoot, 'broken.study.json'), '{"id": ');
    const after = await listStudies(runsRoot);
    expect(after.problems).toEqual([expect.stringMatching(/broken\.study\.json: not valid JSON/)]);
    expect(after.studies.map((v) => [v.record.id, v.rows.map((r) => r.method), v.missing])).toEqual([
      [printed.study, ['joint'], [`${printed.runs[0]}: not a run folder (no such directory)`]],
    ]);
  });

  it('reads a study whose engine process died as interrupted', async () => {
    const runsRoot = await mkdtemp(join(tmpdir(), 'mw-study-'));
    const host = new EngineHost({ backend, runsRoot, emit: () => {} });
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    const id = '2026-12-02_10-00-00_resnet8_study';
    const record = {
      id,
      createdAt: '2026-12-02T10:00:00.000Z',
      base: { ...CONFIG, momentum: 0.9 },
      methods: [{ method: 'plain', distill: false, gradientEquilibrium: false }],
      seeds: 1,
      runs: [{ method: 'plain', seed: 7 }],
      status: 'running',
      pid: dead,
    };
    await writeFile(studyPath(runsRoot, id), JSON.stringify(record));
    expect((await readStudy(runsRoot, id)).status).toBe('interrupted');
    const {
      studies: [view],
    } = (await callHost(host, 'listStudies', {})) as StudyList;
    expect(view!.record.status).toBe('interrupted');
    // A record that names a run folder outside the runs root is not a study.
    await writeFile(
      studyPath(runsRoot, id),
      JSON.stringify({ ...record, runs: [{ method: 'plain', seed: 7, run: '../x' }] }),
    );
    await expect(readStudy(runsRoot, id)).rejects.toThrow(/runs\.0\.run: a run folder name is letters/);
  });

  it('refuses bad study calls at the boundary, before any file is written', async () => {
    const { runsRoot, host } = await studioHost();
    const start = (payload: object) => callHost(host, 'startStudy', { config: CONFIG, ...payload });
    await expect(start({ methods: [{ method: 'plain' }], seeds: 0 })).rejects.toThrow(
      new ApiError('startStudy: seeds: seeds must be at least 1'),
    );
    await expect(start({ methods: [], seeds: 1 })).rejects.toThrow(
      /startStudy: methods: a study needs at least one method/,
    );
    await expect(start({ methods: [{ method: 'joint' }, { method: 'joint' }], seeds: 1 })).rejects.toThrow(
      /methods: methods must not repeat/,
    );
    await expect(start({ methods: [{ method: 'sideways' }], seeds: 1 })).rejects.toThrow(/methods\.0\.method/);
    await expect(start({ methods: [{ method: 'plain', extra: 1 }], seeds: 1 })).rejects.toThrow(ApiError);
    // Whole-config rules come back per method, in the engine's words.
    await expect(start({ methods: [{ method: 'plain', distill: true }], seeds: 1 })).rejects.toThrow(
      new ConfigError(
        "plain+distill: method: distillation trains the auxiliary exits' backbone, which plain BP does not; use joint, multiway or pairwise",
      ),
    );
    const badDepth = { ...CONFIG, arch: { family: 'resnet', depth: 9, width: 1 } };
    await expect(start({ config: badDepth, methods: [{ method: 'plain' }], seeds: 1 })).rejects.toThrow(
      /arch\.depth: ResNet depth must be 6n\+2/,
    );
    await expect(callHost(host, 'resumeStudy', { study: '../elsewhere' })).rejects.toThrow(/resumeStudy: study/);
    await expect(callHost(host, 'resumeStudy', { study: 'nope' })).rejects.toThrow(/nope\.study\.json: file not found/);
    await expect(callHost(host, 'stopStudy', {})).rejects.toThrow(/no study is training/);
    expect(await callHost(host, 'listStudies', {})).toEqual({ studies: [], problems: [] });
    expect(await readdir(runsRoot)).toEqual([]);
  });
});
