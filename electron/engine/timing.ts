/** Wall-time statistics of a repeated operation: what every latency figure in the studio is. */
import type { Latency } from '../../shared/metrics.js';

export interface LatencyOptions {
  /** Untimed runs first: kernels compile, caches and allocators settle. */
  warmup?: number;
  /** Timed runs: at least minRepeats, then more while within budgetMs, at most maxRepeats. */
  minRepeats?: number;
  maxRepeats?: number;
  budgetMs?: number;
}

function percentile(sorted: readonly number[], p: number): number {
  const rank = (sorted.length - 1) * p;
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low);
}

/** Median and p90 wall time of `run` (which must finish its work before its promise settles). */
export async function timeRepeated(run: () => Promise<void>, options: LatencyOptions = {}): Promise<Latency> {
  const { warmup = 2, minRepeats = 5, maxRepeats = 50, budgetMs = 400 } = options;
  for (let i = 0; i < warmup; i++) await run();
  const times: number[] = [];
  const begin = performance.now();
  while (times.length < minRepeats || (times.length < maxRepeats && performance.now() - begin < budgetMs)) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return { median: percentile(times, 0.5), p90: percentile(times, 0.9) };
}
