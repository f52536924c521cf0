/**
 * Per-exit evaluation: the confusion matrix, per-class figures, overthinking counts, the oracle
 * and the image selections against a brute-force count on random predictions; then a real
 * trained run evaluated on both splits, whose confusion diagonals match the run summary, cached
 * in the run folder, and the `evaluate --json` command.
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EvaluationSchema, type ImageSelection } from '../../shared/evaluation.js';
import type { RunConfigInput } from '../../shared/spec.js';
import { initBackend, summarizeBackend } from '../../electron/engine/backend/index.js';
import { loadRunDataset } from '../../electron/engine/data/index.js';
import { classMetrics, confusionMatrix, matrixAccuracy } from '../../electron/engine/evaluate/confusion.js';
import { overthinking, selectedImages } from '../../electron/engine/evaluate/overthinking.js';
import { exitAccuracy } from '../../electron/engine/evaluate/index.js';
import { exitPredictions } from '../../electron/engine/evaluate/predictions.js';
import { buildNetwork } from '../../electron/engine/models/index.js';
import type { Dataset } from '../../electron/engine/data/index.js';
import { describePredictions, evaluateRun, evaluationCachePath } from '../../electron/engine/evaluate/runEvaluation.js';
import { Random } from '../../electron/engine/random.js';
import { RunFolder } from '../../electron/engine/runs/store.js';
import { loadTrainedNetwork } from '../../electron/engine/runs/trained.js';
import { openRun } from '../../electron/engine/session.js';

function randomPredictions(samples: number, classes: number, exits: number, seed: number) {
  const rng = new Random(seed);
  const labels = Uint8Array.from({ length: samples }, () => rng.int(classes));
  // Each exit right about half the time, so every kind of pair occurs.
  const predicted = Array.from({ length: exits }, () =>
    Int32Array.from(labels, (label) => (rng.next() < 0.5 ? label : rng.int(classes))),
  );
  return { labels, predicted };
}

describe('evaluation figures against brute force', () => {
  const classes = 7;
  const names = Array.from({ length: classes }, (_, c) => `class ${c}`);
  const { labels, predicted } = randomPredictions(500, classes, 4, 11);

  it('counts every confusion cell and reads precision, recall, support and top-1 off it', () => {
    for (const p of predicted) {
      const matrix = confusionMatrix(labels, p, classes);
      for (let a = 0; a < classes; a++) {
        for (let q = 0; q < classes; q++) {
          let n = 0;
          for (let i = 0; i < labels.length; i++) if (labels[i] === a && p[i] === q) n++;
          expect(matrix[a]![q]).toBe(n);
        }
      }
      const right = labels.filter((label, i) => p[i] === label).length;
      expect(matrixAccuracy(matrix)).toBeCloseTo(right / labels.length, 12);
      classMetrics(matrix, names).forEach((m, c) => {
        const support = labels.filter((label) => label === c).length;
        const predictedAs = Array.from(p).filter((q) => q === c).length;
        const hits = labels.filter((label, i) => label === c && p[i] === c).length;
        expect(m).toEqual({
          class: c,
          name: names[c],
          support,
          precision: predictedAs ? hits / predictedAs : 0,
          recall: support ? hits / support : 0,
        });
      });
    }
  });

  it('counts overthinking, rescued-by-depth and the oracle for every pair of exits', () => {
    const result = overthinking(labels, predicted);
    expect(result.pairs).toHaveLength((4 * 3) / 2);
    for (const pair of result.pairs) {
      expect(pair.shallow).toBeLessThan(pair.deep);
      let broken = 0;
      let rescued = 0;
      for (let i = 0; i < labels.length; i++) {
        const a = predicted[pair.shallow]![i] === labels[i];
        const b = predicted[pair.deep]![i] === labels[i];
        if (a && !b) broken++;
        if (!a && b) rescued++;
      }
      expect(pair).toEqual({ ...pair, overthinking: broken, rescued });
    }
    result.oracle.forEach((share, j) => {
      const anyRight = Array.from(labels).filter((label, i) =>
        predicted.slice(0, j + 1).some((p) => p[i] === label),
      ).length;
      expect(share).toBeCloseTo(anyRight / labels.length, 12);
    });
    // The ceiling never falls with depth, and it starts at the first exit's own accuracy.
    expect(result.oracle[0]).toBeCloseTo(matrixAccuracy(confusionMatrix(labels, predicted[0]!, classes)), 12);
    expect([...result.oracle].sort((a, b) => a - b)).toEqual(result.oracle);
  });

  it('selects exactly the images each cell counts', () => {
    const matrix = confusionMatrix(labels, predicted[2]!, classes);
    for (let a = 0; a < classes; a++) {
      for (let q = 0; q < classes; q++) {
        const picked = selectedImages({ kind: 'confusion', exit: 2, actual: a, predicted: q }, labels, predicted);
        expect(picked).toHaveLength(matrix[a]![q]!);
        for (const i of picked) expect([labels[i], predicted[2]![i]]).toEqual([a, q]);
      }
    }
    for (const pair of overthinking(labels, predicted).pairs) {
      const ask = (kind: 'overthinking' | 'rescued'): ImageSelection => ({
        kind,
        shallow: pair.shallow,
        deep: pair.deep,
      });
      expect(selectedImages(ask('overthinking'), labels, predicted)).toHaveLength(pair.overthinking);
      expect(selectedImages(ask('rescued'), labels, predicted)).toHaveLength(pair.rescued);
    }
    expect(() => selectedImages({ kind: 'confusion', exit: 4, actual: 0, predicted: 0 }, labels, predicted)).toThrow(
      /exit 4 does not exist/,
    );
    expect(() => selectedImages({ kind: 'rescued', shallow: 2, deep: 1 }, labels, predicted)).toThrow(
      /must come before/,
    );
  });
});

const CONFIG: RunConfigInput = {
  dataset: 'embedded',
  arch: { family: 'resnet', depth: 8, width: 0.5, exits: [1, 2] },
  method: 'multiway',
  gamma: 2,
  epochs: 1,
  batchSize: 50,
  lr: 0.05,
  seed: 4,
  validationSplit: 0.2,
  limitTrain: 300,
  limitTest: 90,
};

describe('evaluating a trained run', () => {
  let runsRoot: string;
  let runDir: string;

  beforeAll(async () => {
    const backend = await initBackend('cpu');
    runsRoot = await mkdtemp(join(tmpdir(), 'mw-evaluation-'));
    const trainer = await openRun(
      { kind: 'new', config: CONFIG, runsRoot },
      { backend: summarizeBackend(backend), latency: { warmup: 1, minRepeats: 2, maxRepeats: 2 } },
    );
    await trainer.run();
    runDir = trainer.start.run;
    trainer.dispose();
  });

  afterAll(async () => {
    if (runsRoot) await rm(runsRoot, { recursive: true, force: true });
  });

  it('holds out a stratified validation share and keeps the last partial batch', async () => {
    const start = await (await RunFolder.open(runDir)).start();
    // 300 images: 60 held out (20%), 240 trained on in ceil(240 / 50) = 5 steps, the last of 40.
    expect(start?.dataset).toMatchObject({ train: 240, validation: 60, test: 90 });
    const { records } = await (await RunFolder.open(runDir)).metrics();
    expect(records.filter((r) => r.type === 'batch').map((r) => r.step)).toEqual([1, 2, 3, 4, 5]);
  });

  it('matches the run summary on each split: the confusion diagonal over its total is the exit top-1', async () => {
    const summary = await (await RunFolder.open(runDir)).summary();
    expect(summary).toBeDefined();
    const test = await evaluateRun(runDir, 'test');
    const validation = await evaluateRun(runDir, 'validation');
    expect(test.evaluation.samples).toBe(90);
    expect(validation.evaluation.samples).toBe(60);
    summary!.exits.forEach((exit, k) => {
      expect(matrixAccuracy(test.evaluation.exits[k]!.confusion)).toBe(exit.top1);
      expect(matrixAccuracy(validation.evaluation.exits[k]!.confusion)).toBe(exit.validationTop1);
    });
    expect(test.evaluation.classes).toEqual(summary!.dataset.classes);
    expect(test.evaluation.overthinking.pairs.map((p) => [p.shallow, p.deep])).toEqual([
      [0, 1],
      [0, 2],
      [1, 2],
    ]);
  });

  it('reads a cached evaluation back while the checkpoint is unchanged, and evaluates again once it is not', async () => {
    const fresh = (await evaluateRun(runDir, 'test')).evaluation;
    const path = evaluationCachePath(runDir, 'test');
    const cached = JSON.parse(await readFile(path, 'utf8')) as {
      evaluation: { exits: { top1: number }[]; step: number };
    };
    expect(EvaluationSchema.parse(cached.evaluation)).toEqual(fresh);
    // A marked figure comes back as written: the second call read the file, not the network.
    cached.evaluation.exits[0]!.top1 = 0.123;
    await writeFile(path, JSON.stringify(cached));
    expect((await evaluateRun(runDir, 'test')).evaluation.exits[0]!.top1).toBe(0.123);
    cached.evaluation.step += 1;
    await writeFile(path, JSON.stringify(cached));
    expect((await evaluateRun(runDir, 'test')).evaluation).toEqual(fresh);
  });

  it('computes every prediction without leaking tensors', async () => {
    const { net, start } = await loadTrainedNetwork(runDir);
    const dataset = await loadRunDataset(start.config);
    const before = tf.memory().numTensors;
    const predictions = await exitPredictions(net, dataset, dataset.test);
    expect(tf.memory().numTensors).toBe(before);
    net.dispose();
    expect(predictions.predicted).toHaveLength(3);
    for (const confidence of predictions.confidence)
      for (const c of confidence) expect(c).toBeGreaterThanOrEqual(1 / 10 - 1e-6);
  });

  it('prints the contract with `mw-studio evaluate --json`', async () => {
    await rm(evaluationCachePath(runDir, 'test'), { force: true });
    const child = spawn(
      process.execPath,
      [resolve('bin/mw-studio.js'), 'evaluate', '--run', runDir, '--split', 'test', '--json', '--backend', 'cpu'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise((done) => child.on('exit', done));
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      run: string;
      split: string;
      classes: string[];
      exits: {
        block: number;
        top1: number;
        perClass: { class: number; name: string; support: number }[];
        confusion: number[][];
      }[];
      overthinking: { pairs: unknown[]; oracle: number[] };
    };
    const summary = await (await RunFolder.open(runDir)).summary();
    expect(result).toMatchObject({ run: runDir, split: 'test', classes: summary!.dataset.classes });
    expect(result.exits.map((e) => e.block)).toEqual([1, 2, 3]);
    result.exits.forEach((exit, k) => {
      expect(matrixAccuracy(exit.confusion)).toBe(summary!.exits[k]!.top1);
      expect(exit.perClass.map((m) => m.support).reduce((a, b) => a + b, 0)).toBe(90);
    });
    expect(result.overthinking.oracle).toHaveLength(3);
  });
});

/** Writes class folders of PNG and JPEG images of several sizes, some gray and some in colour. */
async function writeMixedFolder(dir: string): Promise<void> {
  const rng = new Random(21);
  const sizes = [
    [24, 24],
    [40, 30],
    [32, 32],
    [17, 45],
  ];
  for (const [label, name] of ['left', 'right'].entries()) {
    await mkdir(join(dir, name), { recursive: true });
    for (let i = 0; i < 12; i++) {
      const [width, height] = sizes[i % sizes.length]!;
      const gray = i % 3 === 0;
      const rgba = Buffer.alloc(width! * height! * 4);
      for (let p = 0; p < width! * height!; p++) {
        // The class is which half is bright; noise and colour vary per image.
        const bright = p % width! < width! / 2 === (label === 0);
        const base = (bright ? 200 : 40) + rng.int(30);
        for (let c = 0; c < 3; c++) rgba[4 * p + c] = gray ? base : Math.min(255, base + 20 * c);
        rgba[4 * p + 3] = 255;
      }
      const file = join(dir, name, `${i}.${i % 2 ? 'jpg' : 'png'}`);
      if (i % 2)
        await writeFile(file, Buffer.from(jpeg.encode({ data: rgba, width: width!, height: height! }, 90).data));
      else {
        const png = new PNG({ width: width!, height: height! });
        png.data = rgba;
        await writeFile(file, PNG.sync.write(png, { colorType: gray ? 0 : 2 }));
      }
    }
  }
}

describe('a mixed-size RGB and gray image folder', () => {
  it('trains with image size 32, and its test evaluation keeps the diagonal rule', async () => {
    const backend = await initBackend('cpu');
    const root = await mkdtemp(join(tmpdir(), 'mw-mixed-'));
    try {
      const data = join(root, 'shapes');
      await writeMixedFolder(data);
      const { limitTrain, limitTest, ...settings } = CONFIG;
      const config: RunConfigInput = { ...settings, dataset: data, imageSize: 32, batchSize: 8, validationSplit: 0.1 };
      const trainer = await openRun(
        { kind: 'new', config, runsRoot: join(root, 'runs') },
        { backend: summarizeBackend(backend), latency: { warmup: 1, minRepeats: 2, maxRepeats: 2 } },
      );
      const summary = await trainer.run();
      trainer.dispose();
      expect(summary!.dataset).toMatchObject({ shape: { height: 32, width: 32, channels: 3 }, test: 4 });
      // Three images a class of each of four sizes: all but the 32x32 ones are resized.
      expect(summary!.dataset.sizeNote).toBe('18 of 24 images resized to 32x32, as --image-size asks');
      const { evaluation } = await evaluateRun(summary!.run, 'test');
      summary!.exits.forEach((exit, k) => expect(matrixAccuracy(evaluation.exits[k]!.confusion)).toBe(exit.top1));
      expect(evaluation.classes).toEqual(['left', 'right']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('top-5 from 20 classes', () => {
  it('counts per image what exitAccuracy counts in total, at every exit', async () => {
    await initBackend('cpu');
    const classes = 20;
    const rng = new Random(5);
    const count = 300;
    const set = {
      images: Uint8Array.from({ length: count * 64 }, () => rng.int(256)),
      labels: Uint8Array.from({ length: count }, () => rng.int(classes)),
      count,
    };
    const dataset: Dataset = {
      name: 'noise',
      source: 'memory',
      shape: { height: 8, width: 8, channels: 1 },
      classes: Array.from({ length: classes }, (_, c) => `c${c}`),
      train: set,
      test: set,
      normalization: { mean: [0.5], std: [0.3] },
      flipAugment: false,
    };
    const net = buildNetwork({ family: 'resnet', depth: 8, width: 0.5, exits: [1] }, [8, 8, 1], classes, 9);
    try {
      const predictions = await exitPredictions(net, dataset, set);
      const evaluation = describePredictions(predictions, net.costs(), dataset.classes, {
        run: 'memory',
        split: 'test',
        step: 0,
      });
      const accuracy = await exitAccuracy(net, dataset, set);
      expect(evaluation.exits.map((e) => e.top1)).toEqual(accuracy.top1);
      expect(evaluation.exits.map((e) => e.top5)).toEqual(accuracy.top5);
      // Untrained on noise: top-5 is well above top-1, near 5 in 20.
      for (const exit of evaluation.exits) expect(exit.top5!).toBeGreaterThan(exit.top1);
    } finally {
      net.dispose();
    }
  });
});
