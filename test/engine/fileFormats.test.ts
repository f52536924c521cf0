/**
 * Each file format the engine reads back has one zod schema, and every reader parses with it: a
 * malformed model card, checkpoint, study record or run summary, written as a real file in a
 * temporary folder, is refused with an error naming the file and the field at fault, while the
 * same file intact reads back as written.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RUN_CONFIG } from '../../shared/spec.js';
import { newStudyRecord } from '../../shared/study.js';
import type { RunSummary } from '../../shared/metrics.js';
import { initBackend } from '../../electron/engine/backend/index.js';
import {
  EXPORT_FILES,
  ExportError,
  loadExportedModel,
  predictImages,
  readModelCard,
  type ModelCard,
} from '../../electron/engine/export/index.js';
import { encodeOnnxModel, tensorInfo } from '../../electron/engine/onnx/proto.js';
import { CHECKPOINT_FILE, loadCheckpoint, saveCheckpoint } from '../../electron/engine/runs/checkpoint.js';
import { FileError, writeJsonAtomic } from '../../electron/engine/runs/files.js';
import { RunFolder } from '../../electron/engine/runs/store.js';
import { readStudy, studyPath } from '../../electron/engine/study.js';

const latency = { median: 1.5, p90: 2 };

/** A complete card, as an export writes it, for a 4x4 gray input and two classes. */
function validCard(): ModelCard {
  return {
    title: 'MwResNet-8: exit after block 1',
    createdAt: '2026-12-06T12:00:00.000Z',
    format: 'onnx',
    files: [EXPORT_FILES.onnxModel],
    sha256: {},
    network: 'MwResNet-8',
    run: {
      folder: '/runs/a',
      method: 'multiway',
      methodLabel: 'Multi-way',
      gamma: 0.5,
      seed: 1,
      epochs: 2,
      batchSize: 32,
      learningRate: 0.1,
    },
    dataset: { name: 'tiny', source: '/data/tiny', classes: ['no', 'yes'], trainImages: 10, testImages: 4 },
    exits: [
      {
        index: 0,
        block: 1,
        layer: 3,
        final: false,
        label: 'exit after block 1',
        output: 'logits',
        params: 100,
        macs: 1000,
        lossWeight: 0.5,
        exportedTop1: { float32: 0.75 },
        latencyMs: { onnxruntime: { version: '1.30.0', device: 'CPU', batch1: latency } },
      },
    ],
    outputs: 'logits',
    preprocessing: {
      input: 'input',
      layout: 'NHWC',
      dtype: 'float32',
      shape: ['N', 4, 4, 1],
      channelOrder: 'grayscale',
      mean: [0.5],
      std: [0.25],
      formula: 'x = (pixel / 255 - mean) / std',
    },
    verification: { images: 4, maxAbsDiff: 0 },
    deployment: {
      accuracy: { split: 'test', images: 4, float32: 0.75 },
      warnings: [],
      sizes: { onnxFloat32: 100, onnxInt8: 50, tfjsFloat32: 100, tfjsFloat16: 50 },
      onnxruntimeBatch1: { float32: latency, int8: latency, version: '1.30.0', device: 'CPU' },
    },
  };
}

/** An export folder holding a real (trivial) ONNX model and `card` as its model card text. */
async function exportFolder(card: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mw-card-'));
  // Flatten [N, 4, 4, 1] -> [N, 16]: a model onnxruntime loads; what it computes does not matter here.
  const model = encodeOnnxModel({
    ir_version: 7,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'test',
    graph: {
      name: 'flatten',
      node: [{ name: 'flatten', op_type: 'Flatten', input: ['input'], output: ['logits'] }],
      initializer: [],
      input: [tensorInfo('input', ['N', 4, 4, 1])],
      output: [tensorInfo('logits', ['N', 16])],
    },
  });
  await writeFile(join(dir, EXPORT_FILES.onnxModel), model);
  await writeFile(join(dir, EXPORT_FILES.cardJson), card);
  return dir;
}

/** Marks a field to remove in `changed`. */
const REMOVED = Symbol('removed');

/** The JSON text of `value` with the field at `path` set to `to` (or removed); `value` is left as it is. */
function changed(value: unknown, path: readonly (string | number)[], to: unknown): string {
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (to === REMOVED) delete parent[last];
  else parent[last] = to;
  return JSON.stringify(copy);
}

/** A malformed file: its text, given the intact file's value. */
type Malformed = (intact: unknown) => string;
const notJson =
  (text: string): Malformed =>
  () =>
    text;
const withField =
  (path: readonly (string | number)[], to: unknown): Malformed =>
  (intact) =>
    changed(intact, path, to);

describe('the model card', () => {
  it('reads back as written', async () => {
    const dir = await exportFolder(JSON.stringify(validCard()));
    expect(await readModelCard(dir)).toEqual(validCard());
    const loaded = await loadExportedModel(dir);
    expect(loaded.card).toEqual(validCard());
    if (loaded.format === 'onnx') await loaded.session.release();
  });

  it.each([
    ['not JSON', notJson('{"title": "cut off'), /model-card\.json: not valid JSON/],
    ['no exits', withField(['exits'], []), /model-card\.json: exits: /],
    [
      'a checksum that is not hex SHA-256',
      withField(['sha256'], { 'model.onnx': 'abc' }),
      /sha256\.model\.onnx: must be a hex SHA-256/,
    ],
    ['an unknown format', withField(['format'], 'pickle'), /model-card\.json: format: /],
    [
      'a mean per channel missing',
      withField(['preprocessing', 'mean'], []),
      /preprocessing\.mean: preprocessing\.mean must have one value per input channel/,
    ],
    ['a zero std', withField(['preprocessing', 'std'], [0]), /model-card\.json: preprocessing\.std\.0: /],
    ['no deployment report', withField(['deployment'], REMOVED), /model-card\.json: deployment: /],
    [
      'an early-exit threshold above 1',
      withField(['earlyExit'], { file: 'early-exit.json', threshold: 2 }),
      /earlyExit\.threshold: /,
    ],
  ])('is refused with %s, by every reader, naming the file', async (_what, malformed, message) => {
    const dir = await exportFolder(malformed(validCard()));
    const path = join(dir, EXPORT_FILES.cardJson);
    for (const read of [() => readModelCard(dir), () => loadExportedModel(dir), () => predictImages(dir, [])]) {
      const error = await read().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ExportError);
      expect((error as Error).message).toContain(`${path}: `);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toMatch(/export the model again/);
    }
  });
});

describe('the checkpoint manifest', () => {
  beforeAll(async () => {
    await initBackend('cpu');
  });

  /** A run folder with a real checkpoint of two small tensors. */
  async function checkpointFolder(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'mw-checkpoint-'));
    const weight = tf.tensor([1, 2, 3, 4], [2, 2]);
    const velocity = tf.tensor([0.5, -0.5], [2]);
    await saveCheckpoint(dir, {
      epoch: 1,
      step: 7,
      progress: { stepInEpoch: 0, lossSums: [1], correct: [2], seen: 3, seconds: 4 },
      network: new Map([['w', weight]]),
      optimizers: [{ name: 'sgd0', state: new Map([['w.velocity', velocity]]) }],
    });
    tf.dispose([weight, velocity]);
    return dir;
  }

  it('reads back as written', async () => {
    const dir = await checkpointFolder();
    const loaded = await loadCheckpoint(dir);
    expect(loaded.step).toBe(7);
    expect(await loaded.network.get('w')!.array()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    tf.dispose([...loaded.network.values(), ...loaded.optimizers.flatMap((o) => [...o.state.values()])]);
  });

  it.each([
    ['not JSON', notJson('{"format": 1,'), /checkpoint\.json: not valid JSON/],
    ['a negative step', withField(['step'], -1), /checkpoint\.json: step: /],
    ['a weights file outside the folder', withField(['weightsFile'], '../x.bin'), /checkpoint\.json: weightsFile: /],
    ['an unknown format version', withField(['format'], 2), /checkpoint\.json: format: /],
    ['a tensor without a shape', withField(['network', 0, 'shape'], REMOVED), /checkpoint\.json: network\.0\.shape: /],
  ])('is refused with %s, naming the file', async (_what, malformed, message) => {
    const dir = await checkpointFolder();
    const path = join(dir, CHECKPOINT_FILE);
    await writeFile(path, malformed(JSON.parse(await readFile(path, 'utf8'))));
    const before = tf.memory().numTensors;
    const error = await loadCheckpoint(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileError);
    expect((error as Error).message).toContain(`${path}: `);
    expect((error as Error).message).toMatch(message);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('the study record', () => {
  const plan = {
    base: DEFAULT_RUN_CONFIG,
    methods: [{ method: 'plain' as const, distill: false, gradientEquilibrium: false }],
    seeds: 2,
  };

  it.each([
    ['not JSON', notJson('{"id": '), /not valid JSON/],
    ['an unknown status', withField(['status'], 'paused'), /: status: /],
    ['no seeds', withField(['seeds'], 0), /: seeds: seeds must be at least 1/],
    ['a run folder outside the runs root', withField(['runs', 0, 'run'], '../elsewhere'), /: runs\.0\.run: /],
    ['a field it does not know', withField(['owner'], 'me'), /: Unrecognized key: "owner"/],
  ])('is refused with %s, naming the file', async (_what, malformed, message) => {
    const root = await mkdtemp(join(tmpdir(), 'mw-study-'));
    const id = 'study-a';
    // A finished study: a running one without its process reads back as interrupted.
    const record = { ...newStudyRecord(id, plan), status: 'completed' as const };
    const path = studyPath(root, id);
    await writeJsonAtomic(path, record);
    expect(await readStudy(root, id)).toEqual(record);
    await writeFile(path, malformed(record));
    const error = await readStudy(root, id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileError);
    expect((error as Error).message).toContain(`${path}: `);
    expect((error as Error).message).toMatch(message);
  });
});

describe('the run summary', () => {
  const summary = (run: string): RunSummary => ({
    run,
    name: 'a',
    network: 'MwResNet-8',
    config: DEFAULT_RUN_CONFIG,
    dataset: {
      name: 'tiny',
      source: 'embedded',
      classes: ['no', 'yes'],
      shape: { height: 4, width: 4, channels: 1 },
      train: 10,
      test: 4,
      validation: 0,
      normalization: { mean: [0.5], std: [0.25] },
    },
    backend: { name: 'cpu', label: 'JavaScript', device: 'CPU', gpu: false },
    lossWeights: [0.5, 1],
    exits: [],
    trainSeconds: 3,
    imagesPerSecond: 100,
    finishedAt: '2026-12-06T12:00:00.000Z',
  });

  it.each([
    ['not JSON', notJson('['), /summary\.json: not valid JSON/],
    ['a throughput that is not a number', withField(['imagesPerSecond'], 'fast'), /summary\.json: imagesPerSecond: /],
    ['no backend', withField(['backend'], REMOVED), /summary\.json: backend: /],
    ['a config with an unknown method', withField(['config', 'method'], 'magic'), /summary\.json: config\.method: /],
  ])('is refused with %s, naming the file', async (_what, malformed, message) => {
    const folder = await RunFolder.create(await mkdtemp(join(tmpdir(), 'mw-summary-')), DEFAULT_RUN_CONFIG);
    const written = summary(folder.dir);
    await folder.writeSummary(written);
    expect(await folder.summary()).toEqual(written);
    await writeFile(folder.path('summary'), malformed(written));
    const error = await folder.summary().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileError);
    expect((error as Error).message).toContain(`${folder.path('summary')}: `);
    expect((error as Error).message).toMatch(message);
  });
});
