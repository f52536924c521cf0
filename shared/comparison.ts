/**
 * What the exits cost and how methods compare, shared by the CLI and the studio: the exit tax
 * (a run's final top-1 against plain BP's on the same network and data), per-exit accuracy of
 * several runs side by side, and per-exit mean and spread over seeds for a study.
 */
import { resnetBlockOf, type RunConfig } from './spec.js';

/** What a comparison needs of a finished run (a RunSummary has it). */
interface ExitTop1 {
  block: number;
  final: boolean;
  top1: number;
}
interface Summarized {
  config: RunConfig;
  exits: readonly ExitTop1[];
}

/** The settings besides the backbone that a plain baseline must share with a run. */
const BASELINE_RECIPE = [
  'dataset',
  'limitTrain',
  'limitTest',
  'validationSplit',
  'imageSize',
  'augment',
  'epochs',
  'batchSize',
  'lr',
  'momentum',
  'weightDecay',
  'schedule',
  'milestones',
] as const satisfies readonly (keyof RunConfig)[];

/**
 * The backbone and recipe a plain baseline must share with a run: network (its exits aside:
 * under plain BP they are probes), data, and training schedule. The seed may differ.
 */
function baselineKey(config: RunConfig): string {
  const { arch } = config;
  const backbone =
    arch.family === 'resnet'
      ? { family: arch.family, depth: arch.depth, width: arch.width, block: resnetBlockOf(arch) }
      : arch.family === 'imported'
        ? { family: arch.family, backbone: arch.sha256 ?? arch.backbone }
        : { family: arch.family, width: arch.width };
  return JSON.stringify([backbone, ...BASELINE_RECIPE.map((field) => config[field] ?? null)]);
}

/** Label of a run's training method, "multiway+distill" when self-distilled. */
export function methodLabel(config: {
  method: string;
  distill?: boolean | undefined;
  gradientEquilibrium?: boolean | undefined;
}): string {
  return [config.method, ...(config.distill ? ['distill'] : []), ...(config.gradientEquilibrium ? ['ge'] : [])].join(
    '+',
  );
}

export interface ExitTax {
  /** Mean final top-1 of the matching plain runs. */
  plainTop1: number;
  plainRuns: number;
  /** This run's final top-1 minus plainTop1 (negative: the exits cost accuracy). */
  difference: number;
}

/** The exit tax of `run` against the completed plain runs among `others`, or undefined if there is none (or `run` is plain). */
export function exitTax(run: Summarized, others: readonly Summarized[]): ExitTax | undefined {
  if (run.config.method === 'plain') return undefined;
  const key = baselineKey(run.config);
  const plain = others.filter((o) => o.config.method === 'plain' && baselineKey(o.config) === key);
  if (!plain.length) return undefined;
  const plainTop1 = mean(plain.map((p) => p.exits.at(-1)!.top1));
  return { plainTop1, plainRuns: plain.length, difference: run.exits.at(-1)!.top1 - plainTop1 };
}

/** One row per exit block found in any run, shallowest first; a run without that exit has undefined there. */
export function exitComparison(
  runs: readonly Pick<Summarized, 'exits'>[],
): { block: number; final: boolean; top1: (number | undefined)[] }[] {
  const blocks = [...new Set(runs.flatMap((r) => r.exits.map((e) => e.block)))].sort((a, b) => a - b);
  return blocks.map((block) => ({
    block,
    final: runs.some((r) => r.exits.find((e) => e.block === block)?.final),
    top1: runs.map((r) => r.exits.find((e) => e.block === block)?.top1),
  }));
}

export function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Sample standard deviation (n - 1); 0 for a single value. */
export function spread(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  return Math.sqrt(values.reduce((a, v) => a + (v - m) ** 2, 0) / (values.length - 1));
}

export interface StudyRow {
  method: string;
  runs: number;
  /** Per exit, shallowest first: mean and sample standard deviation of top-1 over the seeds. */
  exits: { block: number; final: boolean; mean: number; spread: number }[];
  /** Mean final top-1 minus plain's mean final top-1, when the study has plain runs. */
  exitTax?: number;
}

/** Groups a study's runs by method label and summarizes each exit over the seeds. */
export function studyTable(runs: readonly Summarized[]): StudyRow[] {
  const groups = new Map<string, Summarized[]>();
  for (const run of runs) groups.set(methodLabel(run.config), [...(groups.get(methodLabel(run.config)) ?? []), run]);
  const plain = groups.get('plain');
  const plainFinal = plain ? mean(plain.map((r) => r.exits.at(-1)!.top1)) : undefined;
  return [...groups].map(([method, group]) => {
    const exits = group[0]!.exits.map((exit, k) => {
      const values = group.map((r) => r.exits[k]!.top1);
      return { block: exit.block, final: exit.final, mean: mean(values), spread: spread(values) };
    });
    const tax = plainFinal === undefined || method === 'plain' ? undefined : exits.at(-1)!.mean - plainFinal;
    return { method, runs: group.length, exits, ...(tax === undefined ? {} : { exitTax: tax }) };
  });
}
