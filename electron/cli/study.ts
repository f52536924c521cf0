/**
 * `mw-studio study`: one network trained under several methods and seeds, queued one after
 * another, then per-exit top-1 as mean and spread over the seeds with the exit tax against
 * plain BP. `mw-studio compare`: per-exit top-1 of finished runs side by side.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { exitComparison, exitTax, methodLabel, type StudyRow } from '../../shared/comparison.js';
import { exitLabel, formatPercent, formatPoints } from '../../shared/format.js';
import type { RunSummary } from '../../shared/metrics.js';
import { parseRunConfig } from '../../shared/spec.js';
import {
  ExecutorSchema,
  StudyIdSchema,
  StudyMethodsSchema,
  StudySeedsSchema,
  finishedRuns,
  parseStudyMethod,
  studyQueue,
  type Executor,
  type StudyRecord,
  type StudyView,
} from '../../shared/study.js';
import {
  checkSlurmSettings,
  createStudy,
  initBackend,
  readStudy,
  RunFolder,
  runSlurmStudy,
  runStudy,
  slurmFolder,
  studyPath,
} from '../engine/index.js';
import { ProgressReporter } from './progress.js';
import { renderTable } from './table.js';
import { configFromFlags, TRAIN_OPTIONS, trainOne } from './train.js';
import { UsageError } from './usage.js';

export const STUDY_USAGE = `mw-studio study --methods M1,M2,... [--seeds N] [--executor local|slurm ...] [train options]
  --methods LIST              methods to train, each plain|joint|pairwise|multiway with optional
                              +distill and +ge (gradient equilibrium), e.g.
                              plain,joint,multiway,multiway+distill
  --seeds N                   seeds per method: --seed, --seed + 1, ... (default 3)
  --executor local|slurm      where the runs train: here, one after another (default), or on a
                              Slurm cluster as one job array, watched from here
  Slurm settings (--executor slurm), each checked by the controller before anything is queued:
  --partition P  --account A  --time T (minutes, HH:MM:SS or D-HH:MM:SS, per run)
  --gpus-per-run N            as --gres=gpu:N     --cpus-per-run N   (default 1)
  --sbatch-arg=--NAME=VALUE   any other sbatch option, repeatable (e.g. --sbatch-arg=--mem=8G)
  every train option but --method, --distill and --gradient-equilibrium applies to all runs

mw-studio study --resume ID [--out DIR]
  continue a stopped or interrupted study (ID: its <ID>.study.json in the runs folder): each cut-short
  run from its checkpoint, then the rest; a Slurm study watches its jobs still queued or running again

mw-studio compare RUN_DIR RUN_DIR [...] [--json]
  per-exit top-1 of finished runs side by side, with each run's exit tax against the plain runs given`;

const STUDY_OPTIONS = {
  ...TRAIN_OPTIONS,
  methods: { type: 'string' },
  seeds: { type: 'string' },
  executor: { type: 'string' },
  partition: { type: 'string' },
  account: { type: 'string' },
  time: { type: 'string' },
  'gpus-per-run': { type: 'string' },
  'cpus-per-run': { type: 'string' },
  'sbatch-arg': { type: 'string', multiple: true },
} as const;

const percent = (fraction: number) => formatPercent(fraction, 2);

export function studyText(rows: readonly StudyRow[]): string {
  const exits = rows[0]?.exits ?? [];
  const header = ['method', 'runs', ...exits.map((e) => exitLabel(e)), 'exit tax (points)'];
  const body = rows.map((row) => [
    row.method,
    String(row.runs),
    ...row.exits.map((e) => `${percent(e.mean)} ± ${(e.spread * 100).toFixed(2)}`),
    row.exitTax === undefined ? '' : formatPoints(row.exitTax),
  ]);
  return `${renderTable(header, body)}\ntop-1 on the test set, mean ± sample standard deviation over the seeds; exit tax = mean final top-1 minus plain BP's`;
}

type StudyFlags = ReturnType<
  typeof parseArgs<{ options: typeof STUDY_OPTIONS; strict: true; allowPositionals: false }>
>['values'];

/** The Slurm settings' flags, by the field of SlurmSettingsSchema each sets. */
const SLURM_FLAGS = {
  partition: 'partition',
  account: 'account',
  time: 'time',
  gpusPerRun: 'gpus-per-run',
  cpusPerRun: 'cpus-per-run',
  sbatchArgs: 'sbatch-arg',
} as const;

/** --executor and its settings, validated by the shared schema; the first problem is named by its flag. */
export function executorFromFlags(flags: StudyFlags): Executor {
  const kind = flags.executor ?? 'local';
  const given = Object.values(SLURM_FLAGS).filter((flag) => flags[flag] !== undefined);
  if (kind === 'local') {
    if (given.length) throw new UsageError(`--${given[0]} applies to --executor slurm`);
    return { kind };
  }
  if (kind !== 'slurm') throw new UsageError(`--executor must be local or slurm, not "${kind}"`);
  const parsed = ExecutorSchema.safeParse({
    kind,
    ...(flags.partition !== undefined ? { partition: flags.partition } : {}),
    ...(flags.account !== undefined ? { account: flags.account } : {}),
    ...(flags.time !== undefined ? { time: flags.time } : {}),
    ...(flags['gpus-per-run'] !== undefined ? { gpusPerRun: Number(flags['gpus-per-run']) } : {}),
    ...(flags['cpus-per-run'] !== undefined ? { cpusPerRun: Number(flags['cpus-per-run']) } : {}),
    ...(flags['sbatch-arg'] ? { sbatchArgs: flags['sbatch-arg'] } : {}),
    ...(flags.backend ? { backend: flags.backend } : {}),
  });
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const field = issue.path[0] as keyof typeof SLURM_FLAGS | 'backend';
  throw new UsageError(`--${field === 'backend' ? 'backend' : SLURM_FLAGS[field]}: ${issue.message}`);
}

/** Prints each run's Slurm state as it changes: "run 2/4 plain, seed 8: RUNNING on node1". */
function slurmReporter(progress: ProgressReporter): (view: StudyView) => void {
  const shown = new Map<number, string>();
  return ({ record }) => {
    for (const [i, entry] of record.runs.entries()) {
      if (!entry.slurm) continue;
      const { job, state, reason, node } = entry.slurm;
      const text = `${state}${state === 'RUNNING' && node ? ` on ${node}` : ''}${reason && state !== 'RUNNING' ? ` (${reason})` : ''}`;
      if (shown.get(i) === `${job} ${text}`) continue;
      shown.set(i, `${job} ${text}`);
      progress.line(`run ${i + 1}/${record.runs.length} ${entry.method}, seed ${entry.seed}: job ${job} ${text}`);
    }
  };
}

/** Trains (or, on Slurm, watches) the study until it ends; Ctrl-C stops it (cancelling its jobs). */
async function runToEnd(
  runsRoot: string,
  record: StudyRecord,
  backendPreference: string | undefined,
  progress: ProgressReporter,
): Promise<StudyView> {
  if (record.executor?.kind !== 'slurm') {
    const backend = await initBackend(backendPreference);
    const queued = record.runs;
    progress.line(`backend: ${backend.label} on ${backend.device}; ${queued.length} runs queued`);
    return runStudy(runsRoot, record, {
      train: async (request, started, index) => {
        const { method, seed } = queued[index]!;
        progress.line(`study run ${index + 1}/${queued.length}: ${method}, seed ${seed}`);
        return (await trainOne(request, backend, progress, started)).summary;
      },
    });
  }
  const stop = new AbortController();
  const onSignal = () => {
    progress.line("cancelling the study's Slurm jobs (they checkpoint first)...");
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await runSlurmStudy(runsRoot, record, {
      signal: stop.signal,
      onUpdate: slurmReporter(progress),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function study(argv: string[]): Promise<number> {
  const { values: flags } = parseArgs({ args: argv, options: STUDY_OPTIONS, strict: true, allowPositionals: false });
  for (const owned of ['method', 'distill', 'gradient-equilibrium'] as const) {
    if (flags[owned] !== undefined)
      throw new UsageError(`--${owned} is set per run by the study; give --methods instead`);
  }
  const runsRoot = resolve(flags.out ?? 'runs');
  const progress = new ProgressReporter();
  let record: StudyRecord;
  if (flags.resume !== undefined) {
    const given = Object.keys(flags).filter((f) => !['resume', 'out', 'backend', 'json'].includes(f));
    if (given.length)
      throw new UsageError(
        `--${given[0]} cannot change a study being continued; --resume takes only --out and --backend`,
      );
    const id = StudyIdSchema.safeParse(flags.resume);
    if (!id.success) throw new UsageError(`--resume: ${id.error.issues[0]!.message}`);
    record = await readStudy(runsRoot, id.data);
    if (record.status === 'completed') throw new UsageError(`study ${record.id} has completed; nothing to continue`);
    if (record.status === 'running')
      throw new UsageError(`study ${record.id} is being trained by process ${record.pid}; stop that one first`);
  } else {
    if (!flags.methods)
      throw new UsageError('--methods is required, e.g. --methods plain,joint,multiway,multiway+distill');
    const methods = StudyMethodsSchema.safeParse(flags.methods.split(',').map(parseStudyMethod));
    if (!methods.success) throw new UsageError(`--methods: ${methods.error.issues[0]!.message}`);
    const seeds = StudySeedsSchema.safeParse(Number(flags.seeds ?? 3));
    if (!seeds.success) throw new UsageError(`--seeds: ${seeds.error.issues[0]!.message}`);
    const executor = executorFromFlags(flags);
    // Every config is validated before the first run starts, so a bad combination fails at once.
    const plan = { base: parseRunConfig(configFromFlags(flags)), methods: methods.data, seeds: seeds.data, executor };
    const queue = studyQueue(plan);
    // The controller checks the settings before the study exists: a refusal leaves nothing behind.
    if (executor.kind === 'slurm') await checkSlurmSettings(executor, queue.length);
    record = await createStudy(runsRoot, plan);
  }
  progress.line(`study: ${studyPath(runsRoot, record.id)}`);
  if (record.executor?.kind === 'slurm')
    progress.line(`Slurm: job script and logs in ${slurmFolder(runsRoot, record.id)}`);
  const result = await runToEnd(runsRoot, record, flags.backend, progress);
  if (result.record.status !== 'completed') {
    const why = result.record.message ? ` (${result.record.message})` : '';
    progress.line(
      `study ${result.record.status}${why}; the ${finishedRuns(result.record)} finished runs are in ${runsRoot}; continue with: mw-studio study --resume ${record.id} --out ${runsRoot}`,
    );
    return result.record.status === 'failed' ? 1 : 130;
  }
  const runs = result.record.runs.map((r) => join(runsRoot, r.run!));
  process.stdout.write(`\n${studyText(result.rows)}\n`);
  if (flags.json) process.stdout.write(`${JSON.stringify({ study: record.id, runs, rows: result.rows })}\n`);
  return 0;
}

export async function compare(argv: string[]): Promise<number> {
  const { values: flags, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length < 2) throw new UsageError('give two or more run folders to compare');
  const summaries: RunSummary[] = [];
  for (const dir of positionals) {
    const summary = await (await RunFolder.open(dir)).summary();
    if (!summary) throw new UsageError(`${dir} has not finished (no summary.json); compare finished runs`);
    summaries.push(summary);
  }
  const rows = exitComparison(summaries);
  const taxes = summaries.map((s) => exitTax(s, summaries));
  const header = ['exit', ...summaries.map((s, i) => `${i + 1}: ${methodLabel(s.config)} s${s.config.seed}`)];
  const body = rows.map((row) => [exitLabel(row), ...row.top1.map((t) => (t === undefined ? '' : percent(t)))]);
  body.push(['exit tax (points)', ...taxes.map((t) => (t ? formatPoints(t.difference) : ''))]);
  const legend = summaries.map((s, i) => `${i + 1}: ${s.network}, ${s.run}`).join('\n');
  process.stdout.write(`${renderTable(header, body)}\n${legend}\n`);
  if (flags.json)
    process.stdout.write(`${JSON.stringify({ runs: summaries.map((s) => s.run), exits: rows, exitTax: taxes })}\n`);
  return 0;
}
