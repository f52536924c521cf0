/**
 * Continuing from a model made in the studio: its own ONNX export imports with the same
 * predictions, and trains as a backbone through the CLI (training, evaluation and per-exit
 * latency unchanged); resuming that run refuses a backbone file that changed since. No Python
 * needed: these run on every machine.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../electron/engine/backend/index.js';
import { importBackbone } from '../../electron/engine/models/import/backbone.js';
import { exportGraph } from '../../electron/engine/models/inferenceGraph.js';
import { buildNetwork } from '../../electron/engine/models/index.js';
import { ParamFactory } from '../../electron/engine/models/layers.js';
import { onnxModelBytes } from '../../electron/engine/models/onnxSubModel.js';
import { Random } from '../../electron/engine/random.js';
import { expectClose, randomTensor } from './helpers.js';

const SIZE = 16;
const dir = mkdtempSync(join(tmpdir(), 'mw-import-studio-'));
let backbone = '';

beforeAll(async () => {
  await initBackend('wasm');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the studio's own ONNX export as a backbone", () => {
  it('imports with the exported model’s predictions, a candidate after the stem and after each block', async () => {
    const net = buildNetwork({ family: 'resnet', depth: 8, width: 0.5, exits: [1] }, [SIZE, SIZE, 3], 4, 7);
    const bytes = await onnxModelBytes(exportGraph(net, [net.exits.length - 1]), {
      name: net.description.name,
      description: '',
      metadata: {},
    });
    backbone = join(dir, 'mwresnet8.onnx');
    writeFileSync(backbone, bytes);
    const imported = importBackbone(bytes, new ParamFactory(new Random(0)));
    expect(imported.inputShape).toEqual([SIZE, SIZE, 3]);
    // Stem and three blocks; each output is read by the next block's main path and its shortcut.
    expect(imported.candidates.map((c) => c.shape)).toEqual([
      [8, 16, 16],
      [8, 16, 16],
      [16, 8, 8],
      [32, 4, 4],
    ]);
    tf.tidy(() => {
      const x = randomTensor([3, SIZE, SIZE, 3], 5);
      const h = imported.blocks.reduce((v, block) => block.forward(v), x);
      expectClose(imported.classifier!.forward(h), net.predict(x).at(-1)!, 1e-4);
    });
    for (const layer of [...imported.blocks, imported.classifier!])
      for (const p of [...layer.params, ...layer.buffers]) p.variable.dispose();
    net.dispose();
  });

  it('trains through the CLI, and resuming refuses the file once it changed', () => {
    expect(backbone).not.toBe('');
    const images = join(dir, 'images');
    ['red', 'blue'].forEach((name, c) => {
      mkdirSync(join(images, name), { recursive: true });
      for (let i = 0; i < 12; i++) {
        const png = new PNG({ width: SIZE, height: SIZE });
        for (let p = 0; p < SIZE * SIZE; p++) {
          png.data[4 * p] = c === 0 ? 200 + i : 20 * (p % 3);
          png.data[4 * p + 1] = (p * 7 + i) % 256;
          png.data[4 * p + 2] = c === 1 ? 200 + i : 20 * (p % 3);
          png.data[4 * p + 3] = 255;
        }
        writeFileSync(join(images, name, `${i}.png`), PNG.sync.write(png, { colorType: 2 }));
      }
    });
    const runs = join(dir, 'runs');
    const cli = (args: string[]) =>
      spawnSync(process.execPath, ['bin/mw-studio.js', ...args], { encoding: 'utf8', env: { ...process.env } });
    const train = cli([
      'train',
      '--backbone',
      backbone,
      '--exits',
      '2',
      '--dataset',
      images,
      '--image-size',
      String(SIZE),
      '--validation',
      '0',
      '--epochs',
      '1',
      '--batch',
      '8',
      '--out',
      runs,
      '--json',
    ]);
    expect(train.status, train.stderr).toBe(0);
    const summary = JSON.parse(train.stdout.trim().split('\n').at(-1)!) as {
      exits: { block: number; top1: number; latency: { batch1: { median: number } } }[];
    };
    expect(summary.exits.map((e) => e.block)).toEqual([2, 4]);
    for (const exit of summary.exits) expect(exit.latency.batch1.median).toBeGreaterThan(0);
    const [run] = readdirSync(runs);
    const config = JSON.parse(readFileSync(join(runs, run!, 'config.json'), 'utf8')) as {
      arch: { sha256: string; blocks: number };
    };
    expect(config.arch.blocks).toBe(4);
    expect(config.arch.sha256).toMatch(/^[0-9a-f]{64}$/);

    const changed = readFileSync(backbone);
    changed.writeUInt8(changed.readUInt8(changed.length - 1) ^ 1, changed.length - 1);
    writeFileSync(backbone, changed);
    const resume = cli(['train', '--resume', join(runs, run!)]);
    expect(resume.status).toBe(1);
    expect(resume.stderr.trim().split('\n').at(-1)).toMatch(
      /^mw-studio train: the backbone .* changed since the run started/,
    );
  });
});
