/**
 * The training loop end to end on real data (the embedded Fashion-MNIST subset) and the real
 * portable backend: events, run files, tensor hygiene, stop/resume, and fault handling.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent, RunSummary } from '../../shared/metrics.js';
import { ConfigError, type RunConfigInput } from '../../shared/spec.js';
import { initBackend, summarizeBackend, type BackendInfo } from '../../electron/engine/backend/index.js';
import { openRun } from '../../electron/engine/session.js';
import { RunFolder } from '../../electron/engine/runs/store.js';
import { NonFiniteLossError, type Trainer } from '../../electron/engine/train/trainer.js';
import { expectSameWeights } from './helpers.js';
import { readCheckpointManifest } from '../../electron/engine/runs/checkpoint.js';

let backend: BackendInfo;
beforeAll(async () => {
  backend = await initBackend('wasm');
});

const CONFIG: RunConfigInput = {
  dataset: 'embedded',
  arch: { family: 'resnet', depth: 8, width: 0.5, exits: [1, 2] },
  method: 'multiway',
  gamma: 2,
  epochs: 2,
  batchSize: 32,
  lr: 0.05,
  seed: 3,
  limitTrain: 192,
  limitTest: 64,
};

const LATENCY = { warmup: 1, minRepeats: 2, maxRepeats: 2 };

async function newRun(config: RunConfigInput, events: RunEvent[] = [], onEvent?: (e: RunEvent, t: Trainer) => void) {
  const root = await mkdtemp(join(tmpdir(), 'mw-runs-'));
  const trainer: Trainer = await openRun(
    { kind: 'new', config, runsRoot: root },
    {
      backend: summarizeBackend(backend),
      latency: LATENCY,
      onEvent: (e) => {
        events.push(e);
        onEvent?.(e, trainer);
      },
    },
  );
  return { root, trainer };
}

function weights(trainer: Trainer): Map<string, Float32Array> {
  return new Map([...trainer.net.namedTensors()].map(([name, v]) => [name, Float32Array.from(v.dataSync())]));
}

describe('a training run', () => {
  it('streams events, writes the run folder and keeps the tensor count flat across epochs', async () => {
    const events: RunEvent[] = [];
    const tensorsAtEpochEnd: number[] = [];
    const { trainer } = await newRun(CONFIG, events, (e) => {
      if (e.type === 'epoch') tensorsAtEpochEnd.push(tf.memory().numTensors);
    });
    const summary = (await trainer.run())!;
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('started');
    expect(types.at(-1)).toBe('finished');
    const batches = events.filter((e) => e.type === 'batch');
    expect(batches).toHaveLength(12); // 192 / 32 steps x 2 epochs
    expect(batches.every((b) => b.losses.length === 3 && b.losses.every(Number.isFinite))).toBe(true);
    expect(tensorsAtEpochEnd).toHaveLength(2);
    expect(tensorsAtEpochEnd[1]).toBe(tensorsAtEpochEnd[0]);

    const folder = await RunFolder.open(trainer.start.run);
    const { records, skipped } = await folder.metrics();
    expect(skipped).toBe(0);
    expect(records.filter((r) => r.type === 'epoch')).toHaveLength(2);
    expect((await folder.state())?.status).toBe('completed');
    const onDisk = (await folder.summary())!;
    expect(onDisk.exits.map((e) => e.block)).toEqual([1, 2, 3]);
    expect(onDisk.exits.every((e) => e.top1 >= 0 && e.top1 <= 1 && e.latencyMs.batch1.median > 0)).toBe(true);
    expect(summary.exits[0]!.params).toBeLessThan(summary.exits[2]!.params);
    trainer.dispose();
  });

  it('stopped mid-epoch and resumed, ends where an uninterrupted run with the same seed ends', async () => {
    const straight = await newRun(CONFIG);
    const straightSummary = (await straight.trainer.run())!;
    const expected = weights(straight.trainer);
    straight.trainer.dispose();

    // Step 8 is already queued when step 7's record arrives (one step stays in flight): it completes first.
    const stopped = await newRun(CONFIG, [], (e, t) => {
      if (e.type === 'batch' && e.step === 7) t.stop();
    });
    expect(await stopped.trainer.run()).toBeUndefined();
    const dir = stopped.trainer.start.run;
    stopped.trainer.dispose();
    expect((await (await RunFolder.open(dir)).state())?.status).toBe('stopped');

    const resumed = await openRun({ kind: 'resume', dir }, { backend: summarizeBackend(backend), latency: LATENCY });
    expect(resumed.start.resumedFrom).toEqual({ epoch: 1, step: 8 });
    const resumedSummary = (await resumed.run()) as RunSummary;
    expectSameWeights(weights(resumed), expected, 1e-5);
    expect(resumedSummary.exits.map((e) => e.top1)).toEqual(straightSummary.exits.map((e) => e.top1));
    resumed.dispose();
  });

  it('rejects a bad configuration before creating anything', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mw-runs-'));
    const bad = { ...CONFIG, arch: { family: 'resnet', depth: 21, width: 1, exits: [1, 1] }, batchSize: 0 };
    await expect(
      openRun({ kind: 'new', config: bad, runsRoot: root }, { backend: summarizeBackend(backend) }),
    ).rejects.toThrow(ConfigError);
    await expect(
      openRun({ kind: 'new', config: bad, runsRoot: root }, { backend: summarizeBackend(backend) }),
    ).rejects.toThrow(
      /arch\.depth: ResNet depth must be 6n\+2.*arch\.exits: exits must not repeat a block.*batchSize: batch size must be at least 1/,
    );
    expect(await readdir(root)).toEqual([]);
  });

  it('stops itself on a non-finite loss, naming the exit and step, and keeps the last good checkpoint', async () => {
    const { trainer } = await newRun(CONFIG, [], (e, t) => {
      // Fault injection: after epoch 1 the final classifier's weights turn NaN (a diverged update).
      if (e.type === 'epoch') {
        const weight = t.net.heads.at(-1)!.params.find((p) => p.variable.rank === 2)!.variable;
        weight.assign(tf.fill(weight.shape, NaN));
      }
    });
    const error = await trainer.run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteLossError);
    // Step 7's loss is read while step 8 is queued, and the message says so.
    expect((error as Error).message).toMatch(
      /loss of the final exit became NaN at step 7 \(found once step 8 was already queued\)/,
    );
    const folder = await RunFolder.open(trainer.start.run);
    const state = (await folder.state())!;
    expect(state.status).toBe('failed');
    expect(state.message).toMatch(/step 7/);
    const manifest = await readCheckpointManifest(trainer.start.run);
    expect(manifest.epoch).toBe(1);
    trainer.dispose();
  });
});
