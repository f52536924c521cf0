/**
 * Opening a run, the way every face (CLI, Electron utility process, serve mode) does it:
 * validate the request, load the data, create or reopen the run folder, build the trainer.
 */
import { parseRunConfig } from '../../shared/spec.js';
import type { BackendSummary, RunEvent } from '../../shared/metrics.js';
import { loadRunDataset } from './data/index.js';
import { recordBackbone } from './models/import/network.js';
import { RunFolder } from './runs/store.js';
import { Trainer } from './train/trainer.js';
import type { LatencyOptions } from './evaluate/index.js';

export type RunRequest = { kind: 'new'; config: unknown; runsRoot: string } | { kind: 'resume'; dir: string };

export interface OpenRunOptions {
  backend: BackendSummary;
  onEvent?: (event: RunEvent) => void;
  checkpointSeconds?: number;
  latency?: LatencyOptions;
  featureCacheBytes?: number;
}

export async function openRun(request: RunRequest, options: OpenRunOptions): Promise<Trainer> {
  if (request.kind === 'new') {
    // Validate and load before touching disk: a bad config or dataset leaves no empty run folder.
    const parsed = parseRunConfig(request.config);
    // An imported backbone is read, checked and its checksum recorded before anything is written.
    const config = parsed.arch.family === 'imported' ? { ...parsed, arch: recordBackbone(parsed.arch) } : parsed;
    const dataset = await loadRunDataset(config);
    const folder = await RunFolder.create(request.runsRoot, config);
    return new Trainer({ config, dataset, folder, ...options });
  }
  const folder = await RunFolder.open(request.dir);
  const config = await folder.config();
  const trainer = new Trainer({ config, dataset: await loadRunDataset(config), folder, ...options });
  if (await folder.hasCheckpoint()) await trainer.restore();
  return trainer;
}
