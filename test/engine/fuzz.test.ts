/**
 * Fuzzing every dataset loader with random and mutated valid files: each case must either load
 * or fail with a DatasetError naming a file, never another exception, a hang or a runaway
 * allocation. Bounded (seeded) so it runs in `npm test`.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, summarizeBackend } from '../../electron/engine/backend/index.js';
import { CHECKPOINT_FILE, readCheckpointManifest } from '../../electron/engine/runs/checkpoint.js';
import { FileError } from '../../electron/engine/runs/files.js';
import { loadTrainedNetwork } from '../../electron/engine/runs/trained.js';
import { openRun } from '../../electron/engine/session.js';
import { DatasetError, embeddedDatasetDir, loadDataset } from '../../electron/engine/data/index.js';
import { IDX_FILES } from '../../electron/engine/data/idx.js';
import { Random } from '../../electron/engine/random.js';

const CASES_PER_LOADER = 40;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'mw-fuzz-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A mutation of valid bytes: flips, truncation, an overwritten header, junk appended, or pure noise. */
function mutate(valid: Uint8Array, rng: Random): Uint8Array {
  const bytes = Uint8Array.from(valid);
  switch (rng.int(5)) {
    case 0:
      for (let i = 0, n = 1 + rng.int(8); i < n; i++) bytes[rng.int(bytes.length)] = rng.int(256);
      return bytes;
    case 1:
      return bytes.subarray(0, rng.int(bytes.length));
    case 2:
      for (let i = 0; i < Math.min(16, bytes.length); i++) bytes[i] = rng.int(256);
      return bytes;
    case 3:
      return Uint8Array.from([...bytes, ...Array.from({ length: 1 + rng.int(64) }, () => rng.int(256))]);
    default:
      return Uint8Array.from({ length: rng.int(256) }, () => rng.int(256));
  }
}

/** Loads and accepts exactly two outcomes: a dataset, or a DatasetError whose message names a file in `dir`. */
async function expectLoadOrDatasetError(dir: string): Promise<'loaded' | 'rejected'> {
  try {
    await loadDataset(dir, { limitTrain: 50, limitTest: 20 });
    return 'loaded';
  } catch (error) {
    expect(error, String(error)).toBeInstanceOf(DatasetError);
    expect((error as Error).message).toContain(dir);
    return 'rejected';
  }
}

describe('loader fuzzing', () => {
  it('idx files (gzip and raw): mutated embedded files', async () => {
    const valid = new Map<string, Uint8Array>();
    for (const base of Object.values(IDX_FILES)) {
      const raw = gunzipSync(await readFile(join(embeddedDatasetDir(), `${base}.gz`)));
      // Keep the seeds small: the first images and labels, headers rewritten to match.
      const isImages = raw.readUInt32BE(0) === 0x803;
      const count = 30;
      const header = Buffer.from(raw.subarray(0, isImages ? 16 : 8));
      header.writeUInt32BE(count, 4);
      valid.set(
        base,
        Buffer.concat([header, raw.subarray(header.length, header.length + count * (isImages ? 784 : 1))]),
      );
    }
    const rng = new Random(11);
    const outcomes = new Set<string>();
    for (let c = 0; c < CASES_PER_LOADER; c++) {
      const dir = join(root, `idx-${c}`);
      await mkdir(dir);
      const victim = Object.values(IDX_FILES)[rng.int(4)]!;
      const gzip = rng.next() < 0.5;
      for (const [base, bytes] of valid) {
        const content = base === victim ? mutate(bytes, rng) : bytes;
        // Also mutate the compressed stream itself now and then.
        const stored = gzip
          ? base === victim && rng.next() < 0.3
            ? mutate(gzipSync(content), rng)
            : gzipSync(content)
          : content;
        await writeFile(join(dir, gzip ? `${base}.gz` : base), stored);
      }
      outcomes.add(await expectLoadOrDatasetError(dir));
    }
    expect(outcomes).toContain('rejected');
  });

  it('CIFAR-10 binary batches: mutated records and files', async () => {
    const rng = new Random(12);
    const record = 1 + 32 * 32 * 3;
    const batch = (count: number) =>
      Uint8Array.from({ length: count * record }, (_, i) => (i % record === 0 ? rng.int(10) : rng.int(256)));
    const outcomes = new Set<string>();
    for (let c = 0; c < CASES_PER_LOADER; c++) {
      const dir = join(root, `cifar-${c}`);
      await mkdir(dir);
      const victim = rng.int(6);
      const files = [...[1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), 'test_batch.bin'];
      for (const [i, name] of files.entries()) {
        const bytes = batch(4);
        await writeFile(join(dir, name), i === victim ? mutate(bytes, rng) : bytes);
      }
      await writeFile(
        join(dir, 'batches.meta.txt'),
        'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n',
      );
      outcomes.add(await expectLoadOrDatasetError(dir));
    }
    expect(outcomes).toContain('rejected');
  });

  it('image folders: mutated PNG files', async () => {
    const rng = new Random(13);
    const png = () => {
      const image = new PNG({ width: 8, height: 8 });
      for (let i = 0; i < image.data.length; i++) image.data[i] = i % 4 === 3 ? 255 : rng.int(256);
      return PNG.sync.write(image);
    };
    const outcomes = new Set<string>();
    for (let c = 0; c < CASES_PER_LOADER / 2; c++) {
      const dir = join(root, `images-${c}`);
      for (const cls of ['a', 'b']) {
        await mkdir(join(dir, cls), { recursive: true });
        for (let i = 0; i < 6; i++) await writeFile(join(dir, cls, `${i}.png`), png());
      }
      await writeFile(join(dir, 'b', 'victim.png'), mutate(png(), rng));
      outcomes.add(await expectLoadOrDatasetError(dir));
    }
    expect(outcomes).toContain('rejected');
  });

  it('run checkpoints: mutated checkpoint.json and weight files', async () => {
    const backend = summarizeBackend(await initBackend('wasm'));
    const config = {
      dataset: 'embedded',
      arch: { family: 'resnet', depth: 8, width: 0.25, exits: [1] },
      method: 'multiway',
      gamma: 2,
      epochs: 1,
      batchSize: 32,
      lr: 0.05,
      seed: 1,
      limitTrain: 64,
      limitTest: 32,
    };
    const trainer = await openRun(
      { kind: 'new', config, runsRoot: join(root, 'runs') },
      { backend, latency: { warmup: 0, minRepeats: 1, maxRepeats: 1 } },
    );
    await trainer.run();
    trainer.dispose();
    const dir = trainer.start.run;
    const manifest = await readFile(join(dir, CHECKPOINT_FILE));
    const { weightsFile } = await readCheckpointManifest(dir);
    const weights = await readFile(join(dir, weightsFile));
    const rng = new Random(14);
    const outcomes = new Set<string>();
    for (let c = 0; c < CASES_PER_LOADER / 2; c++) {
      const mutateManifest = rng.next() < 0.5;
      await writeFile(join(dir, CHECKPOINT_FILE), mutateManifest ? mutate(manifest, rng) : manifest);
      await writeFile(join(dir, weightsFile), mutateManifest ? weights : mutate(weights, rng));
      try {
        (await loadTrainedNetwork(dir)).net.dispose();
        outcomes.add('loaded');
      } catch (error) {
        expect(error, String(error)).toBeInstanceOf(FileError);
        expect((error as Error).message).toContain(dir);
        outcomes.add('rejected');
      }
    }
    expect(outcomes).toContain('rejected');
  });
});
