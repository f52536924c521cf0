/**
 * Studies in the engine: the queue every face trains one run after another (the CLI's
 * `mw-studio study`, the studio's Study view), and each study's record, `<id>.study.json` in the
 * runs root. The record is rewritten atomically as each run starts and finishes, so a crash
 * loses at most the run in progress (which continues from its checkpoint when the study does),
 * and the result is always rebuilt from the run folders' summaries.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { studyTable } from '../../shared/comparison.js';
import { archSlug } from '../../shared/spec.js';
import type { RunSummary } from '../../shared/metrics.js';
import {
  STUDY_FILE_SUFFIX,
  StudyRecordSchema,
  newStudyRecord,
  studyQueue,
  type StudyList,
  type StudyPlan,
  type StudyRecord,
  type StudyView,
} from '../../shared/study.js';
import { statIfExists } from './data/files.js';
import { FileError, readJsonFile, writeJsonAtomic } from './runs/files.js';
import { RunFolder, isAlive } from './runs/store.js';
import type { RunRequest } from './session.js';

/**
 * Trains one run of a study the face's way (its events, its stop button): opens the run, calls
 * `started` with its folder before training, and resolves with its summary, or undefined when
 * the run was stopped. `index` is the run's place in the record's queue (`record.runs`).
 */
export type StudyTrain = (
  request: RunRequest,
  started: (run: string) => Promise<void>,
  index: number,
) => Promise<RunSummary | undefined>;

export interface StudyOptions {
  train: StudyTrain;
  /** Each change of the record, with the result so far. */
  onUpdate?: (view: StudyView) => void;
  /** Once aborted, no further run starts; stopping the live one is the face's (its trainer's stop). */
  signal?: AbortSignal;
}

export function studyPath(runsRoot: string, id: string): string {
  return join(runsRoot, `${id}${STUDY_FILE_SUFFIX}`);
}

/** "2026-12-02_13-20-00_resnet8_study": sortable by time, like run folders. */
function studyId(plan: StudyPlan, now: Date): string {
  const stamp = now.toISOString().slice(0, 19).replace('T', '_').replaceAll(':', '-');
  return `${stamp}_${archSlug(plan.base.arch)}_study`;
}

/** Validates the plan (every run config), then writes the new study's record under a unique id. */
export async function createStudy(runsRoot: string, plan: StudyPlan, now = new Date()): Promise<StudyRecord> {
  const base = studyId(plan, now);
  const record = newStudyRecord(base, plan, now);
  await mkdir(runsRoot, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const id = attempt === 1 ? base : `${base}-${attempt}`;
    if (await statIfExists(studyPath(runsRoot, id))) continue;
    const created = { ...record, id };
    await writeJsonAtomic(studyPath(runsRoot, id), created);
    return created;
  }
}

/** A study's record; one left running by a process that is gone reads as interrupted. */
export async function readStudy(runsRoot: string, id: string): Promise<StudyRecord> {
  const record = await readJsonFile(studyPath(runsRoot, id), StudyRecordSchema);
  if (record.id !== id) throw new FileError(`${studyPath(runsRoot, id)}: holds study ${record.id}`);
  const orphaned = record.status === 'running' && (record.pid === undefined || !isAlive(record.pid));
  return orphaned ? { ...record, status: 'interrupted' } : record;
}

/**
 * The study and its result so far: per-exit mean ± spread per method over its finished runs.
 * A finished run whose folder cannot be read (the user deleted it) is left out and named.
 */
export async function studyView(runsRoot: string, record: StudyRecord): Promise<StudyView> {
  const summaries: RunSummary[] = [];
  const missing: string[] = [];
  for (const entry of record.runs) {
    if (!entry.finishedAt || !entry.run) continue;
    try {
      const summary = await (await RunFolder.open(join(runsRoot, entry.run))).summary();
      if (!summary) throw new FileError(`${join(runsRoot, entry.run)}: no summary.json`);
      summaries.push(summary);
    } catch (error) {
      if (!(error instanceof FileError)) throw error;
      missing.push(error.message);
    }
  }
  return { record, rows: studyTable(summaries), missing };
}

/** Every study in the runs root with its result, newest first; a study file that cannot be read is a problem, not a failure. */
export async function listStudies(runsRoot: string): Promise<StudyList> {
  const files = (await statIfExists(runsRoot)) ? await readdir(runsRoot) : [];
  const ids = files
    .filter((f) => f.endsWith(STUDY_FILE_SUFFIX) && !f.startsWith('.'))
    .map((f) => f.slice(0, -STUDY_FILE_SUFFIX.length))
    .sort()
    .reverse();
  const studies: StudyView[] = [];
  const problems: string[] = [];
  for (const id of ids) {
    try {
      studies.push(await studyView(runsRoot, await readStudy(runsRoot, id)));
    } catch (error) {
      if (!(error instanceof FileError)) throw error;
      problems.push(error.message);
    }
  }
  return { studies, problems };
}

/**
 * The record of a study being trained, kept by its runner: marked running by this process,
 * rewritten atomically at each `save` (which hands the view to `onUpdate`), closed by `finish`.
 */
export function studyKeeper(runsRoot: string, start: StudyRecord, onUpdate?: (view: StudyView) => void) {
  const record: StudyRecord = {
    ...start,
    runs: structuredClone(start.runs),
    status: 'running',
    pid: process.pid,
  };
  delete record.message;
  const save = async (): Promise<StudyView> => {
    await writeJsonAtomic(studyPath(runsRoot, record.id), record);
    const view = await studyView(runsRoot, structuredClone(record));
    onUpdate?.(view);
    return view;
  };
  const finish = (status: StudyRecord['status'], message?: string): Promise<StudyView> => {
    record.status = status;
    delete record.pid;
    if (message) record.message = message;
    return save();
  };
  return { record, save, finish };
}

/**
 * Trains the study's runs that have not finished, in order, one at a time: a new run for each
 * one not started, the run itself (from its checkpoint) for one a stop or a crash cut short.
 * Resolves with the study stopped, or completed; a failed run marks it failed and rethrows.
 */
export async function runStudy(runsRoot: string, start: StudyRecord, options: StudyOptions): Promise<StudyView> {
  const queue = studyQueue(start);
  const { record, save, finish } = studyKeeper(runsRoot, start, options.onUpdate);
  await save();
  for (const [i, config] of queue.entries()) {
    const entry = record.runs[i]!;
    if (entry.finishedAt) continue;
    if (options.signal?.aborted) return finish('stopped');
    const dir = entry.run && join(runsRoot, entry.run);
    // A run that finished just before a crash kept its summary: it counts, untrained again.
    let summary = dir ? await (await RunFolder.open(dir)).summary() : undefined;
    if (!summary) {
      const request: RunRequest = dir ? { kind: 'resume', dir } : { kind: 'new', config, runsRoot };
      try {
        summary = await options.train(
          request,
          async (run) => {
            entry.run = basename(run);
            entry.startedAt ??= new Date().toISOString();
            await save();
          },
          i,
        );
      } catch (error) {
        await finish('failed', `${entry.method}, seed ${entry.seed}: ${(error as Error).message}`);
        throw error;
      }
      if (!summary) return finish('stopped');
    }
    entry.finishedAt = summary.finishedAt;
    await save();
  }
  return finish('completed');
}
