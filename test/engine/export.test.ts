/**
 * Model export end to end: small real runs on the embedded Fashion-MNIST subset, every format
 * loaded back with its own runtime (tfjs-layers, onnxruntime-node) and compared with the trained
 * network on real test images; model cards; bad files and destinations; tensor hygiene.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as ort from 'onnxruntime-node';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../shared/metrics.js';
import type { RunConfigInput } from '../../shared/spec.js';
import { initBackend, summarizeBackend, type BackendInfo } from '../../electron/engine/backend/index.js';
import { loadDataset, makeBatch } from '../../electron/engine/data/index.js';
import {
  EarlyExitFileSchema,
  EXPORT_FILES,
  ExportError,
  exportExit,
  layersFolderHandler,
  loadExportedModel,
  readModelCard,
} from '../../electron/engine/export/index.js';
import { decodeOnnxModel } from '../../electron/engine/onnx/proto.js';
import type { MwNetwork } from '../../electron/engine/models/index.js';
import { RunFolder } from '../../electron/engine/runs/store.js';
import { loadTrainedNetwork } from '../../electron/engine/runs/trained.js';
import { openRun } from '../../electron/engine/session.js';

const RESNET: RunConfigInput = {
  dataset: 'embedded',
  arch: { family: 'resnet', depth: 8, width: 0.5, exits: [1, 2] },
  method: 'multiway',
  gamma: 2,
  epochs: 1,
  batchSize: 64,
  lr: 0.05,
  seed: 11,
  limitTrain: 256,
  limitTest: 64,
};
const MOBILENET: RunConfigInput = { ...RESNET, arch: { family: 'mobilenet', width: 0.25, exits: [3] } };
const TOLERANCE = 1e-4;
/** An ONNX export folder: the model, its card, and the demo page with onnxruntime-web. */
const ONNX_FOLDER = [
  'MODEL_CARD.md',
  'README.md',
  'demo.js',
  'index.html',
  'model-card.json',
  'model.onnx',
  'ort-wasm-simd-threaded.wasm',
  'ort.wasm.bundle.min.js',
];

interface TrainedRun {
  dir: string;
  net: MwNetwork;
  summary: RunSummary;
  /** 32 real test images, normalised as the run normalised them. */
  images: tf.Tensor4D;
}

let backend: BackendInfo;
let resnet: TrainedRun;
let mobilenet: TrainedRun;

async function trainRun(config: RunConfigInput): Promise<TrainedRun> {
  const root = await mkdtemp(join(tmpdir(), 'mw-export-'));
  const trainer = await openRun(
    { kind: 'new', config, runsRoot: root },
    { backend: summarizeBackend(backend), latency: { warmup: 1, minRepeats: 2, maxRepeats: 2 } },
  );
  const summary = (await trainer.run())!;
  const dir = trainer.start.run;
  trainer.dispose();
  const dataset = await loadDataset('embedded', {
    limitTrain: config.limitTrain,
    limitTest: config.limitTest,
    seed: config.seed,
  });
  const { x, labels } = makeBatch(
    dataset,
    dataset.test,
    Array.from({ length: 32 }, (_, i) => i),
    null,
  );
  labels.dispose();
  return { dir, net: (await loadTrainedNetwork(dir)).net, summary, images: x };
}

beforeAll(async () => {
  backend = await initBackend('wasm');
  resnet = await trainRun(RESNET);
  mobilenet = await trainRun(MOBILENET);
});

afterAll(() => {
  for (const run of [resnet, mobilenet]) {
    run.net.dispose();
    run.images.dispose();
  }
});

/** The ResNet run's exits as the API names them (after blocks 1 and 2, and the final output), shallowest first. */
const RESNET_EXITS = [1, 2, 'final'] as const;

function expected(run: TrainedRun, exit: number, images = run.images): Float32Array {
  return tf.tidy(() => run.net.predict(images, { upToExit: exit, onlyLast: true })[0]!.dataSync() as Float32Array);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

async function predictLayers(dir: string, images: tf.Tensor4D): Promise<Float32Array[]> {
  const model = await tfl.loadLayersModel(layersFolderHandler(dir));
  const outputs = [model.predict(images)].flat();
  const values = outputs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outputs);
  model.dispose();
  return values;
}

async function predictOnnx(path: string, images: tf.Tensor4D): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(path);
  const input = new ort.Tensor('float32', images.dataSync() as Float32Array, images.shape);
  const result = await session.run({ [session.inputNames[0]!]: input });
  const logits = result[session.outputNames[0]!]!;
  expect(logits.dims).toEqual([images.shape[0], 10]);
  await session.release();
  return logits.data as Float32Array;
}

/** Rewrites the weight list of an exported model.json. */
async function editManifest(dir: string, edit: (weights: { name: string; shape: number[] }[]) => void): Promise<void> {
  const path = join(dir, EXPORT_FILES.layersModel);
  const json = JSON.parse(await readFile(path, 'utf8'));
  edit(json.weightsManifest[0].weights);
  await writeFile(path, JSON.stringify(json));
}

describe('tfjs export', () => {
  it('loads back with tf.loadLayersModel and predicts what the network predicts at every exit', async () => {
    const names = ['exit-block1-tfjs', 'exit-block2-tfjs', 'final-tfjs'];
    for (const [index, exit] of RESNET_EXITS.entries()) {
      const result = await exportExit({ run: resnet.dir, exit, format: 'tfjs' });
      expect(result.directory).toBe(join(resnet.dir, 'exports', names[index]!));
      expect(result.files.map((f) => basename(f))).toEqual([
        'MODEL_CARD.md',
        'README.md',
        'demo.js',
        'index.html',
        'model-card.json',
        'model.json',
        'tf.min.js',
        'weights.bin',
      ]);
      const [logits] = await predictLayers(result.directory, resnet.images);
      expect(maxAbsDiff(logits!, expected(resnet, index))).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('holds only the sub-model, and pads stride-2 convolutions explicitly', async () => {
    const { directory } = await exportExit({ run: resnet.dir, exit: 2, format: 'tfjs' });
    const model = await tfl.loadLayersModel(layersFolderHandler(directory));
    const names = model.layers.map((l) => l.name);
    expect(model.outputs).toHaveLength(1);
    expect(names).toContain('blocks.2.conv1.conv.pad');
    expect(names.some((n) => n.startsWith('blocks.3') || n.startsWith('exits.1.') || n.startsWith('exits.3.'))).toBe(
      false,
    );
    expect(model.countParams()).toBe(resnet.summary.exits[1]!.params + batchNormBuffers(model));
    model.dispose();
  });
});

/** tfjs counts batch-norm moving statistics as parameters; our params count only trainable ones. */
function batchNormBuffers(model: tfl.LayersModel): number {
  return model.layers
    .filter((l) => l.getClassName() === 'BatchNormalization')
    .reduce((n, l) => n + 2 * l.getWeights()[0]!.size, 0);
}

describe('ONNX export', () => {
  it('runs in onnxruntime with any batch size and predicts what the network predicts at every exit', async () => {
    for (const [index, exit] of RESNET_EXITS.entries()) {
      const { directory, files } = await exportExit({ run: resnet.dir, exit, format: 'onnx' });
      expect(files.map((f) => basename(f))).toEqual(ONNX_FOLDER);
      const path = join(directory, EXPORT_FILES.onnxModel);
      expect(maxAbsDiff(await predictOnnx(path, resnet.images), expected(resnet, index))).toBeLessThanOrEqual(
        TOLERANCE,
      );
      const one = tf.slice(resnet.images, 0, 1);
      expect(maxAbsDiff(await predictOnnx(path, one), expected(resnet, index, one))).toBeLessThanOrEqual(TOLERANCE);
      one.dispose();
    }
  });

  it('is an opset-13 NCHW graph with an NHWC input, a dynamic batch and batch norms folded into the convolutions', async () => {
    const { directory } = await exportExit({ run: resnet.dir, exit: 'final', format: 'onnx' });
    const model = decodeOnnxModel(await readFile(join(directory, EXPORT_FILES.onnxModel)));
    expect(model.opset_import.map((o) => [o.domain ?? '', o.version])).toEqual([['', 13]]);
    const [input] = model.graph.input;
    expect(input!.type.tensor_type.shape!.dim).toEqual([
      { dim_param: 'N' },
      { dim_value: 28 },
      { dim_value: 28 },
      { dim_value: 1 },
    ]);
    expect(model.graph.output.map((o) => o.type.tensor_type.shape!.dim)).toEqual([
      [{ dim_param: 'N' }, { dim_value: 10 }],
    ]);
    const ops = model.graph.node.map((n) => n.op_type);
    expect(ops[0]).toBe('Transpose');
    expect(new Set(ops)).toEqual(
      new Set(['Transpose', 'Conv', 'Relu', 'Add', 'BatchNormalization', 'GlobalAveragePool', 'Flatten', 'Gemm']),
    );
    // 1 stem + 2 per block + 2 projection shortcuts; the only batch norm left is the exit head's.
    expect(ops.filter((op) => op === 'Conv')).toHaveLength(1 + 2 * 3 + 2);
    expect(ops.filter((op) => op === 'BatchNormalization')).toHaveLength(1);
  });
});

describe('multi-exit export', () => {
  it('has one output per exit, shallowest first, each matching the network, and early-exit metadata', async () => {
    const { directory, files } = await exportExit({ run: resnet.dir, exit: 'final', format: 'multi' });
    expect(basename(directory)).toBe('final-multi');
    expect(files.map((f) => basename(f))).toContain(EXPORT_FILES.earlyExit);
    const outputs = await predictLayers(directory, resnet.images);
    expect(outputs).toHaveLength(3);
    outputs.forEach((logits, exit) =>
      expect(maxAbsDiff(logits, expected(resnet, exit))).toBeLessThanOrEqual(TOLERANCE),
    );
    const metadata = EarlyExitFileSchema.parse(
      JSON.parse(await readFile(join(directory, EXPORT_FILES.earlyExit), 'utf8')),
    );
    expect(metadata.threshold).toBe(0.9);
    expect(metadata.exits.map((e) => e.block)).toEqual([1, 2, 3]);
    expect(metadata.exits.map((e) => e.output)).toEqual(['exits.1.fc', 'exits.2.fc', 'exits.3.fc']);
    expect(metadata.preprocessing.mean).toEqual(resnet.summary.dataset.normalization.mean);
  });

  it('stops at the chosen exit and records a custom threshold', async () => {
    const destination = join(await mkdtemp(join(tmpdir(), 'mw-multi-')), 'two-exits');
    await exportExit({ run: resnet.dir, exit: 2, format: 'multi', destination, threshold: 0.75 });
    expect(await predictLayers(destination, resnet.images)).toHaveLength(2);
    const metadata = EarlyExitFileSchema.parse(
      JSON.parse(await readFile(join(destination, EXPORT_FILES.earlyExit), 'utf8')),
    );
    expect(metadata.threshold).toBe(0.75);
    expect((await readModelCard(destination)).earlyExit).toEqual({ file: EXPORT_FILES.earlyExit, threshold: 0.75 });
  });
});

describe('MobileNet export', () => {
  it('exports depthwise-separable blocks to tfjs and to ONNX (grouped convolutions)', async () => {
    for (const [index, exit] of ([3, 'final'] as const).entries()) {
      const reference = expected(mobilenet, index);
      const layers = await exportExit({ run: mobilenet.dir, exit, format: 'tfjs' });
      const [logits] = await predictLayers(layers.directory, mobilenet.images);
      expect(maxAbsDiff(logits!, reference)).toBeLessThanOrEqual(TOLERANCE);
      const onnx = await exportExit({ run: mobilenet.dir, exit, format: 'onnx' });
      const path = join(onnx.directory, EXPORT_FILES.onnxModel);
      expect(maxAbsDiff(await predictOnnx(path, mobilenet.images), reference)).toBeLessThanOrEqual(TOLERANCE);
      const convs = decodeOnnxModel(await readFile(path)).graph.node.filter((n) => n.op_type === 'Conv');
      const groups = convs.map((n) => n.attribute!.find((a) => a.name === 'group')!.i);
      // Stem, then per block a depthwise (group = its 8 channels at width 0.25, block 1) and a pointwise conv.
      expect(groups.slice(0, 3)).toEqual([1, 8, 1]);
    }
  });
});

describe('model card', () => {
  it('exports Elastic heads (pool, dropout, FC; dropout is the identity at inference) to ONNX and tfjs', async () => {
    const elastic = await trainRun({ ...RESNET, head: 'elastic', freezeBackbone: true, augment: false });
    try {
      for (const [index, exit] of RESNET_EXITS.entries()) {
        const onnx = await exportExit({ run: elastic.dir, exit, format: 'onnx' });
        const path = join(onnx.directory, EXPORT_FILES.onnxModel);
        expect(maxAbsDiff(await predictOnnx(path, elastic.images), expected(elastic, index))).toBeLessThanOrEqual(
          TOLERANCE,
        );
        const layers = await exportExit({ run: elastic.dir, exit, format: 'tfjs' });
        const [logits] = await predictLayers(layers.directory, elastic.images);
        expect(maxAbsDiff(logits!, expected(elastic, index))).toBeLessThanOrEqual(TOLERANCE);
      }
    } finally {
      elastic.net.dispose();
      elastic.images.dispose();
    }
  });

  it('describes the exit, its training, accuracy, latency and the exact preprocessing', async () => {
    const { directory } = await exportExit({ run: resnet.dir, exit: 2, format: 'onnx' });
    const card = await readModelCard(directory);
    const report = resnet.summary.exits[1]!;
    expect(card.format).toBe('onnx');
    expect(card.dataset.name).toBe('Fashion-MNIST (embedded subset)');
    expect(card.dataset.classes).toEqual(resnet.summary.dataset.classes);
    expect(card.exits).toHaveLength(1);
    const [exit] = card.exits;
    expect(exit).toMatchObject({
      block: 2,
      layer: 5,
      final: false,
      output: 'exits.2.fc',
      params: report.params,
      macs: report.macs,
      top1: report.top1,
    });
    expect(exit!.lossWeight).toBe(resnet.summary.lossWeights[1]);
    expect(exit!.latencyMs.run).toEqual({
      backend: resnet.summary.backend.label,
      ...(report.latencyMs.runtime ? { runtime: report.latencyMs.runtime } : {}),
      device: resnet.summary.backend.device,
      batch1: report.latencyMs.batch1,
      batch32: report.latencyMs.batch32,
    });
    expect(exit!.latencyMs.onnxruntime!.batch1.median).toBeGreaterThan(0);
    expect(card.run).toMatchObject({ method: 'multiway', seed: 11, epochs: 1, finishedAt: resnet.summary.finishedAt });
    expect(Date.now() - Date.parse(card.createdAt)).toBeLessThan(600_000);
    expect(card.preprocessing).toMatchObject({
      layout: 'NHWC',
      dtype: 'float32',
      shape: ['N', 28, 28, 1],
      mean: resnet.summary.dataset.normalization.mean,
      std: resnet.summary.dataset.normalization.std,
    });
    expect(card.verification.maxAbsDiff).toBeLessThan(TOLERANCE);

    const markdown = await readFile(join(directory, EXPORT_FILES.cardMarkdown), 'utf8');
    for (const text of [
      'Fashion-MNIST (embedded subset)',
      'exit @ block 2',
      'Multi-way BP',
      `${(report.top1 * 100).toFixed(2)}%`,
      '(pixel[n, h, w, c] / 255 - mean[c]) / std[c]',
      String(resnet.summary.dataset.normalization.mean[0]),
      '0 T-shirt/top',
      'onnxruntime',
    ]) {
      expect(markdown).toContain(text);
    }
  });

  it('leaves accuracy and tfjs latency out for a run that has not finished', async () => {
    const copy = join(await mkdtemp(join(tmpdir(), 'mw-unfinished-')), 'run');
    await cp(resnet.dir, copy, { recursive: true });
    await rm(join(copy, 'summary.json'));
    const { directory } = await exportExit({ run: copy, exit: 1, format: 'tfjs' });
    const [exit] = (await readModelCard(directory)).exits;
    expect(exit!.top1).toBeUndefined();
    expect(exit!.latencyMs).toEqual({});
    expect(await readFile(join(directory, EXPORT_FILES.cardMarkdown), 'utf8')).toContain('run not finished');
  });
});

describe('bad requests and destinations', () => {
  it('rejects an exit outside the network, naming the exits there are', async () => {
    for (const exit of [4, 0, -1, 1.5]) {
      await expect(exportExit({ run: resnet.dir, exit, format: 'tfjs' })).rejects.toThrow(
        new RegExp(
          `exit ${exit} is not in the network: MwResNet-8-3 \\(width 0.5, projection\\) has exits after blocks 1, 2, final \\(block 3\\)`,
        ),
      );
    }
    await expect(exportExit({ run: resnet.dir, exit: 1, format: 'onnx', threshold: 0.5 })).rejects.toThrow(
      /threshold applies to the multi-exit formats only/,
    );
    await expect(exportExit({ run: resnet.dir, exit: 1, format: 'multi', threshold: 1.5 })).rejects.toThrow(
      /threshold must be a probability/,
    );
  });

  it('fails on a destination under a regular file, leaving nothing behind', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mw-dest-'));
    await writeFile(join(root, 'a-file'), 'not a folder');
    const error = await exportExit({
      run: resnet.dir,
      exit: 1,
      format: 'onnx',
      destination: join(root, 'a-file', 'export'),
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExportError);
    expect((error as Error).message).toMatch(
      /cannot write the export to .*a-file\/export: part of the path is a file, not a folder/,
    );
    expect(await readdir(root)).toEqual(['a-file']);
  });

  it('never replaces a folder of other files, and replaces a previous export whole', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mw-dest-'));
    const mine = join(root, 'mine');
    await mkdir(mine);
    await writeFile(join(mine, 'notes.txt'), 'keep me');
    await expect(exportExit({ run: resnet.dir, exit: 1, format: 'tfjs', destination: mine })).rejects.toThrow(
      /holds files that are not part of an export \(notes\.txt\); choose a new or empty folder/,
    );
    expect(await readdir(mine)).toEqual(['notes.txt']);

    const target = join(root, 'export');
    await exportExit({ run: resnet.dir, exit: 1, format: 'tfjs', destination: target });
    await exportExit({ run: resnet.dir, exit: 2, format: 'onnx', destination: target });
    expect((await readdir(target)).sort()).toEqual(ONNX_FOLDER);
    expect((await readModelCard(target)).exits[0]!.block).toBe(2);
    expect((await readdir(root)).sort()).toEqual(['export', 'mine']);
  });

  it('names the run folder when it cannot be read', async () => {
    await expect(exportExit({ run: join(tmpdir(), 'no-such-run'), exit: 1, format: 'tfjs' })).rejects.toThrow(
      /no-such-run: not a run folder/,
    );
  });
});

describe('loading a damaged export', () => {
  /** A copy of the export of the exit after block 1, damaged by `damage`. */
  async function damagedCopy(format: 'tfjs' | 'onnx', damage?: (dir: string) => Promise<unknown>): Promise<string> {
    const { directory } = await exportExit({ run: resnet.dir, exit: 1, format });
    const copy = join(await mkdtemp(join(tmpdir(), 'mw-damaged-')), 'export');
    await cp(directory, copy, { recursive: true });
    await damage?.(copy);
    return copy;
  }

  it('loads an intact export of either kind', async () => {
    const layers = await loadExportedModel(await damagedCopy('tfjs'));
    expect(layers.format).toBe('tfjs');
    if (layers.format === 'tfjs') layers.model.dispose();
    const onnx = await loadExportedModel(await damagedCopy('onnx'));
    expect(onnx.format).toBe('onnx');
    if (onnx.format === 'onnx') await onnx.session.release();
  });

  it('gives errors that name the file and the problem', async () => {
    const cases: [() => Promise<string>, RegExp][] = [
      [
        () =>
          damagedCopy('tfjs', (dir) => writeFile(join(dir, EXPORT_FILES.layersModel), '{"modelTopology": {"class_na')),
        /model\.json: not valid JSON/,
      ],
      [
        () => damagedCopy('tfjs', (dir) => editManifest(dir, (weights) => weights.pop())),
        /weights\.bin: \d+ bytes, but .*model\.json describes \d+ bytes of weights \(extra bytes\)/,
      ],
      [
        () => damagedCopy('tfjs', (dir) => truncate(join(dir, EXPORT_FILES.layersWeights), 100)),
        /weights\.bin: 100 bytes, but .*model\.json describes \d+ bytes of weights \(truncated\)/,
      ],
      [
        () => damagedCopy('tfjs', (dir) => rm(join(dir, EXPORT_FILES.layersWeights))),
        /weights\.bin: file not found \(.*model\.json lists it\)/,
      ],
      [
        () =>
          damagedCopy('tfjs', (dir) => editManifest(dir, (weights) => (weights[0]!.shape = [1, ...weights[0]!.shape]))),
        /model\.json: not a loadable TensorFlow\.js layers model with its weights: Shape mismatch: \[3,3,1,8\] vs\. \[1,3,3,1,8\]/,
      ],
      [
        () => damagedCopy('tfjs', (dir) => writeFile(join(dir, EXPORT_FILES.layersModel), '{"weightsManifest": []}')),
        /model\.json: modelTopology/,
      ],
      [
        () => damagedCopy('onnx', (dir) => truncate(join(dir, EXPORT_FILES.onnxModel), 300)),
        /model\.onnx: onnxruntime cannot load it as an ONNX model: /,
      ],
      [
        () => damagedCopy('onnx', (dir) => writeFile(join(dir, EXPORT_FILES.onnxModel), 'not a protobuf')),
        /model\.onnx: onnxruntime cannot load it as an ONNX model: /,
      ],
      [() => mkdtemp(join(tmpdir(), 'mw-empty-')), /no exported model here/],
    ];
    for (const [damaged, message] of cases) {
      const error = await loadExportedModel(await damaged()).catch((e: unknown) => e);
      expect(error, String(message)).toBeInstanceOf(ExportError);
      expect((error as Error).message).toMatch(message);
    }
  });
});

describe('tensor hygiene', () => {
  it('leaves no tensors behind after exporting and loading every format, or failing to', async () => {
    const before = tf.memory().numTensors;
    for (const format of ['tfjs', 'tfjs-float16', 'onnx', 'onnx-int8', 'multi', 'multi-onnx-int8'] as const) {
      const { directory } = await exportExit({ run: mobilenet.dir, exit: 3, format });
      const loaded = await loadExportedModel(directory);
      if (loaded.format === 'tfjs') loaded.model.dispose();
      else await loaded.session.release();
      if (format === 'tfjs') {
        await editManifest(directory, (weights) => weights[0]!.shape.unshift(1));
        await expect(loadExportedModel(directory)).rejects.toThrow(/Shape mismatch/);
      }
    }
    await expect(exportExit({ run: resnet.dir, exit: 5, format: 'tfjs' })).rejects.toThrow(ExportError);
    expect(tf.memory().numTensors).toBe(before);
  });
});

it('run folders keep their files: exports go in exports/', async () => {
  const folder = await RunFolder.open(resnet.dir);
  expect(await folder.summary()).toEqual(resnet.summary);
  expect((await readdir(join(resnet.dir, 'exports'))).sort()).toEqual([
    'exit-block1-onnx',
    'exit-block1-tfjs',
    'exit-block2-onnx',
    'exit-block2-tfjs',
    'final-multi',
    'final-onnx',
    'final-tfjs',
  ]);
});

describe('pre-activation and option-A networks', () => {
  it('export to tfjs and ONNX predicting what the network predicts (bare convolutions, fixed shortcut filters)', async () => {
    for (const block of ['preact', 'option-a'] as const) {
      const run = await trainRun({
        ...RESNET,
        arch: { family: 'resnet', depth: 8, width: 0.5, block, exits: [1] },
        limitTrain: 128,
        limitTest: 32,
      });
      try {
        for (const [index, exit] of ([1, 'final'] as const).entries()) {
          const tfjs = await exportExit({ run: run.dir, exit, format: 'tfjs' });
          const [logits] = await predictLayers(tfjs.directory, run.images);
          expect(maxAbsDiff(logits!, expected(run, index))).toBeLessThanOrEqual(TOLERANCE);
          const onnx = await exportExit({ run: run.dir, exit, format: 'onnx' });
          expect(
            maxAbsDiff(
              await predictOnnx(join(onnx.directory, EXPORT_FILES.onnxModel), run.images),
              expected(run, index),
            ),
          ).toBeLessThanOrEqual(TOLERANCE);
        }
      } finally {
        run.net.dispose();
        run.images.dispose();
      }
    }
  });
});
