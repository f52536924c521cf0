/**
 * Evaluating a trained run on its validation or test split, cached in the run folder
 * (evaluation-<split>.json, with every image's per-exit prediction) and keyed by the
 * checkpoint's step: opening it again is a file read, and a run trained further is evaluated
 * afresh.
 */
import { join } from 'node:path';
import { z } from 'zod';
import {
  EvaluationSchema,
  type Evaluation,
  type EvaluationSplit,
  type ExitEvaluation,
} from '../../../shared/evaluation.js';
import { loadRunDataset, type Dataset, type ImageSet } from '../data/index.js';
import type { ExitPoint } from '../models/network.js';
import { checkpointStep } from '../runs/checkpoint.js';
import { FileError, readJsonFile, writeFileAtomic } from '../runs/files.js';
import { loadTrainedNetwork } from '../runs/trained.js';
import { statIfExists } from '../data/files.js';
import { classMetrics, confusionMatrix, matrixAccuracy } from './confusion.js';
import { overthinking } from './overthinking.js';
import { exitPredictions, type ExitPredictions } from './predictions.js';

/** Cached figures plus what the image grid needs: every image's label and per-exit prediction. */
const CachedEvaluationSchema = z.object({
  evaluation: EvaluationSchema,
  labels: z.array(z.number().int().nonnegative()),
  predicted: z.array(z.array(z.number().int().nonnegative())),
  /** Rounded to 4 decimals: the grid shows percentages, and the cache stays small. */
  confidence: z.array(z.array(z.number().min(0).max(1))),
});

export interface RunEvaluation {
  evaluation: Evaluation;
  predictions: Pick<ExitPredictions, 'labels' | 'predicted' | 'confidence'>;
}

export function evaluationCachePath(dir: string, split: EvaluationSplit): string {
  return join(dir, `evaluation-${split}.json`);
}

/** The images of `split`; a run that held out no validation images says how to get some. */
export function splitImages(dataset: Dataset, split: EvaluationSplit, dir: string): ImageSet {
  if (split === 'test') return dataset.test;
  if (!dataset.validation)
    throw new FileError(
      `${dir}: this run held out no validation images (validation split 0); evaluate --split test, or train with --validation 0.1`,
    );
  return dataset.validation;
}

/** The figures of every exit and exit pair, from the predictions alone. */
export function describePredictions(
  predictions: ExitPredictions,
  exits: readonly ExitPoint[],
  classes: readonly string[],
  identity: { run: string; split: EvaluationSplit; step: number },
): Evaluation {
  const { labels, predicted, top5 } = predictions;
  const samples = labels.length;
  const perExit = exits.map((exit, k): ExitEvaluation => {
    const confusion = confusionMatrix(labels, predicted[k]!, classes.length);
    const hits = top5?.[k];
    return {
      index: exit.index,
      block: exit.block,
      final: exit.final,
      top1: matrixAccuracy(confusion),
      ...(hits ? { top5: samples ? hits.reduce((a, b) => a + b, 0) / samples : 0 } : {}),
      perClass: classMetrics(confusion, classes),
      confusion,
    };
  });
  return { ...identity, samples, classes: [...classes], exits: perExit, overthinking: overthinking(labels, predicted) };
}

/** The cached evaluation when it is of the run's current checkpoint; undefined when it must be computed. */
export async function cachedEvaluation(dir: string, split: EvaluationSplit): Promise<RunEvaluation | undefined> {
  const step = await checkpointStep(dir);
  const path = evaluationCachePath(dir, split);
  if (!(await statIfExists(path))) return undefined;
  try {
    const cached = await readJsonFile(path, CachedEvaluationSchema);
    if (cached.evaluation.step !== step) return undefined;
    return {
      evaluation: cached.evaluation,
      predictions: {
        labels: Uint8Array.from(cached.labels),
        predicted: cached.predicted.map((p) => Int32Array.from(p)),
        confidence: cached.confidence.map((c) => Float32Array.from(c)),
      },
    };
  } catch {
    // An unreadable cache is only a lost shortcut: evaluate again and overwrite it.
    return undefined;
  }
}

export interface EvaluateRunOptions {
  onProgress?: (done: number, total: number) => void;
  /** The run's dataset when the caller has it loaded already. */
  dataset?: Dataset;
}

/** The run's evaluation on `split`: from the cache when it matches the checkpoint, else computed and cached. */
export async function evaluateRun(
  dir: string,
  split: EvaluationSplit,
  options: EvaluateRunOptions = {},
): Promise<RunEvaluation> {
  const cached = await cachedEvaluation(dir, split);
  if (cached) return cached;
  const step = await checkpointStep(dir);
  const trained = await loadTrainedNetwork(dir);
  try {
    const dataset = options.dataset ?? (await loadRunDataset(trained.start.config));
    const set = splitImages(dataset, split, dir);
    const predictions = await exitPredictions(trained.net, dataset, set, options.onProgress);
    const evaluation = describePredictions(predictions, trained.net.costs(), dataset.classes, {
      run: trained.folder.dir,
      split,
      step,
    });
    const round = (values: Float32Array) => Array.from(values, (v) => Math.round(v * 1e4) / 1e4);
    const cache = {
      evaluation,
      labels: Array.from(predictions.labels),
      predicted: predictions.predicted.map((p) => Array.from(p)),
      confidence: predictions.confidence.map(round),
    };
    // Compact: one number per image and exit, too many to indent.
    await writeFileAtomic(evaluationCachePath(dir, split), JSON.stringify(cache));
    return { evaluation, predictions };
  } finally {
    trained.net.dispose();
  }
}
