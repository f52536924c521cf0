/**
 * A run on disk: one folder holding config.json, state.json, metrics.ndjson, the checkpoint
 * and, once finished, summary.json. Everything but the append-only metrics log is written
 * atomically; the log tolerates a torn last line.
 */
import { appendFile, mkdir, readFile, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import {
  MetricsRecordSchema,
  RunStartSchema,
  RunStateSchema,
  RunSummarySchema,
  type MetricsRecord,
  type RunStart,
  type RunState,
  type RunStatus,
  type RunSummary,
} from '../../../shared/metrics.js';
import { archSlug, parseRunConfig, type RunConfig } from '../../../shared/spec.js';
import { statIfExists } from '../data/files.js';
import { CHECKPOINT_FILE } from './checkpoint.js';
import { FileError, parseNdjson, readJsonFile, writeJsonAtomic } from './files.js';

export const RUN_FILES = {
  config: 'config.json',
  /** What the run announced when it started: network, dataset, exits with their costs. */
  start: 'run.json',
  state: 'state.json',
  metrics: 'metrics.ndjson',
  summary: 'summary.json',
} as const;

/** "2026-11-23_09-41-07_resnet20_multiway": sortable by time, readable in a file manager. */
export function runFolderName(config: RunConfig, now = new Date()): string {
  const stamp = now.toISOString().slice(0, 19).replace('T', '_').replaceAll(':', '-');
  return `${stamp}_${archSlug(config.arch)}_${config.method}`;
}

/** Whether a process of that id exists (one owned by another user counts). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class RunFolder {
  private constructor(readonly dir: string) {}

  /** Creates a new, uniquely named run folder under `root` and writes its config. */
  static async create(root: string, config: RunConfig): Promise<RunFolder> {
    await mkdir(root, { recursive: true });
    const base = runFolderName(config);
    for (let attempt = 0; ; attempt++) {
      const dir = resolve(root, attempt ? `${base}-${attempt + 1}` : base);
      try {
        await mkdir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 100) continue;
        throw new FileError(`could not create a run folder in ${root}: ${(error as Error).message}`);
      }
      const folder = new RunFolder(dir);
      await writeJsonAtomic(folder.path('config'), config);
      return folder;
    }
  }

  /** Opens an existing run folder; it must at least hold a valid config.json. */
  static async open(dir: string): Promise<RunFolder> {
    const info = await statIfExists(dir);
    if (!info?.isDirectory()) throw new FileError(`${dir}: not a run folder (no such directory)`);
    const folder = new RunFolder(resolve(dir));
    await folder.config();
    return folder;
  }

  path(file: keyof typeof RUN_FILES): string {
    return join(this.dir, RUN_FILES[file]);
  }

  async config(): Promise<RunConfig> {
    const raw = await readJsonFile(this.path('config'), z.unknown());
    try {
      return parseRunConfig(raw);
    } catch (error) {
      throw new FileError(`${this.path('config')}: ${(error as Error).message}`);
    }
  }

  async hasCheckpoint(): Promise<boolean> {
    return (await statIfExists(join(this.dir, CHECKPOINT_FILE))) !== undefined;
  }

  writeState(state: Omit<RunState, 'updatedAt'>): Promise<void> {
    return writeJsonAtomic(this.path('state'), { ...state, updatedAt: new Date().toISOString() });
  }

  /** The stored state, with a run whose owning process is gone reported as interrupted. */
  async state(): Promise<RunState | undefined> {
    if (!(await statIfExists(this.path('state')))) return undefined;
    const state = await readJsonFile(this.path('state'), RunStateSchema);
    const owned = state.status === 'running' || state.status === 'paused';
    if (owned && (state.pid === undefined || !isAlive(state.pid))) return { ...state, status: 'interrupted' };
    return state;
  }

  async appendMetrics(records: readonly MetricsRecord[]): Promise<void> {
    if (!records.length) return;
    try {
      await appendFile(this.path('metrics'), records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    } catch (error) {
      throw new FileError(`could not append to ${this.path('metrics')}: ${(error as Error).message}`);
    }
  }

  async metrics(): Promise<{ records: MetricsRecord[]; skipped: number }> {
    if (!(await statIfExists(this.path('metrics')))) return { records: [], skipped: 0 };
    return parseNdjson(await readFile(this.path('metrics'), 'utf8'), MetricsRecordSchema);
  }

  writeStart(start: RunStart): Promise<void> {
    return writeJsonAtomic(this.path('start'), start);
  }

  async start(): Promise<RunStart | undefined> {
    if (!(await statIfExists(this.path('start')))) return undefined;
    return readJsonFile(this.path('start'), RunStartSchema);
  }

  writeSummary(summary: RunSummary): Promise<void> {
    return writeJsonAtomic(this.path('summary'), summary);
  }

  async summary(): Promise<RunSummary | undefined> {
    if (!(await statIfExists(this.path('summary')))) return undefined;
    return readJsonFile(this.path('summary'), RunSummarySchema);
  }
}

export interface RunListing {
  dir: string;
  name: string;
  config?: RunConfig;
  status: RunStatus | 'unknown';
  summary?: RunSummary;
  /** Why the folder could not be read fully; the listing never fails because of one bad run. */
  problem?: string;
}

/** Every run folder under `root`, newest first. */
export async function listRuns(root: string): Promise<RunListing[]> {
  if (!(await statIfExists(root))) return [];
  const names = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  const listings = await Promise.all(
    names.map(async (name): Promise<RunListing | undefined> => {
      const dir = join(root, name);
      if (!(await statIfExists(join(dir, RUN_FILES.config)))) return undefined;
      try {
        const folder = await RunFolder.open(dir);
        const [config, state, summary] = await Promise.all([folder.config(), folder.state(), folder.summary()]);
        return { dir: folder.dir, name, config, status: state?.status ?? 'unknown', ...(summary ? { summary } : {}) };
      } catch (error) {
        return { dir, name, status: 'unknown', problem: (error as Error).message };
      }
    }),
  );
  return listings.filter((l): l is RunListing => l !== undefined).sort((a, b) => b.name.localeCompare(a.name));
}
