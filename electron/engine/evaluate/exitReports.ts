/** The exits table of a network: each exit's costs, accuracy and latency. */
import type { ExitReport } from '../../../shared/metrics.js';
import type { Dataset, ImageSet } from '../data/dataset.js';
import type { MwNetwork } from '../models/network.js';
import type { LatencyOptions } from '../timing.js';
import { exitAccuracy } from './accuracy.js';
import { exitLatency } from './latency.js';

/** Everything the exits table shows: costs, accuracy on `set`, latency. */
export async function exitReports(
  net: MwNetwork,
  dataset: Dataset,
  set: ImageSet,
  options: LatencyOptions = {},
): Promise<ExitReport[]> {
  const accuracy = await exitAccuracy(net, dataset, set);
  const reports: ExitReport[] = [];
  for (const cost of net.costs()) {
    reports.push({
      ...cost,
      top1: accuracy.top1[cost.index]!,
      ...(accuracy.top5 ? { top5: accuracy.top5[cost.index]! } : {}),
      latencyMs: await exitLatency(net, cost.index, options),
    });
  }
  return reports;
}
