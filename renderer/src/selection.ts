/**
 * The model-selection maths behind the Exits view: which exits are worth having (the Pareto
 * front of accuracy against a cost) and which one to take under a budget. Pure functions on
 * plain data, so they are tested against brute force and could move to shared/ unchanged.
 */
import type { ExitReport } from '../../shared/metrics.js';

/**
 * Points no other point beats: none has a cost as low or lower and an accuracy as high or
 * higher, with one of the two strictly better. Minimises `cost`, maximises `value`; returned in
 * order of increasing cost, ready to draw as a line. Identical points are all kept.
 */
export function paretoFront<T>(points: readonly T[], cost: (p: T) => number, value: (p: T) => number): T[] {
  const sorted = [...points].sort((a, b) => cost(a) - cost(b) || value(b) - value(a));
  const front: T[] = [];
  let bestValue = -Infinity;
  let lastCost = NaN;
  for (const p of sorted) {
    const v = value(p);
    const c = cost(p);
    // A point is kept if it is more accurate than everything cheaper, or ties the last kept point exactly.
    if (v > bestValue || (v === bestValue && c === lastCost)) {
      front.push(p);
      bestValue = v;
      lastCost = c;
    }
  }
  return front;
}

export const BUDGET_METRICS = ['latency', 'params'] as const;
export type BudgetMetric = (typeof BUDGET_METRICS)[number];

/** "latency <= limit ms (batch 1 median)" or "params <= limit". */
export interface Budget {
  metric: BudgetMetric;
  limit: number;
}

export function budgetCost(exit: ExitReport, metric: BudgetMetric): number {
  return metric === 'latency' ? exit.latencyMs.batch1.median : exit.params;
}

/**
 * The most accurate exit whose cost fits the budget; among equally accurate ones the cheaper,
 * then the shallower. Undefined when nothing fits.
 */
export function bestWithinBudget(exits: readonly ExitReport[], budget: Budget): ExitReport | undefined {
  const cost = (exit: ExitReport) => budgetCost(exit, budget.metric);
  // Positive when a beats b: more accurate, else cheaper, else shallower.
  const beats = (a: ExitReport, b: ExitReport) => a.top1 - b.top1 || cost(b) - cost(a) || b.index - a.index;
  return exits
    .filter((exit) => cost(exit) <= budget.limit)
    .reduce<ExitReport | undefined>((best, exit) => (!best || beats(exit, best) > 0 ? exit : best), undefined);
}

const COUNT_SUFFIXES: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9 };

/** What people type for a parameter budget: "250000", "250k", "1.5M", "2 G". Undefined if unreadable. */
export function parseCount(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmg]?)\s*$/i.exec(text);
  if (!match) return undefined;
  return Number(match[1]) * COUNT_SUFFIXES[match[2]!.toLowerCase()]!;
}

/** Reads the budget field; undefined when it is empty or not a positive amount. */
export function parseBudget(metric: BudgetMetric, text: string): Budget | undefined {
  const trimmed = text.trim();
  const limit = metric === 'params' ? parseCount(trimmed) : trimmed ? Number(trimmed) : undefined;
  return limit !== undefined && Number.isFinite(limit) && limit > 0 ? { metric, limit } : undefined;
}
