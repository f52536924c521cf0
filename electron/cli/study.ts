/**
 * `mw-studio study`: one network trained under several methods and seeds, queued one after
 * another, then per-exit top-1 as mean and spread over the seeds with the exit tax against
 * plain BP. `mw-studio compare`: per-exit top-1 of finished runs side by side.
 */
import { parseArgs } from 'node:util';
import { exitComparison, exitTax, methodLabel, studyTable, type StudyRow } from '../../shared/comparison.js';
import { exitLabel, formatPercent } from '../../shared/format.js';
import type { RunSummary } from '../../shared/metrics.js';
import { METHODS, parseRunConfig, type Method } from '../../shared/spec.js';
import { initBackend, RunFolder } from '../engine/index.js';
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

interface StudyMethod {
  method: Method;
  distill: boolean;
  gradientEquilibrium: boolean;
}

export function parseStudyMethod(label: string): StudyMethod {
  const [method, ...extras] = label.trim().split('+');
  if (!METHODS.includes(method as Method))
    throw new UsageError(`--methods: "${label}" does not start with one of ${METHODS.join(', ')}`);
  const unknown = extras.filter((e) => e !== 'distill' && e !== 'ge');
  if (unknown.length)
    throw new UsageError(`--methods: "${label}" has "+${unknown[0]}"; the options are +distill and +ge`);
  return { method: method as Method, distill: extras.includes('distill'), gradientEquilibrium: extras.includes('ge') };
}

const percent = (fraction: number) => formatPercent(fraction, 2);
const points = (fraction: number) => `${fraction >= 0 ? '+' : ''}${(fraction * 100).toFixed(2)}`;

export function studyText(rows: readonly StudyRow[]): string {
  const exits = rows[0]?.exits ?? [];
  const header = ['method', 'runs', ...exits.map((e) => exitLabel(e)), 'exit tax (points)'];
  const body = rows.map((row) => [
    row.method,
    String(row.runs),
    ...row.exits.map((e) => `${percent(e.mean)} ± ${(e.spread * 100).toFixed(2)}`),
    row.exitTax === undefined ? '' : points(row.exitTax),
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
  const methods = flags.methods.split(',').map(parseStudyMethod);
  const seeds = Number(flags.seeds ?? 3);
  if (!Number.isInteger(seeds) || seeds < 1 || seeds > 100)
    throw new UsageError('--seeds must be a whole number from 1 to 100');
  const base = configFromFlags(flags);
  const runsRoot = flags.out ?? 'runs';
  // Every config is validated before the first run starts, so a bad combination fails at once.
  const queue = methods.flatMap((m) =>
    Array.from({ length: seeds }, (_, i) => ({ ...base, ...m, seed: base.seed + i })),
  );
  queue.forEach(parseRunConfig);
  const progress = new ProgressReporter();
  const backend = await initBackend(flags.backend);
  progress.line(`backend: ${backend.label} on ${backend.device}; ${queue.length} runs queued`);
  const summaries: RunSummary[] = [];
  for (const [i, config] of queue.entries()) {
    progress.line(`study run ${i + 1}/${queue.length}: ${methodLabel(config)}, seed ${config.seed}`);
    const { summary, run } = await trainOne({ kind: 'new', config, runsRoot }, backend, progress);
    if (!summary) {
      progress.line(`study stopped during ${run}; the ${summaries.length} finished runs are in ${runsRoot}`);
      return 130;
    }
    summaries.push(summary);
  }
  const rows = studyTable(summaries);
  process.stdout.write(`\n${studyText(rows)}\n`);
  if (flags.json) process.stdout.write(`${JSON.stringify({ runs: summaries.map((s) => s.run), rows })}\n`);
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
  body.push(['exit tax (points)', ...taxes.map((t) => (t ? points(t.difference) : ''))]);
  const legend = summaries.map((s, i) => `${i + 1}: ${s.network}, ${s.run}`).join('\n');
  process.stdout.write(`${renderTable(header, body)}\n${legend}\n`);
  if (flags.json)
    process.stdout.write(`${JSON.stringify({ runs: summaries.map((s) => s.run), exits: rows, exitTax: taxes })}\n`);
  return 0;
}
