/**
 * Deployment-grade export on a real trained ResNet (embedded Fashion-MNIST): the int8 QDQ ONNX
 * file against the float network, onnx's own checker on it (Debian's python3-onnx), every
 * format's recorded accuracy against a direct re-scoring of the written files, sizes and
 * latencies in the card, and damaged int8 files refused.
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readFile, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunConfigInput } from '../../shared/spec.js';
import { EXPORT_FORMAT_KINDS, type ExportFormat } from '../../shared/deployment.js';
import { initBackend, summarizeBackend } from '../../electron/engine/backend/index.js';
import {
  argmax,
  EarlyExitFileSchema,
  EXPORT_FILES,
  ExportError,
  exportExit,
  loadExportedModel,
  readModelCard,
} from '../../electron/engine/export/index.js';
import type { MwNetwork } from '../../electron/engine/models/index.js';
import { decodeOnnxModel } from '../../electron/engine/onnx/proto.js';
import { runOnnx } from '../../electron/engine/onnx/runtime.js';
import { loadTrainedNetwork } from '../../electron/engine/runs/trained.js';
import { openRun } from '../../electron/engine/session.js';
import { locate, PYTHON3_ONNX } from '../requirements.js';
import { runTestImages } from './helpers.js';

/**
 * Trained enough that its final exit is not a coin flip (about 60% top-1), small enough for a
 * test. Its exit after block 2 stays weak (about 50%): many of its logits are near-tied, and any
 * rounding reorders those, so it is held to a lower agreement than the trained final exit.
 */
const CONFIG: RunConfigInput = {
  dataset: 'embedded',
  arch: { family: 'resnet', depth: 8, width: 1, exits: [2] },
  method: 'multiway',
  gamma: 2,
  epochs: 3,
  batchSize: 64,
  lr: 0.1,
  seed: 5,
  limitTrain: 2000,
  limitTest: 200,
};
/** Exit indices: after block 2, and the final output; EXIT_REFS names them as the API does. */
const FINAL = 1;
const EXIT_REFS = [2, 'final'] as const;
/** The least share of held-out images whose int8 top-1 equals the float network's, per exit. */
const AGREEMENT = [0.95, 0.98];

/** onnx's checker through Debian's python3-onnx; undefined (with one printed line) where it is missing, an error under CI. */
function onnxChecker(): ((path: string) => { ok: boolean; output: string }) | undefined {
  const python = locate(PYTHON3_ONNX, "onnx's checker on the int8 export");
  if (!python) return undefined;
  return (path) => {
    const run = spawnSync(
      python,
      [
        '-c',
        'import sys, onnx; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True); print("valid")',
        path,
      ],
      { encoding: 'utf8' },
    );
    return { ok: run.status === 0, output: `${run.stdout}${run.stderr}` };
  };
}

let dir: string;
let net: MwNetwork;
/** The held-out (test) images, preprocessed, and their labels. */
let images: tf.Tensor4D;
let labels: Uint8Array;

beforeAll(async () => {
  const backend = await initBackend('wasm');
  const root = await mkdtemp(join(tmpdir(), 'mw-deploy-'));
  const trainer = await openRun(
    { kind: 'new', config: CONFIG, runsRoot: root },
    { backend: summarizeBackend(backend), latency: { warmup: 1, minRepeats: 2, maxRepeats: 2 } },
  );
  await trainer.run();
  dir = trainer.start.run;
  net = (await loadTrainedNetwork(dir)).net;
  // As the run loads it: its normalisation comes from the training images it kept after the validation hold-out.
  ({ images, labels } = await runTestImages(trainer.start.config));
  trainer.dispose();
}, 300_000);

afterAll(() => {
  net?.dispose();
  images?.dispose();
});

function topClasses(logits: ArrayLike<number>, count: number): number[] {
  const classes = logits.length / count;
  return Array.from({ length: count }, (_, i) => argmax(logits, i * classes, classes));
}

function networkClasses(exit: number): number[] {
  const logits = tf.tidy(() => net.predict(images, { upToExit: exit, onlyLast: true })[0]!.dataSync());
  return topClasses(logits, images.shape[0]);
}

/** Top classes of every output of an export folder, loaded as a user would load it. */
async function exportedClasses(directory: string): Promise<number[][]> {
  const loaded = await loadExportedModel(directory);
  const count = images.shape[0];
  if (loaded.format === 'onnx') {
    const outputs = await runOnnx(loaded.session, images.dataSync() as Float32Array, [28, 28, 1]);
    await loaded.session.release();
    return outputs.map((logits) => topClasses(logits, count));
  }
  const outputs = [loaded.model.predict(images)].flat();
  const classes = outputs.map((t) => topClasses(t.dataSync(), count));
  tf.dispose(outputs);
  loaded.model.dispose();
  return classes;
}

const accuracyOf = (classes: number[]) => classes.filter((c, i) => c === labels[i]).length / classes.length;

describe('int8 ONNX export', () => {
  it("agrees with the float network's top-1 on at least 98% of the held-out images at the trained exit", async () => {
    for (const exit of [0, FINAL]) {
      const { directory, deployment } = await exportExit({ run: dir, exit: EXIT_REFS[exit]!, format: 'onnx-int8' });
      const [int8] = await exportedClasses(directory);
      const float = networkClasses(exit);
      const agreement = int8!.filter((c, i) => c === float[i]).length / float.length;
      expect(agreement, `exit ${exit}`).toBeGreaterThanOrEqual(AGREEMENT[exit]!);
      expect(deployment.accuracy.int8).toBe(accuracyOf(int8!));
    }
  });

  it('is a QDQ graph with int8 weights, a quarter of the float size or less in weights, that passes onnx.checker', async () => {
    const { directory, deployment } = await exportExit({ run: dir, exit: 'final', format: 'onnx-int8' });
    const path = join(directory, EXPORT_FILES.onnxModel);
    const model = decodeOnnxModel(await readFile(path));
    const ops = model.graph.node.map((n) => n.op_type);
    expect(ops.filter((op) => op === 'QuantizeLinear').length).toBeGreaterThan(0);
    expect(ops.filter((op) => op === 'Conv')).toHaveLength(1 + 2 * 3 + 2);
    const weights = model.graph.initializer.filter((t) => t.name.endsWith('.weight.quantized'));
    expect(weights.length).toBe(1 + 2 * 3 + 2 + 1);
    expect(weights.every((t) => t.data_type === 3)).toBe(true);
    expect(deployment.sizes.onnxInt8).toBe((await readFile(path)).byteLength);
    expect(deployment.sizes.onnxInt8).toBeLessThan(deployment.sizes.onnxFloat32 / 2);
    const check = onnxChecker();
    if (check) {
      const result = check(path);
      expect(result.output).toContain('valid');
      expect(result.ok).toBe(true);
    }
  });

  it('exports every exit up to the chosen one as int8 outputs, with early-exit metadata naming the ONNX file', async () => {
    const { directory } = await exportExit({ run: dir, exit: 'final', format: 'multi-onnx-int8', threshold: 0.8 });
    const outputs = await exportedClasses(directory);
    expect(outputs).toHaveLength(2);
    outputs.forEach((classes, exit) => {
      const float = networkClasses(exit);
      expect(classes.filter((c, i) => c === float[i]).length / float.length, `exit ${exit}`).toBeGreaterThanOrEqual(
        AGREEMENT[exit]!,
      );
    });
    const metadata = EarlyExitFileSchema.parse(
      JSON.parse(await readFile(join(directory, EXPORT_FILES.earlyExit), 'utf8')),
    );
    expect(metadata).toMatchObject({ model: EXPORT_FILES.onnxModel, threshold: 0.8 });
    expect((await readModelCard(directory)).exits.map((e) => e.exportedTop1.int8)).toEqual(outputs.map(accuracyOf));
  });
});

describe('accuracy re-checked on the exported file', () => {
  it("records, for every format, exactly the top-1 a direct re-scoring of the written file gives, and the engine's figure", async () => {
    const summary = (await loadTrainedNetwork(dir).then(async (t) => {
      t.net.dispose();
      return t.folder.summary();
    }))!;
    for (const format of Object.keys(EXPORT_FORMAT_KINDS) as ExportFormat[]) {
      const { directory, deployment } = await exportExit({ run: dir, exit: 'final', format });
      const card = await readModelCard(directory);
      expect(card.deployment).toEqual(deployment);
      expect(deployment.accuracy).toMatchObject({ split: 'test', images: 200, engine: summary.exits[FINAL]!.top1 });
      const outputs = await exportedClasses(directory);
      const precision = EXPORT_FORMAT_KINDS[format].weights;
      expect(deployment.accuracy[precision], format).toBe(accuracyOf(outputs.at(-1)!));
      card.exits.forEach((exit, k) =>
        expect(exit.exportedTop1[precision], `${format} output ${k}`).toBe(accuracyOf(outputs[k]!)),
      );
      // The float32 figure of a float16 or int8 export is the float32 model's: the network's own answers.
      expect(deployment.accuracy.float32, format).toBe(accuracyOf(networkClasses(FINAL)));
      const expectedWarnings = card.exits.flatMap((exit) =>
        Object.entries(exit.exportedTop1)
          .filter(([, top1]) => (exit.top1! - top1) * 100 > 0.5)
          .map(([precision]) => expect.stringContaining(`${exit.label}, ${precision}: the exported file scores`)),
      );
      expect(deployment.warnings).toEqual(expectedWarnings);
    }
  });

  it('gives every format its size and float32 against int8 latency in the card', async () => {
    const { directory, deployment } = await exportExit({ run: dir, exit: 'final', format: 'tfjs' });
    const modelJson = (await readFile(join(directory, EXPORT_FILES.layersModel))).byteLength;
    const weights = (await readFile(join(directory, EXPORT_FILES.layersWeights))).byteLength;
    expect(deployment.sizes.tfjsFloat32).toBe(modelJson + weights);
    // Half the weight bytes; model.json grows by each weight's quantization entry.
    expect(deployment.sizes.tfjsFloat16).toBeGreaterThan(modelJson + weights / 2);
    expect(deployment.sizes.tfjsFloat16).toBeLessThan(modelJson + weights);
    expect(deployment.onnxruntimeBatch1.float32.median).toBeGreaterThan(0);
    expect(deployment.onnxruntimeBatch1.int8.median).toBeGreaterThan(0);
    const markdown = await readFile(join(directory, EXPORT_FILES.cardMarkdown), 'utf8');
    for (const text of [
      '## Deployment',
      'ONNX int8 (QDQ)',
      'tfjs float16 weights',
      `${deployment.accuracy.images} test images`,
    ])
      expect(markdown).toContain(text);
  });
});

describe('damaged int8 exports', () => {
  it('refuses a truncated or corrupted int8 model with an error naming the file', async () => {
    const { directory } = await exportExit({ run: dir, exit: 2, format: 'onnx-int8' });
    const path = join(directory, EXPORT_FILES.onnxModel);
    const size = (await readFile(path)).byteLength;
    for (const damage of [
      (copy: string) => truncate(join(copy, EXPORT_FILES.onnxModel), Math.floor(size / 2)),
      (copy: string) => corruptMiddle(join(copy, EXPORT_FILES.onnxModel)),
    ]) {
      const copy = join(await mkdtemp(join(tmpdir(), 'mw-damaged-int8-')), 'export');
      await cp(directory, copy, { recursive: true });
      await damage(copy);
      const error = await loadExportedModel(copy).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ExportError);
      expect((error as Error).message).toMatch(
        /model\.onnx: (onnxruntime cannot load it as an ONNX model|does not match its model card \(SHA-256 differs\))/,
      );
    }
  });
});

/** Overwrites bytes in the middle of a file: a flipped-bit download, not a short one. */
async function corruptMiddle(path: string): Promise<void> {
  const bytes = await readFile(path);
  bytes.fill(0xff, Math.floor(bytes.length / 2), Math.floor(bytes.length / 2) + 64);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path, bytes);
}
