/**
 * A run on an imported backbone, outside training itself: the lesion study's shortcuts against
 * PyTorch's own (torchvision resnet18's downsample branches), which blocks of mobilenet_v2 can be
 * skipped; evaluation, early exit, lesion and supervision shares through the engine's API on a
 * trained run; and a run stopped and resumed ending where an uninterrupted one ends.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResponseSchemas } from '../../shared/api.js';
import type { RunSummary } from '../../shared/metrics.js';
import type { RunConfigInput } from '../../shared/spec.js';
import { initBackend, summarizeBackend, type BackendInfo } from '../../electron/engine/backend/index.js';
import { loadRunDataset } from '../../electron/engine/data/index.js';
import { exitAccuracy } from '../../electron/engine/evaluate/index.js';
import { EngineHost } from '../../electron/engine/host.js';
import { importBackbone, type ImportedBackbone } from '../../electron/engine/models/import/backbone.js';
import { buildImportedNetwork } from '../../electron/engine/models/import/network.js';
import { ParamFactory } from '../../electron/engine/models/layers.js';
import { Random } from '../../electron/engine/random.js';
import { RunFolder } from '../../electron/engine/runs/store.js';
import { loadTrainedNetwork } from '../../electron/engine/runs/trained.js';
import { openRun } from '../../electron/engine/session.js';
import type { Trainer } from '../../electron/engine/train/trainer.js';
import { callHost, expectClose, expectSameWeights, expectSubModelLatency, snapshot } from './helpers.js';
import { writeFashionFolder } from './import/fashionFolder.js';
import { exportTorchvision, type ExportRequest, type Exports } from './import/torchvision.js';

const SIZE = 32;
const MOBILENET: ExportRequest = { name: 'mobilenet_v2', opset: 13, fold: false, size: SIZE, batch: 1 };
const RESNET: ExportRequest = { name: 'resnet18', opset: 13, fold: false, size: SIZE, batch: 2 };
const LATENCY = { warmup: 1, minRepeats: 2, maxRepeats: 2 };

let backend: BackendInfo;
let exports: Exports | undefined;
let root: string;
let config: RunConfigInput;

beforeAll(async () => {
  backend = await initBackend('wasm');
  exports = exportTorchvision([MOBILENET, RESNET], 'analyses and resume on imported backbones');
  if (!exports) return;
  root = await mkdtemp(join(tmpdir(), 'mw-import-analyses-'));
  config = {
    dataset: await writeFashionFolder(root, { classes: 4, train: 20, test: 10 }),
    imageSize: SIZE,
    arch: { family: 'imported', backbone: exports.models[0]!.onnx, exits: [5, 12] },
    method: 'multiway',
    gamma: 2,
    epochs: 2,
    batchSize: 16,
    lr: 0.05,
    seed: 8,
    validationSplit: 0.2,
  };
}, 300_000);

afterAll(async () => {
  exports?.dispose();
  if (root) await rm(root, { recursive: true, force: true });
});

function importOf(request: ExportRequest): ImportedBackbone {
  return importBackbone(
    readFileSync(exports!.models.find((m) => m.name === request.name)!.onnx),
    new ParamFactory(new Random(0)),
  );
}

function disposeBackbone(backbone: ImportedBackbone): void {
  for (const layer of [...backbone.blocks, ...(backbone.classifier ? [backbone.classifier] : [])])
    for (const p of [...layer.params, ...layer.buffers]) p.variable.dispose();
}

async function newRun(
  onEvent?: (t: Trainer, step: number) => void,
  settings: Partial<RunConfigInput> = {},
): Promise<Trainer> {
  const trainer: Trainer = await openRun(
    { kind: 'new', config: { ...config, ...settings }, runsRoot: join(root, 'runs') },
    {
      backend: summarizeBackend(backend),
      latency: LATENCY,
      onEvent: (e) => {
        if (e.type === 'batch') onEvent?.(trainer, e.step);
      },
    },
  );
  return trainer;
}

describe('the lesion study on imported blocks', () => {
  it("skips a residual block of resnet18 to its shortcut, identity or PyTorch's downsample branch, then the block's ReLU", () => {
    if (!exports) return;
    const model = exports.models.find((m) => m.name === RESNET.name)!;
    const backbone = importOf(RESNET);
    const feature = (module: string) => exports!.read(model.features[module]!.file, model.features[module]!.shape);
    // torchvision's resnet18: two basic blocks per stage; the first of stages 2-4 downsamples.
    expect(backbone.candidates.map((c) => c.module)).toEqual([
      'layer1.0',
      'layer1',
      'layer2.0',
      'layer2',
      'layer3.0',
      'layer3',
      'layer4.0',
      'layer4',
    ]);
    expect(backbone.blocks.every((b) => b.skippable)).toBe(true);
    for (let k = 1; k < backbone.blocks.length; k++) {
      tf.tidy(() => {
        const input = feature(backbone.candidates[k - 1]!.module!);
        const downsample = model.features[`${backbone.candidates[k]!.module}.downsample`];
        const expected = downsample ? tf.relu(exports!.read(downsample.file, downsample.shape)) : input;
        expectClose(backbone.blocks[k]!.lesionForward(input)!, expected, 1e-4);
      });
    }
    disposeBackbone(backbone);
  });

  it("skips exactly mobilenet_v2's inverted residuals that keep their shape, and no block that changes it", () => {
    if (!exports) return;
    const backbone = importOf(MOBILENET);
    // Sandler et al. 2018, table 2 (t, c, n, s): in each group of n blocks, those after the first keep their shape and add their input.
    const groups = [1, 2, 3, 4, 3, 3, 1];
    const residual: number[] = [];
    let block = 1; // features.0 is the stem convolution, candidate 1
    for (const n of groups) {
      for (let i = 0; i < n; i++) if (i > 0) residual.push(block + 1 + i);
      block += n;
    }
    const skippable = backbone.blocks.flatMap((b, i) => (b.skippable ? [i + 1] : []));
    expect(skippable).toEqual(residual);
    // Skipped, such a block passes its input on unchanged (no activation after the sum).
    tf.tidy(() => {
      const x = tf.randomNormal([
        2,
        ...backbone.candidates[residual[0]! - 2]!.shape.slice(1),
        backbone.candidates[residual[0]! - 2]!.shape[0]!,
      ]);
      expectClose(backbone.blocks[residual[0]! - 1]!.lesionForward(x)!, x, 0);
      expect(backbone.blocks[0]!.lesionForward(x)).toBeNull();
    });
    disposeBackbone(backbone);
  });
});

describe('a trained run on an imported mobilenet_v2', () => {
  it('is evaluated, and answers early exit, lesion and supervision', async () => {
    if (!exports) return;
    const trainer = await newRun();
    const summary = (await trainer.run())!;
    const dir = trainer.start.run;
    trainer.dispose();
    const host = new EngineHost({ backend, runsRoot: join(root, 'runs'), emit: () => {} });
    const before = tf.memory().numTensors;

    const evaluation = ResponseSchemas.evaluate.parse(await callHost(host, 'evaluate', { run: dir, split: 'test' }));
    expect(evaluation.exits.map((e) => e.top1)).toEqual(summary.exits.map((e) => e.top1));

    const early = ResponseSchemas.earlyExit.parse(
      await callHost(host, 'earlyExit', { run: dir, criterion: 'max-softmax' }),
    );
    expect(early.samples).toBe(16);
    const lesion = ResponseSchemas.lesion.parse(await callHost(host, 'lesion', { run: dir }));
    const supervision = ResponseSchemas.supervision.parse(await callHost(host, 'supervision', { run: dir }));
    expect(tf.memory().numTensors).toBe(before);

    const { net, start } = await loadTrainedNetwork(dir);
    const dataset = await loadRunDataset(start.config);
    expect(lesion.blocks.map((row) => row.accuracy === null)).toEqual(net.blocks.map((b) => !b.skippable));
    for (const row of lesion.blocks.filter((r) => r.accuracy)) {
      const lesioned = (await exitAccuracy(net, dataset, dataset.validation!, { skipBlock: row.block })).top1;
      net.exits.forEach((e) =>
        expect(row.accuracy![e.index]).toBe(e.block < row.block ? lesion.baseline[e.index] : lesioned[e.index]),
      );
    }
    // The imported network's stem is empty: the shares are the blocks'.
    expect(supervision.layers.map((l) => l.name)).toEqual(net.blocks.map((_, i) => `block ${i + 1}`));
    for (const layer of supervision.layers) {
      expect(layer.norms.every((n) => Number.isFinite(n) && n >= 0)).toBe(true);
      expect(layer.shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    }
    net.dispose();
  });

  it.each([
    ['multi-way, the default heads', {}],
    [
      'the Elastic recipe: dropout heads, the backbone frozen for the first epoch',
      { head: 'elastic', freezeEpochs: 1, method: 'joint', gamma: 0 },
    ],
  ] as [string, Partial<RunConfigInput>][])(
    '%s: stopped mid-epoch and resumed, ends where an uninterrupted run with the same seed ends',
    async (_, settings) => {
      if (!exports) return;
      const straight = await newRun(undefined, settings);
      const straightSummary = (await straight.run()) as RunSummary;
      const expected = snapshot(straight.net.namedTensors());
      straight.dispose();

      // 64 training images in batches of 16: stopping after step 5 leaves the second epoch half done.
      const stopped = await newRun((t, step) => {
        if (step === 5) t.stop();
      }, settings);
      expect(await stopped.run()).toBeUndefined();
      const dir = stopped.start.run;
      stopped.dispose();
      expect((await (await RunFolder.open(dir)).state())?.status).toBe('stopped');

      const resumed = await openRun({ kind: 'resume', dir }, { backend: summarizeBackend(backend), latency: LATENCY });
      expect(resumed.start.resumedFrom?.epoch).toBe(1);
      const resumedSummary = (await resumed.run()) as RunSummary;
      expectSameWeights(snapshot(resumed.net.namedTensors()), expected, 1e-5);
      expect(resumedSummary.exits.map((e) => e.top1)).toEqual(straightSummary.exits.map((e) => e.top1));
      resumed.dispose();
    },
  );
});

describe('per-exit latency of an imported network', () => {
  it('runs the exit’s whole sub-model in onnxruntime under wasm-ort, the network’s own logits', async () => {
    if (!exports) return;
    const net = buildImportedNetwork(readFileSync(exports.models.find((m) => m.name === RESNET.name)!.onnx), {
      exits: [3],
      classes: 4,
      seed: 6,
      name: 'resnet18',
    });
    try {
      await initBackend('wasm-ort');
      const x = tf.randomNormal([3, SIZE, SIZE, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
      await expectSubModelLatency(net, 0, x);
      x.dispose();
    } finally {
      net.dispose();
      await initBackend('wasm');
    }
  });
});
