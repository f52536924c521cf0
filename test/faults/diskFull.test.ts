/**
 * A full disk mid-run: writes start failing with ENOSPC (the metrics log is pointed at
 * /dev/full). The run stops with a clear error, and what was saved before stays usable.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initBackend, summarizeBackend } from '../../electron/engine/backend/index.js';
import { FileError } from '../../electron/engine/runs/files.js';
import { RunFolder } from '../../electron/engine/runs/store.js';
import { loadTrainedNetwork } from '../../electron/engine/runs/trained.js';
import { openRun } from '../../electron/engine/session.js';

describe.skipIf(!existsSync('/dev/full'))('a full disk', () => {
  it('stops the run with a clear error and keeps the last checkpoint loadable', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mw-full-'));
    const config = {
      dataset: 'embedded',
      arch: { family: 'resnet', depth: 8, width: 0.25, exits: [1] },
      method: 'multiway',
      gamma: 2,
      epochs: 2,
      batchSize: 32,
      lr: 0.05,
      seed: 2,
      limitTrain: 96,
      limitTest: 32,
    };
    let fillDisk: Promise<void> | undefined;
    const trainer = await openRun(
      { kind: 'new', config, runsRoot: root },
      {
        backend: summarizeBackend(await initBackend('wasm')),
        onEvent: (event) => {
          // After epoch 1's record is written: from now on every append hits a full device.
          if (event.type === 'epoch' && !fillDisk) {
            const metrics = join(trainer.start.run, 'metrics.ndjson');
            fillDisk = rm(metrics).then(() => symlink('/dev/full', metrics));
          }
        },
      },
    );
    const error = await trainer.run().catch((e: unknown) => e);
    trainer.dispose();
    expect(error).toBeInstanceOf(FileError);
    expect((error as Error).message).toMatch(/could not append to .*metrics\.ndjson: ENOSPC: no space left on device/);
    const folder = await RunFolder.open(trainer.start.run);
    const state = (await folder.state())!;
    expect(state.status).toBe('failed');
    expect(state.message).toMatch(/ENOSPC/);
    const saved = await loadTrainedNetwork(trainer.start.run);
    expect(saved.start.network).toBe(trainer.start.network);
    saved.net.dispose();
    await rm(root, { recursive: true, force: true });
  });
});
