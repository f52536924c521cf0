/** Two runs side by side: their exits lined up so each row compares like with like. */
import type { RunDetail } from '../../shared/api.js';
import { exitLabel } from '../../shared/format.js';

export interface ComparedExit {
  index: number;
  block: number;
  final: boolean;
  top1?: number;
  /** The accuracy is the last epoch's held-out accuracy: the run was never evaluated. */
  provisional: boolean;
}

export interface ComparisonRow {
  key: string;
  label: string;
  /** Position in the table: auxiliary exits by block, the final output last. */
  order: number;
  a?: ComparedExit;
  b?: ComparedExit;
}

export function comparedExits(detail: RunDetail): ComparedExit[] {
  const lastEpoch = detail.metrics.filter((record) => record.type === 'epoch').at(-1);
  return detail.exits.map((exit) => {
    const report = detail.summary?.exits.find((r) => r.index === exit.index);
    const top1 = report?.top1 ?? lastEpoch?.testAccuracy[exit.index];
    return {
      index: exit.index,
      block: exit.block,
      final: exit.final,
      top1,
      provisional: !report && top1 !== undefined,
    };
  });
}

/** Auxiliary exits line up by block; the two final outputs line up with each other whatever the depths. */
export function compareExits(a: readonly ComparedExit[], b: readonly ComparedExit[]): ComparisonRow[] {
  const rows = new Map<string, ComparisonRow>();
  const place = (exit: ComparedExit, side: 'a' | 'b') => {
    const key = exit.final ? 'final' : `block-${exit.block}`;
    const row = rows.get(key) ?? {
      key,
      label: exit.final ? 'final output' : exitLabel(exit),
      order: exit.final ? Infinity : exit.block,
    };
    row[side] = exit;
    rows.set(key, row);
  };
  a.forEach((exit) => place(exit, 'a'));
  b.forEach((exit) => place(exit, 'b'));
  return [...rows.values()].sort((x, y) => x.order - y.order);
}
