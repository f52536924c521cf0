/**
 * `npm run bench --backbone FILE` compares with PyTorch training the file's own graph
 * (electron/bench/torch_throughput.py, OnnxTrunk). The graph run by torch is the same network:
 * its features at every exit candidate the studio offers equal PyTorch's own module outputs of
 * the torchvision model the file was exported from: resnet18 with its batch norms kept (max
 * pooling, projections), mobilenet_v3_small (squeeze-and-excitation, hard swish), mobilenet_v2
 * (ReLU6 as Clip), efficientnet_b0 (sigmoids) and densenet121 (concatenation, average pooling). And
 * the bench reports torch's images/s beside the backend's for every method.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../electron/engine/backend/index.js';
import { inspectBackbone } from '../../electron/engine/models/import/network.js';
import { locate, PYTHON3_ONNX } from '../requirements.js';
import { exportTorchvision, type Exports } from './import/torchvision.js';

const SCRIPT = fileURLToPath(new URL('../../electron/bench/torch_throughput.py', import.meta.url));
const CLI = fileURLToPath(new URL('../../bin/mw-studio.js', import.meta.url));

const exported = exportTorchvision(
  [
    { name: 'resnet18', opset: 13, fold: false, size: 32, batch: 2 },
    { name: 'mobilenet_v3_small', opset: 14, fold: true, size: 32, batch: 2 },
    { name: 'mobilenet_v2', opset: 13, fold: false, size: 32, batch: 2 },
    { name: 'efficientnet_b0', opset: 13, fold: true, size: 32, batch: 2 },
    { name: 'densenet121', opset: 13, fold: true, size: 32, batch: 2 },
  ],
  'the PyTorch reference of imported backbones',
);
const python = exported && locate(PYTHON3_ONNX, 'the PyTorch reference of imported backbones');

describe.runIf(exported && python)('the bench PyTorch reference of an imported backbone', () => {
  const exports = exported as Exports;
  let dir: string;
  beforeAll(async () => {
    await initBackend('cpu');
    dir = mkdtempSync(join(tmpdir(), 'mw-bench-torch-'));
  });
  afterAll(() => {
    exports.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  // Collected even where the suite is skipped (no torchvision): no models then.
  it.each((exported?.models ?? []).map((m) => [m.tag, m] as const))(
    '%s: torch running the file has PyTorch module outputs at every candidate',
    (_tag, model) => {
      const { candidates } = inspectBackbone(model.onnx);
      const compared = candidates.filter((c) => c.module !== undefined && model.features[c.module]);
      // Enough of the network is checked: stages or blocks through to the final features (densenet's
      // come from a functional ReLU after its last module, and so have no module output to compare).
      expect(compared.length).toBeGreaterThanOrEqual(4);
      expect(compared.at(-1)!.id).toBeGreaterThanOrEqual(candidates.length - 1);
      const out = join(dir, `${model.tag}.features.bin`);
      const run = spawnSync(
        python!,
        [
          SCRIPT,
          '--backbone',
          model.onnx,
          '--exit-nodes',
          compared.map((c) => c.node).join(','),
          '--features-of',
          join(exports.dir, `${model.tag}.input.bin`),
          out,
        ],
        { encoding: 'utf8' },
      );
      expect(run.status, run.stderr).toBe(0);
      const bytes = readFileSync(out);
      const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      let offset = 0;
      for (const candidate of compared) {
        const reference = model.features[candidate.module!]!;
        const [c, h, w] = candidate.shape as [number, number, number];
        const size = model.batch * c * h * w;
        const ours = tf.tidy(() =>
          tf.transpose(tf.tensor4d(all.subarray(offset, offset + size), [model.batch, c, h, w]), [0, 2, 3, 1]),
        );
        offset += size;
        const theirs = exports.read(reference.file, reference.shape);
        const scale = tf.tidy(() => tf.max(tf.abs(theirs)).dataSync()[0]!);
        const error = tf.tidy(() => tf.max(tf.abs(tf.sub(ours, theirs))).dataSync()[0]!);
        expect(error, `${candidate.module} (candidate ${candidate.id})`).toBeLessThan(1e-4 * Math.max(1, scale));
        tf.dispose([ours, theirs]);
      }
      expect(offset).toBe(all.length);
    },
  );

  it('bench --backbone reports torch beside the backend for every method', () => {
    const model = exports.models.find((m) => m.name === 'resnet18')!;
    const report = join(dir, 'bench.json');
    const run = spawnSync(
      process.execPath,
      [
        CLI,
        'bench',
        '--backend',
        'ort',
        '--backbone',
        model.onnx,
        '--batch',
        '2',
        '--steps',
        '1',
        '--baseline',
        'none',
        '--out',
        report,
      ],
      { encoding: 'utf8', env: { ...process.env, MW_PYTHON: python! } },
    );
    expect(run.status, run.stderr).toBe(0);
    const { training, torchPeakMemoryBytes } = JSON.parse(readFileSync(report, 'utf8')) as {
      training: Record<
        string,
        { imagesPerSecond: number; torchImagesPerSecond?: number; ratio?: number; torchSkipped?: string }
      >;
      torchPeakMemoryBytes: number;
    };
    expect(Object.keys(training)).toEqual(['plain', 'joint', 'multiway']);
    for (const [method, entry] of Object.entries(training)) {
      expect(entry.torchSkipped, method).toBeUndefined();
      expect(entry.torchImagesPerSecond, method).toBeGreaterThan(0);
      expect(entry.ratio, method).toBeCloseTo(entry.imagesPerSecond / entry.torchImagesPerSecond!, 6);
    }
    expect(torchPeakMemoryBytes).toBeGreaterThan(0);
    expect(run.stdout).toMatch(/multiway\s+[\d.]+\s+[\d.]+\s+[\d.]+x/);
  }, 240_000);
});
