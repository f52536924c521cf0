/**
 * A study whose runs train on a Slurm cluster: one job array per submission, each element
 * `mw-studio train --resume` on a run folder the engine created with its validated config. The
 * engine only watches: it polls the elements' states into the study record (the same
 * `<id>.study.json`), reads results from the run folders (the cluster's shared filesystem),
 * resubmits runs Slurm cut short (TIMEOUT, PREEMPTED, NODE_FAIL, a warning SIGTERM the trainer
 * checkpointed on) a bounded number of times, and cancels the arrays when stopped. When the
 * engine goes away the jobs go on; continuing the study watches them again and resubmits only
 * the runs whose jobs ended unfinished.
 */
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import {
  MAX_SLURM_RESUBMITS,
  SLURM_LIVE_STATES,
  SLURM_RESUBMIT_STATES,
  studyQueue,
  type StudyRecord,
  type StudyView,
} from '../../shared/study.js';
import { SlurmError, messageOf } from './errors.js';
import { RunFolder } from './runs/store.js';
import {
  accountedStates,
  cancelArrays,
  elementStates,
  submitArray,
  type ArrayElement,
  type ElementState,
} from './slurm.js';
import { studyKeeper } from './study.js';

export interface SlurmStudyOptions {
  onUpdate?: (view: StudyView) => void;
  /** Stop: cancel the study's jobs, wait until they are gone, mark it stopped. */
  signal?: AbortSignal;
  /** Stop watching and leave the jobs running (the engine is shutting down). */
  detach?: AbortSignal;
  /** How often the job states are read (default: MW_SLURM_POLL_SECONDS, else 10 s); Slurm sites ask for a modest rate. */
  pollMs?: number;
}

const DEFAULT_POLL_MS = 10_000;
/** Consecutive failed polls (an unreachable controller) before the study stops watching, as failed. */
const POLL_FAILURES = 6;
/** How long cancelled jobs get to checkpoint and leave the queue before a stop gives up waiting. */
const CANCEL_WAIT_MS = 180_000;

/** The folder beside the study record with its job script and the jobs' logs: `<id>.slurm/`. */
export function slurmFolder(runsRoot: string, id: string): string {
  return join(runsRoot, `${id}.slurm`);
}

const isLive = (state: string) => SLURM_LIVE_STATES.includes(state);
const arrayOf = (job: string) => job.split('_')[0]!;

/** Resolves after `ms`, or at once when a signal aborts. */
function pause(ms: number, signals: (AbortSignal | undefined)[]): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      for (const s of signals) s?.removeEventListener('abort', finish);
      done();
    }
    for (const s of signals) s?.addEventListener('abort', finish, { once: true });
  });
}

export async function runSlurmStudy(
  runsRoot: string,
  start: StudyRecord,
  options: SlurmStudyOptions = {},
): Promise<StudyView> {
  const executor = start.executor;
  if (executor?.kind !== 'slurm') throw new SlurmError(`study ${start.id} does not use the Slurm executor`);
  const queue = studyQueue(start);
  const { record, save, finish } = studyKeeper(runsRoot, start, options.onUpdate);
  const folder = slurmFolder(runsRoot, record.id);
  const pollMs = options.pollMs ?? (Number(process.env.MW_SLURM_POLL_SECONDS) * 1000 || DEFAULT_POLL_MS);

  /** Arrays that still hold an unfinished run of the study. */
  const liveArrays = () => [
    ...new Set(
      record.runs.flatMap((r) => (r.slurm && !r.finishedAt && isLive(r.slurm.state) ? [arrayOf(r.slurm.job)] : [])),
    ),
  ];

  /** Submits the given runs (indices into the queue) as one array, creating the folders of runs never started. */
  const submit = async (indices: number[], resubmitted: boolean): Promise<void> => {
    const created: string[] = [];
    const elements: ArrayElement[] = [];
    for (const i of indices) {
      const entry = record.runs[i]!;
      if (!entry.run) {
        const dir = (await RunFolder.create(runsRoot, queue[i]!)).dir;
        created.push(dir);
        entry.run = basename(dir);
      }
      elements.push({ index: i, dir: join(runsRoot, entry.run) });
    }
    let array: string;
    try {
      array = await submitArray(record.id, folder, elements, executor);
    } catch (error) {
      // Nothing was queued: the folders made for it would only be empty runs.
      for (const dir of created) await rm(dir, { recursive: true, force: true });
      for (const i of indices) if (created.includes(join(runsRoot, record.runs[i]!.run!))) delete record.runs[i]!.run;
      throw error;
    }
    for (const i of indices) {
      const entry = record.runs[i]!;
      entry.slurm = {
        job: `${array}_${i}`,
        state: 'PENDING',
        resubmits: (entry.slurm?.resubmits ?? 0) + (resubmitted ? 1 : 0),
      };
    }
    await save();
  };

  /** Slurm's word on every unfinished run with a job: squeue, then sacct for jobs squeue forgot. */
  const readStates = async (): Promise<Map<string, ElementState>> => {
    const jobs = record.runs.flatMap((r) => (r.slurm && !r.finishedAt ? [r.slurm.job] : []));
    const states = await elementStates([...new Set(jobs.map(arrayOf))]);
    const forgotten = jobs.filter((job) => !states.has(job));
    for (const [job, state] of await accountedStates(forgotten)) states.set(job, state);
    return states;
  };

  /**
   * Applies Slurm's states to the record. Runs whose jobs ended are finished when their folder
   * holds a summary; otherwise they are returned as `ended`, each with why.
   */
  const apply = async (
    states: Map<string, ElementState>,
  ): Promise<{ ended: { index: number; why: string; resubmittable: boolean }[] }> => {
    const ended: { index: number; why: string; resubmittable: boolean }[] = [];
    for (const [index, entry] of record.runs.entries()) {
      if (entry.finishedAt || !entry.slurm) continue;
      const slurm = entry.slurm;
      const state = states.get(slurm.job) ?? { state: isLive(slurm.state) ? 'GONE' : slurm.state };
      slurm.state = state.state;
      if (state.reason) slurm.reason = state.reason;
      else delete slurm.reason;
      if (state.node) slurm.node = state.node;
      if (isLive(state.state)) {
        if (state.state === 'RUNNING') entry.startedAt ??= new Date().toISOString();
        continue;
      }
      const run = await RunFolder.open(join(runsRoot, entry.run!));
      const summary = await run.summary();
      if (summary) {
        // Finished between two looks: it started its training time before it finished.
        entry.startedAt ??= new Date(Date.parse(summary.finishedAt) - summary.trainSeconds * 1000).toISOString();
        entry.finishedAt = summary.finishedAt;
        continue;
      }
      const runState = await run.state();
      // A trainer that checkpointed on Slurm's SIGTERM (a warning signal, or scancel --signal=TERM) ends "stopped".
      const checkpointed = runState?.status === 'stopped' && state.state !== 'CANCELLED';
      const resubmittable = SLURM_RESUBMIT_STATES.includes(state.state) || checkpointed;
      const said = runState?.message ? `: ${runState.message}` : '';
      ended.push({
        index,
        resubmittable,
        why: `${entry.method}, seed ${entry.seed}: Slurm job ${slurm.job} ended ${state.state}${said} (log: ${join(folder, `slurm-${slurm.job}.out`)})`,
      });
    }
    return { ended };
  };

  await save();
  try {
    // Continuing: the jobs still queued or running are watched, the runs whose jobs ended unfinished go again.
    const { ended } = await apply(await readStates());
    const unsubmitted = record.runs.flatMap((r, i) => (!r.finishedAt && !r.slurm ? [i] : []));
    const again = [...ended.map((e) => e.index), ...unsubmitted].sort((a, b) => a - b);
    if (again.length) await submit(again, false);
    else await save();

    const failures: string[] = [];
    let cancelledOutside: string | undefined;
    let failedPolls = 0;
    while (record.runs.some((r) => !r.finishedAt && r.slurm && isLive(r.slurm.state))) {
      await pause(pollMs, [options.signal, options.detach]);
      if (options.detach?.aborted)
        return finish(
          'interrupted',
          'the studio stopped watching; the Slurm jobs go on, and Continue watches them again',
        );
      if (options.signal?.aborted) return await cancel();
      let states: Map<string, ElementState>;
      try {
        states = await readStates();
        failedPolls = 0;
      } catch (error) {
        if (!(error instanceof SlurmError) || ++failedPolls < POLL_FAILURES) continue;
        throw error;
      }
      const before = JSON.stringify(record.runs);
      const { ended } = await apply(states);
      const retry = ended.filter(
        (e) => e.resubmittable && record.runs[e.index]!.slurm!.resubmits < MAX_SLURM_RESUBMITS,
      );
      for (const e of ended) {
        if (retry.includes(e)) continue;
        if (record.runs[e.index]!.slurm!.state === 'CANCELLED') cancelledOutside = e.why;
        else failures.push(e.resubmittable ? `${e.why}; resubmitted ${MAX_SLURM_RESUBMITS} times already` : e.why);
      }
      // Saved first, so the record (and whoever watches it) sees how a job ended before its successor.
      if (JSON.stringify(record.runs) !== before) await save();
      if (retry.length)
        await submit(
          retry.map((e) => e.index),
          true,
        );
    }
    if (failures.length) return finish('failed', failures.join('; '));
    if (cancelledOutside) return finish('stopped', `cancelled outside the studio: ${cancelledOutside}`);
    return finish('completed');
  } catch (error) {
    await finish('failed', messageOf(error));
    throw error;
  }

  /** Cancels the study's arrays and waits (a bounded time) until their jobs have left the queue. */
  async function cancel(): Promise<StudyView> {
    const arrays = liveArrays();
    await cancelArrays(arrays);
    const deadline = Date.now() + CANCEL_WAIT_MS;
    do {
      await apply(await readStates());
      if (!liveArrays().length) break;
      await pause(Math.min(pollMs, 1000), []);
    } while (Date.now() < deadline);
    return finish('stopped');
  }
}
