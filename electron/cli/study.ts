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
  StudyMethodsSchema,
  StudySeedsSchema,
  finishedRuns,
  parseStudyMethod,
  studyQueue,
} from '../../shared/study.js';
import { createStudy, initBackend, RunFolder, runStudy, studyPath } from '../engine/index.js';
import { ProgressReporter } from './progress.js';
import { renderTable } from './table.js';
import { configFromFlags, TRAIN_OPTIONS, trainOne } from './train.js';
import { UsageError } from './usage.js';

export const STUDY_USAGE = `mw-studio study --methods M1,M2,... [--seeds N] [train options]
  --methods LIST              methods to train, each plain|joint|pairwise|multiway with optional
                              +distill and +ge (gradient equilibrium), e.g.
                              plain,joint,multiway,multiway+distill
  --seeds N                   seeds per method: --seed, --seed + 1, ... (default 3)
  every train option but --method, --distill, --gradient-equilibrium and --resume applies to all runs

mw-studio compare RUN_DIR RUN_DIR [...] [--json]
  per-exit top-1 of finished runs side by side, with each run's exit tax against the plain runs given`;

const STUDY_OPTIONS = { ...TRAIN_OPTIONS, methods: { type: 'string' }, seeds: { type: 'string' } } as const;

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

export async function study(argv: string[]): Promise<number> {
  const { values: flags } = parseArgs({ args: argv, options: STUDY_OPTIONS, strict: true, allowPositionals: false });
  for (const owned of ['method', 'distill', 'gradient-equilibrium', 'resume'] as const) {
    if (flags[owned] !== undefined)
      throw new UsageError(`--${owned} is set per run by the study; give --methods instead`);
  }
  if (!flags.methods)
    throw new UsageError('--methods is required, e.g. --methods plain,joint,multiway,multiway+distill');
  const methods = StudyMethodsSchema.safeParse(flags.methods.split(',').map(parseStudyMethod));
  if (!methods.success) throw new UsageError(`--methods: ${methods.error.issues[0]!.message}`);
  const seeds = StudySeedsSchema.safeParse(Number(flags.seeds ?? 3));
  if (!seeds.success) throw new UsageError(`--seeds: ${seeds.error.issues[0]!.message}`);
  const runsRoot = resolve(flags.out ?? 'runs');
  // Every config is validated before the first run starts, so a bad combination fails at once.
  const plan = { base: parseRunConfig(configFromFlags(flags)), methods: methods.data, seeds: seeds.data };
  studyQueue(plan);
  const progress = new ProgressReporter();
  const backend = await initBackend(flags.backend);
  const record = await createStudy(runsRoot, plan);
  const queued = record.runs;
  progress.line(`backend: ${backend.label} on ${backend.device}; ${queued.length} runs queued`);
  progress.line(`study: ${studyPath(runsRoot, record.id)}`);
  const result = await runStudy(runsRoot, record, {
    train: async (request, started, index) => {
      const { method, seed } = queued[index]!;
      progress.line(`study run ${index + 1}/${queued.length}: ${method}, seed ${seed}`);
      return (await trainOne(request, backend, progress, started)).summary;
    },
  });
  if (result.record.status !== 'completed') {
    progress.line(`study stopped; the ${finishedRuns(result.record)} finished runs are in ${runsRoot}`);
    return 130;
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
