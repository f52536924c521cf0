/**
 * Finished runs side by side: per-exit top-1 lined up by block and each run's exit tax against
 * the plain runs among those compared, both computed by shared/comparison.ts as the CLI's
 * `mw-studio compare` does.
 */
import type { RunListingView } from '../../shared/api.js';
import { exitComparison, exitTax, methodLabel, type ExitTax } from '../../shared/comparison.js';
import type { RunSummary } from '../../shared/metrics.js';

export interface ComparedRun {
  dir: string;
  name: string;
  /** "multiway+distill, seed 1": what tells the runs apart in a legend. */
  label: string;
  summary: RunSummary;
}

export interface RunComparison {
  runs: ComparedRun[];
  /** One row per exit block found in any run, shallowest first; top1 has one entry per run. */
  rows: ReturnType<typeof exitComparison>;
  /** Per run: its exit tax against the plain runs compared with it, when there are any. */
  taxes: (ExitTax | undefined)[];
}

/** Compares the finished runs among `listings`, in the order given. */
export function compareRuns(listings: readonly RunListingView[]): RunComparison {
  const runs = listings.flatMap((l) =>
    l.summary
      ? [
          {
            dir: l.dir,
            name: l.name,
            label: `${methodLabel(l.summary.config)}, seed ${l.summary.config.seed}`,
            summary: l.summary,
          },
        ]
      : [],
  );
  const summaries = runs.map((r) => r.summary);
  return { runs, rows: exitComparison(summaries), taxes: summaries.map((s) => exitTax(s, summaries)) };
}
