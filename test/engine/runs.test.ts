/** Run files: atomic writes that never leave half a file, a metrics log that survives a torn line, confined run paths. */
import { appendFile, mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../shared/api.js';
import { DEFAULT_RUN_CONFIG } from '../../shared/spec.js';
import { initBackend } from '../../electron/engine/backend/index.js';
import { EngineHost } from '../../electron/engine/host.js';
import { FileError, writeJsonAtomic } from '../../electron/engine/runs/files.js';
import { RunFolder } from '../../electron/engine/runs/store.js';
import { callHost } from './helpers.js';

const batchLine = (step: number) =>
  JSON.stringify({
    type: 'batch',
    epoch: 1,
    step,
    totalSteps: 10,
    losses: [1, 2],
    lr: 0.1,
    imagesPerSecond: 5,
    etaSeconds: 3,
  });

describe('run files', () => {
  it('keep every complete metrics line when the last one is torn or one in the middle is corrupt', async () => {
    const folder = await RunFolder.create(await mkdtemp(join(tmpdir(), 'mw-runs-')), DEFAULT_RUN_CONFIG);
    await appendFile(
      folder.path('metrics'),
      `${batchLine(1)}\n{"type": "batch", garbage\n${batchLine(2)}\n${batchLine(3).slice(0, 25)}`,
    );
    const { records, skipped } = await folder.metrics();
    expect(records.map((r) => r.step)).toEqual([1, 2]);
    expect(skipped).toBe(2);
  });

  it('write atomically: a failed write leaves the old file and no temporary file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mw-atomic-'));
    const target = join(dir, 'summary.json');
    await writeJsonAtomic(target, { version: 1 });
    // Permissions do not stop root (CI), so the failures are made with paths: a missing folder...
    await expect(writeJsonAtomic(join(dir, 'missing', 'x.json'), { version: 2 })).rejects.toThrow(FileError);
    // ...and a directory where the file should go, so the rename fails after the data was written.
    await mkdir(join(dir, 'blocked.json'));
    await expect(writeJsonAtomic(join(dir, 'blocked.json'), { version: 2 })).rejects.toThrow(
      /could not write .*blocked\.json/,
    );
    expect(JSON.parse(await readFile(target, 'utf8'))).toEqual({ version: 1 });
    expect((await readdir(dir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('reports a corrupt config.json naming the file, and a missing folder clearly', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mw-runs-'));
    const folder = await RunFolder.create(root, DEFAULT_RUN_CONFIG);
    await writeFile(folder.path('config'), '{"dataset": ');
    await expect(RunFolder.open(folder.dir)).rejects.toThrow(/config\.json: not valid JSON/);
    await expect(RunFolder.open(join(root, 'nope'))).rejects.toThrow(/not a run folder/);
  });
});

describe('engine host paths', () => {
  it('refuses run folders outside the runs root', async () => {
    const runsRoot = await mkdtemp(join(tmpdir(), 'mw-host-'));
    const host = new EngineHost({ backend: await initBackend('cpu'), runsRoot, emit: () => {} });
    for (const run of ['../', '../../etc', '/etc', runsRoot]) {
      await expect(callHost(host, 'openRun', { run })).rejects.toThrow(ApiError);
    }
    await expect(callHost(host, 'exportExit', { run: '../x', exit: 'final', format: 'tfjs' })).rejects.toThrow(
      /outside/,
    );
    await expect(callHost(host, 'openRun', { run: 5 })).rejects.toThrow(/openRun: run/);
    await expect(callHost(host, 'rmrf', {})).rejects.toThrow(/unknown method/);
    await expect(callHost(host, 'exportExit', { run: 'x', exit: 1, format: 'multi', threshold: 2 })).rejects.toThrow(
      /exportExit: threshold: threshold is at most 1/,
    );
  });

  it('with native dialogs, accepts only dataset and export folders the user chose', async () => {
    const runsRoot = await mkdtemp(join(tmpdir(), 'mw-host-'));
    const chosen = await mkdtemp(join(tmpdir(), 'mw-chosen-'));
    const host = new EngineHost({
      backend: await initBackend('cpu'),
      runsRoot,
      emit: () => {},
      nativeDialogs: true,
    });
    const config = { ...DEFAULT_RUN_CONFIG, dataset: '/etc' };
    await expect(callHost(host, 'startRun', { config })).rejects.toThrow(/dataset \/etc was not chosen in a dialog/);
    await expect(callHost(host, 'allowFolder', { path: chosen })).resolves.toEqual({});
    // Now chosen: the path passes the boundary and fails only as a dataset (an empty folder).
    await expect(callHost(host, 'startRun', { config: { ...config, dataset: chosen } })).rejects.toThrow(
      `${chosen}: holds no class`,
    );
  });
});
