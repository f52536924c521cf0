/**
 * Model-selection analyses against independent computations: the early-exit sweep against a
 * brute-force count, the lesion study against MwNetwork.predict with skipBlock, supervision
 * shares against tfjs autodiff of each exit's weighted loss; and the API on a real trained run.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EQUAL_ACCURACY_TOLERANCE, type ExitCriterion } from '../../shared/analysis.js';
import { ResponseSchemas } from '../../shared/api.js';
import type { RunConfigInput } from '../../shared/spec.js';
import {
  earlyExitSweep,
  lesionStudy,
  supervisionShares,
  sweepThresholds,
  type ExitProbabilities,
} from '../../electron/engine/analysis/index.js';
import { initBackend, summarizeBackend, type BackendInfo } from '../../electron/engine/backend/index.js';
import { loadDataset, makeBatch, type Dataset, type ImageSet } from '../../electron/engine/data/index.js';
import { exitAccuracy } from '../../electron/engine/evaluate/index.js';
import { EngineHost } from '../../electron/engine/host.js';
import { buildNetwork, type MwNetwork } from '../../electron/engine/models/index.js';
import { Random } from '../../electron/engine/random.js';
import { loadTrainedNetwork } from '../../electron/engine/runs/trained.js';
import { openRun } from '../../electron/engine/session.js';
import { methodLossWeights } from '../../electron/engine/train/lossWeights.js';
import { callHost, randomLabels, randomTensor } from './helpers.js';

const CONFIG: RunConfigInput = {
  dataset: 'embedded',
  arch: { family: 'resnet', depth: 8, width: 0.5, exits: [1, 2] },
  method: 'joint',
  gamma: 2,
  epochs: 1,
  batchSize: 64,
  lr: 0.05,
  seed: 3,
  limitTrain: 256,
  limitTest: 64,
};

let backend: BackendInfo;
let runsRoot: string;
let runDir: string;
let net: MwNetwork;
let dataset: Dataset;

beforeAll(async () => {
  backend = await initBackend('cpu');
  runsRoot = await mkdtemp(join(tmpdir(), 'mw-analysis-'));
  const trainer = await openRun(
    { kind: 'new', config: CONFIG, runsRoot },
    { backend: summarizeBackend(backend), latency: { warmup: 1, minRepeats: 2, maxRepeats: 2 } },
  );
  await trainer.run();
  runDir = trainer.start.run;
  trainer.dispose();
  net = (await loadTrainedNetwork(runDir)).net;
  dataset = await loadDataset('embedded', {
    limitTrain: CONFIG.limitTrain,
    limitTest: CONFIG.limitTest,
    seed: CONFIG.seed,
  });
});

afterAll(() => net.dispose());

function expectNoLeak<T>(work: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  return work().then((result) => {
    expect(tf.memory().numTensors).toBe(before);
    return result;
  });
}

/** Random probability rows: `exits` arrays of samples x classes, each row summing to 1. */
function randomProbabilities(rng: Random, exits: number, samples: number, classes: number): ExitProbabilities {
  const probabilities = Array.from({ length: exits }, () => {
    const values = new Float32Array(samples * classes);
    for (let i = 0; i < samples; i++) {
      // A sharpness per row, so both confident and unsure rows occur.
      const sharpness = rng.next() * 8;
      const raw = Array.from({ length: classes }, () => Math.exp(rng.next() * sharpness));
      const total = raw.reduce((a, b) => a + b, 0);
      raw.forEach((r, c) => (values[i * classes + c] = r / total));
    }
    return values;
  });
  return { classes, labels: Array.from({ length: samples }, () => rng.int(classes)), probabilities };
}

/** Leaving exit of sample i, written straight from the definition. */
function bruteForceExit(data: ExitProbabilities, i: number, criterion: ExitCriterion, threshold: number): number {
  const last = data.probabilities.length - 1;
  for (let k = 0; k < last; k++) {
    const row = [...data.probabilities[k]!.slice(i * data.classes, (i + 1) * data.classes)];
    const confident =
      criterion === 'max-softmax'
        ? Math.max(...row) >= threshold
        : -row.reduce((h, p) => h + (p > 0 ? p * Math.log(p) : 0), 0) / Math.log(data.classes) <= threshold;
    if (confident) return k;
  }
  return last;
}

describe('early-exit sweep', () => {
  const costs = [
    { macs: 100, latencyMs: 1 },
    { macs: 250, latencyMs: 2 },
    { macs: 600, latencyMs: 5 },
  ];

  it.each(['max-softmax', 'entropy'] as const)('matches a brute-force count on random cases (%s)', (criterion) => {
    const rng = new Random(7);
    for (let trial = 0; trial < 5; trial++) {
      const data = randomProbabilities(rng, 3, 40, 4);
      const thresholds = [0, 0.2, 0.45, 0.7, 0.9, 1];
      const sweep = sweepThresholds(data, criterion, thresholds, costs);
      const samples = data.labels.length;
      const predicted = (k: number, i: number) => {
        const row = [...data.probabilities[k]!.slice(i * 4, i * 4 + 4)];
        return row.indexOf(Math.max(...row));
      };
      const finalRight = Array.from({ length: samples }, (_, i) => predicted(2, i) === data.labels[i]).filter(
        Boolean,
      ).length;
      expect(sweep.final.accuracy).toBeCloseTo(finalRight / samples, 12);
      thresholds.forEach((threshold, t) => {
        const leaving = [0, 0, 0];
        let right = 0;
        for (let i = 0; i < samples; i++) {
          const exit = bruteForceExit(data, i, criterion, threshold);
          leaving[exit]!++;
          if (predicted(exit, i) === data.labels[i]) right++;
        }
        const point = sweep.points[t]!;
        expect(point.threshold).toBe(threshold);
        expect(point.accuracy).toBeCloseTo(right / samples, 12);
        expect(point.exitShares).toEqual(leaving.map((n) => n / samples));
        const macs = leaving.reduce((s, n, k) => s + n * costs[k]!.macs, 0) / samples;
        expect(point.meanMacs).toBeCloseTo(macs, 9);
        expect(point.macsRatio).toBeCloseTo(macs / 600, 9);
        expect(point.latencyRatio).toBeCloseTo(
          leaving.reduce((s, n, k) => s + n * costs[k]!.latencyMs, 0) / samples / 5,
          9,
        );
      });
      const eligible = sweep.points.filter((p) => p.accuracy >= sweep.final.accuracy - EQUAL_ACCURACY_TOLERANCE);
      const cheapest = Math.min(...eligible.map((p) => p.meanMacs));
      expect(sweep.equalAccuracy?.meanMacs ?? null).toBe(eligible.length ? cheapest : null);
    }
  });

  it('never leaves early when no exit can be confident enough', () => {
    const data = randomProbabilities(new Random(1), 3, 20, 5);
    const [strict] = sweepThresholds(data, 'max-softmax', [1.5], costs).points;
    expect(strict!.exitShares).toEqual([0, 0, 1]);
    expect(strict!.macsRatio).toBe(1);
    const [everyone] = sweepThresholds(data, 'entropy', [1], costs).points;
    expect(everyone!.exitShares).toEqual([1, 0, 0]);
  });

  it('on a trained network: the final and the threshold-0 accuracies equal exitAccuracy, no tensors leak', async () => {
    const costs3 = net.costs().map((c) => ({ macs: c.macs, latencyMs: c.index + 1 }));
    const sweep = await expectNoLeak(() =>
      earlyExitSweep(net, dataset, dataset.test, { criterion: 'max-softmax', costs: costs3 }),
    );
    const accuracy = await exitAccuracy(net, dataset, dataset.test);
    expect(sweep.samples).toBe(dataset.test.count);
    expect(sweep.final.accuracy).toBeCloseTo(accuracy.top1.at(-1)!, 12);
    // Threshold 0: every image leaves at the first exit, so the accuracy is that exit's.
    expect(sweep.points[0]!.threshold).toBe(0);
    expect(sweep.points[0]!.accuracy).toBeCloseTo(accuracy.top1[0]!, 12);
    expect(sweep.points[0]!.exitShares[0]).toBe(1);
    expect(sweep.equalAccuracy).not.toBeNull();
    expect(sweep.equalAccuracy!.accuracy).toBeGreaterThanOrEqual(sweep.final.accuracy - EQUAL_ACCURACY_TOLERANCE);
  });
});

/** Accuracy of every exit with `block` skipped, counted from predict on the whole set at once. */
function lesionedAccuracy(network: MwNetwork, data: Dataset, set: ImageSet, block: number): number[] {
  return tf.tidy(() => {
    const { x, labels } = makeBatch(
      data,
      set,
      Array.from({ length: set.count }, (_, i) => i),
      null,
    );
    const logits = network.predict(x, { skipBlock: block });
    return logits.map((l) => tf.sum(tf.cast(tf.equal(tf.argMax(l, 1), labels), 'float32')).dataSync()[0]! / set.count);
  });
}

describe('lesion study', () => {
  it('matches predict with skipBlock, and exits below the block keep their baseline', async () => {
    const study = await expectNoLeak(() => lesionStudy(net, dataset, dataset.test));
    expect(study.exitBlocks).toEqual([1, 2, 3]);
    expect(study.blocks.map((b) => b.block)).toEqual([1, 2, 3]);
    const baseline = lesionedAccuracy(net, dataset, dataset.test, 0);
    study.baseline.forEach((a, k) => expect(a).toBeCloseTo(baseline[k]!, 12));
    for (const row of study.blocks) {
      expect(row.accuracy).not.toBeNull();
      const independent = lesionedAccuracy(net, dataset, dataset.test, row.block);
      row.accuracy!.forEach((a, k) => expect(a).toBeCloseTo(independent[k]!, 12));
      net.exits
        .filter((e) => e.block < row.block)
        .forEach((e) => expect(row.accuracy![e.index]).toBe(study.baseline[e.index]));
    }
    // Skipping block 1 must change something the deeper exits compute.
    expect(study.blocks[0]!.accuracy).not.toEqual(study.baseline);
  });

  it('reports null for MobileNet blocks that change shape (no shortcut to stand in)', async () => {
    const mobile = buildNetwork({ family: 'mobilenet', width: 0.125, exits: [3] }, [28, 28, 1], 10, 2);
    const subset: ImageSet = {
      images: dataset.test.images.subarray(0, 16 * 28 * 28),
      labels: dataset.test.labels.subarray(0, 16),
      count: 16,
    };
    const study = await expectNoLeak(() => lesionStudy(mobile, dataset, subset));
    study.blocks.forEach((row, i) => expect(row.accuracy === null).toBe(!mobile.blocks[i]!.skippable));
    expect(study.blocks.some((row) => row.accuracy === null)).toBe(true);
    expect(study.blocks.some((row) => row.accuracy !== null)).toBe(true);
    mobile.dispose();
  });
});

describe('supervision shares', () => {
  it.each(['joint', 'multiway', 'plain'] as const)(
    'equal the norms of autodiff gradients of each weighted exit loss (%s)',
    async (method) => {
      const tiny = buildNetwork({ family: 'resnet', depth: 14, width: 0.25, exits: [2, 4] }, [8, 8, 1], 3, 5);
      const x = randomTensor([6, 8, 8, 1], 40) as tf.Tensor4D;
      const labels = randomLabels(6, 3, 41);
      const buffersBefore = tiny.buffers.map((b) => Array.from(b.variable.dataSync()));
      const shares = await expectNoLeak(() => supervisionShares(tiny, { x, labels }, method, 1.5));
      expect(tiny.buffers.map((b) => Array.from(b.variable.dataSync()))).toEqual(buffersBefore);

      const weights = methodLossWeights(method, tiny.exits, 1.5);
      expect(shares.weights).toEqual(weights);
      const layers = [tiny.stem, ...tiny.blocks];
      const reference = tiny.exits.map((exit) =>
        tf.tidy(() => {
          const { grads } = tf.variableGrads(
            () => {
              const logits = tiny.trace(x).logits[exit.index]!;
              const crossEntropy = tf.mean(tf.neg(tf.sum(tf.mul(tf.oneHot(labels, 3), tf.logSoftmax(logits)), 1)));
              return tf.mul(crossEntropy, weights[exit.index]!) as tf.Scalar;
            },
            tiny.params.map((p) => p.variable),
          );
          return layers.map((layer) =>
            Math.sqrt(
              layer.params.reduce(
                (sum, p) =>
                  sum + (grads[p.variable.name] ? tf.sum(tf.square(grads[p.variable.name]!)).dataSync()[0]! : 0),
                0,
              ),
            ),
          );
        }),
      );
      expect(shares.layers.map((l) => l.name)).toEqual(['stem', ...tiny.blocks.map((_, i) => `block ${i + 1}`)]);
      shares.layers.forEach((layer, l) => {
        const norms = reference.map((perLayer) => perLayer[l]!);
        const total = norms.reduce((a, b) => a + b, 0);
        layer.norms.forEach((n, k) => expect(n).toBeCloseTo(norms[k]!, 4));
        layer.shares.forEach((s, k) => expect(s).toBeCloseTo(norms[k]! / total, 4));
        // An exit never supervises blocks deeper than itself.
        tiny.exits.filter((e) => e.block < l).forEach((e) => expect(layer.shares[e.index]).toBe(0));
      });
      if (method === 'plain') shares.layers.forEach((layer) => expect(layer.shares.at(-1)).toBeCloseTo(1, 9));
      tf.dispose([x, labels]);
      tiny.dispose();
    },
  );
});

describe('analysis API', () => {
  it('answers earlyExit, lesion and supervision for a run with valid results, and refuses folders outside the runs root', async () => {
    const host = new EngineHost({ backend, runsRoot, emit: () => {} });
    const before = tf.memory().numTensors;
    const early = ResponseSchemas.earlyExit.parse(
      await callHost(host, 'earlyExit', { run: runDir, criterion: 'entropy' }),
    );
    expect(early.criterion).toBe('entropy');
    // On the validation hold-out, 10% of the 256 training images by default, not on the test set.
    expect(early.samples).toBe(Math.round(CONFIG.limitTrain! * 0.1));
    const lesion = ResponseSchemas.lesion.parse(await callHost(host, 'lesion', { run: runDir }));
    expect(lesion.blocks).toHaveLength(3);
    const supervision = ResponseSchemas.supervision.parse(await callHost(host, 'supervision', { run: runDir }));
    expect(supervision.method).toBe('joint');
    // One training batch's worth of the same hold-out: all of it here, as it is smaller than a batch.
    expect(early.samples).toBeLessThan(CONFIG.batchSize);
    expect(supervision.batchSize).toBe(early.samples);
    expect(tf.memory().numTensors).toBe(before);
    await expect(callHost(host, 'lesion', { run: '/etc' })).rejects.toThrow(/outside/);
    await expect(callHost(host, 'earlyExit', { run: runDir, criterion: 'margin' })).rejects.toThrow(/criterion/);
  });

  it('caps the hold-out every analysis looks at', async () => {
    const cap = 12;
    const host = new EngineHost({ backend, runsRoot, emit: () => {}, analysisMaxImages: cap });
    const early = ResponseSchemas.earlyExit.parse(
      await callHost(host, 'earlyExit', { run: runDir, criterion: 'max-softmax' }),
    );
    const lesion = ResponseSchemas.lesion.parse(await callHost(host, 'lesion', { run: runDir }));
    const supervision = ResponseSchemas.supervision.parse(await callHost(host, 'supervision', { run: runDir }));
    expect([early.samples, lesion.samples, supervision.batchSize]).toEqual([cap, cap, cap]);
  });
});
