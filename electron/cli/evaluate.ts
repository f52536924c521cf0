/** `mw-studio evaluate`: per-exit, per-class results of a trained run, its confusion and overthinking. */
import { parseArgs } from 'node:util';
import { EVALUATION_SPLITS, type Evaluation, type EvaluationSplit } from '../../shared/evaluation.js';
import { exitLabel, formatPercent } from '../../shared/format.js';
import { cachedEvaluation, evaluateRun, initBackend } from '../engine/index.js';
import { renderTable } from './table.js';
import { BACKEND_CHOICES, UsageError } from './usage.js';

export const EVALUATE_USAGE = `mw-studio evaluate --run DIR [--split validation|test] [--json]
  --run DIR                   a trained (or checkpointed) run folder
  --split validation|test     the held-out validation images (default) or the test set
  --backend ${BACKEND_CHOICES}
  --json                      print the evaluation as one JSON object on the last line of stdout:
                              {"run", "split", "classes", "exits": [{"block", "top1", "perClass",
                              "confusion" (row = true class, column = predicted)}], "overthinking"}
  The result is cached in the run folder (evaluation-<split>.json) until the run trains further.`;

const OPTIONS = {
  run: { type: 'string' },
  split: { type: 'string' },
  backend: { type: 'string' },
  json: { type: 'boolean' },
} as const;

function isSplit(value: string): value is EvaluationSplit {
  return (EVALUATION_SPLITS as readonly string[]).includes(value);
}

/** Every exit's accuracy and the oracle up to it; then each class's recall at every exit. */
export function evaluationTables(evaluation: Evaluation): string {
  const { exits, overthinking, classes } = evaluation;
  const top5 = exits.some((e) => e.top5 !== undefined);
  const exitRows = exits.map((e) => [
    exitLabel(e),
    formatPercent(e.top1, 2),
    ...(top5 ? [e.top5 === undefined ? '' : formatPercent(e.top5, 2)] : []),
    formatPercent(overthinking.oracle[e.index]!, 2),
  ]);
  const classRows = classes.map((name, c) => [
    name,
    String(exits[0]?.perClass[c]?.support ?? 0),
    ...exits.map((e) => `${formatPercent(e.perClass[c]!.precision, 1)} / ${formatPercent(e.perClass[c]!.recall, 1)}`),
  ]);
  const pairRows = overthinking.pairs.map((p) => [
    `${exitLabel(exits[p.shallow]!)} -> ${exitLabel(exits[p.deep]!)}`,
    String(p.overthinking),
    String(p.rescued),
  ]);
  return [
    renderTable(['exit', 'top-1', ...(top5 ? ['top-5'] : []), 'oracle up to it'], exitRows),
    renderTable(['class', 'support', ...exits.map((e) => `${exitLabel(e)} P / R`)], classRows),
    ...(pairRows.length ? [renderTable(['shallow -> deep', 'overthinking', 'rescued'], pairRows)] : []),
  ].join('\n\n');
}

/** The --json result: the evaluation as the contract names it, with each exit's figures. */
export function evaluationJson(evaluation: Evaluation): object {
  const { run, split, samples, step, classes, exits, overthinking } = evaluation;
  return {
    run,
    split,
    samples,
    step,
    classes,
    exits: exits.map(({ block, final, top1, top5, perClass, confusion }) => ({
      block,
      final,
      top1,
      ...(top5 !== undefined ? { top5 } : {}),
      perClass,
      confusion,
    })),
    overthinking,
  };
}

export async function evaluateCommand(argv: string[]): Promise<number> {
  const { values: flags } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
  if (!flags.run) throw new UsageError('--run is required');
  const split = flags.split ?? 'validation';
  if (!isSplit(split)) throw new UsageError(`--split must be one of ${EVALUATION_SPLITS.join(', ')}, not "${split}"`);
  // A cached evaluation needs no network, hence no compute backend.
  const cached = await cachedEvaluation(flags.run, split);
  if (!cached) await initBackend(flags.backend);
  let reported = 0;
  const { evaluation } =
    cached ??
    (await evaluateRun(flags.run, split, {
      onProgress: (done, total) => {
        // A line per quarter: enough to see it move, few enough for a log.
        if (done < total && done - reported < total / 4) return;
        reported = done;
        process.stderr.write(`evaluating ${split}: ${done}/${total} images\n`);
      },
    }));
  process.stdout.write(
    `${evaluation.samples} ${split} images of ${evaluation.run}\n\n${evaluationTables(evaluation)}\n`,
  );
  if (flags.json) process.stdout.write(`${JSON.stringify(evaluationJson(evaluation))}\n`);
  return 0;
}
