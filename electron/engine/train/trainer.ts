/**
 * The training loop: one run from config to summary, streaming events, checkpointing as it
 * goes and resumable from any checkpoint to the same result. Batches are cut and augmented
 * in JS, each step is one `TrainingMethod.step` inside its own tidy, and the loop yields to
 * the event loop between steps so stop and pause requests are seen promptly (tfjs-layers'
 * stop-flag pattern).
 */
import * as tf from '@tensorflow/tfjs-core';
import type {
  BackendSummary,
  DatasetSummary,
  EpochMetrics,
  ExitReport,
  RunEvent,
  RunStart,
  RunSummary,
} from '../../../shared/metrics.js';
import { backboneFrozenIn, backboneLrScaleOf, type RunConfig } from '../../../shared/spec.js';
import { batchLabels, epochOrder, makeBatch } from '../data/batches.js';
import type { Dataset } from '../data/dataset.js';
import { selectionSet } from '../data/index.js';
import { exitAccuracy, exitReports, type LatencyOptions } from '../evaluate/index.js';
import { buildNetwork, type MwNetwork } from '../models/index.js';
import { Random } from '../random.js';
import { loadCheckpoint, saveCheckpoint, type EpochProgress } from '../runs/checkpoint.js';
import type { RunFolder } from '../runs/store.js';
import { assignNetworkTensors } from '../runs/trained.js';
import { FEATURE_CACHE_BYTES, FeatureCache } from './featureCache.js';
import { createTrainingMethod, type StepResult, type TrainingMethod } from './methods.js';
import { learningRateFactor } from './schedule.js';

export interface TrainerOptions {
  config: RunConfig;
  dataset: Dataset;
  folder: RunFolder;
  backend: BackendSummary;
  onEvent?: (event: RunEvent) => void;
  /** Also checkpoint mid-epoch this often, so a crash loses at most this much work. */
  checkpointSeconds?: number;
  latency?: LatencyOptions;
  /** The feature cache's byte budget (default FEATURE_CACHE_BYTES). */
  featureCacheBytes?: number;
}

export class NonFiniteLossError extends Error {
  override readonly name = 'NonFiniteLossError';
}

/** Derived seeds: every epoch's order and every step's augmentation are fixed by the run seed alone, which is what makes resume exact. */
function derivedRandom(seed: number, stream: number, index: number): Random {
  const mixed =
    Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream + 1, 0xc2b2ae35) ^ Math.imul(index + 1, 0x27d4eb2f);
  return new Random(mixed);
}

export function summarizeDataset(dataset: Dataset): DatasetSummary {
  return {
    name: dataset.name,
    source: dataset.source,
    shape: dataset.shape,
    classes: dataset.classes,
    train: dataset.train.count,
    test: dataset.test.count,
    validation: dataset.validation?.count ?? 0,
    normalization: dataset.normalization,
    ...(dataset.sizeNote ? { sizeNote: dataset.sizeNote } : {}),
  };
}

/** A training step whose work is queued and whose per-exit losses and correct counts are being read back. */
interface QueuedStep {
  /** The step's number (1-based over the run). */
  step: number;
  images: number;
  /** Set when the backbone was frozen: whether the heads' inputs came from the feature cache. */
  backbone?: 'frozen' | 'cached';
  queuedAt: number;
  values: Promise<[tf.TypedArray, tf.TypedArray, tf.TypedArray | undefined]>;
}

function emptyProgress(exits: number): EpochProgress {
  return { stepInEpoch: 0, lossSums: new Array(exits).fill(0), correct: new Array(exits).fill(0), seen: 0, seconds: 0 };
}

export class Trainer {
  readonly net: MwNetwork;
  readonly method: TrainingMethod;
  readonly start: RunStart;
  private stopRequested = false;
  private pauseGate: { promise: Promise<void>; release: () => void } | undefined;
  private epoch = 0;
  private step = 0;
  private progress: EpochProgress;
  /** Seconds spent in training steps this session (not evaluation or checkpoints): the throughput figure. */
  private trainingSeconds = 0;
  /** The step queued but not yet read back (see run). */
  private inFlight: QueuedStep | undefined;
  private lastCompletedAt = 0;
  private recentRate = 0;
  private sessionStart = 0;
  private sessionStartStep = 0;
  /** Head inputs of a frozen backbone, while one is frozen and the images are not augmented. */
  private featureCache: FeatureCache | undefined;

  constructor(readonly options: TrainerOptions) {
    const { config, dataset, folder, backend } = options;
    const { height, width, channels } = dataset.shape;
    this.net = buildNetwork(config.arch, [height, width, channels], dataset.classes.length, config.seed, config.head);
    this.method = createTrainingMethod(config.method, this.net, {
      lr: config.lr,
      momentum: config.momentum,
      weightDecay: config.weightDecay,
      gamma: config.gamma,
      ...(config.distill
        ? { distillation: { alpha: config.distillAlpha, temperature: config.distillTemperature } }
        : {}),
      gradientEquilibrium: config.gradientEquilibrium,
      backboneLrScale: backboneLrScaleOf(config),
    });
    this.progress = emptyProgress(this.net.exits.length);
    const cacheNote = this.planFeatureCache();
    this.start = {
      run: folder.dir,
      name: folder.dir.split(/[\\/]/).pop()!,
      network: this.net.description.name,
      config,
      dataset: summarizeDataset(dataset),
      backend,
      lossWeights: [...this.method.lossWeights],
      exits: this.net.costs(),
      ...(cacheNote ? { featureCache: cacheNote } : {}),
    };
  }

  /** Makes the feature cache when a frozen epoch can use one; returns what the run should say about it, if anything. */
  private planFeatureCache(): string | undefined {
    const { config, dataset } = this.options;
    if (!config.freezeBackbone && config.freezeEpochs === 0) return undefined;
    if (config.augment)
      return 'no feature cache: augmentation changes the images every epoch (--no-augment caches them)';
    if (!config.featureCache) return 'no feature cache: turned off (--no-feature-cache)';
    const { cache, note } = FeatureCache.plan(
      this.net,
      dataset.train.count,
      this.options.featureCacheBytes ?? FEATURE_CACHE_BYTES,
    );
    this.featureCache = cache;
    return note;
  }

  /** Every training image is seen once an epoch: the last, partial batch is kept. */
  get stepsPerEpoch(): number {
    return Math.max(1, Math.ceil(this.options.dataset.train.count / this.batchSize));
  }

  get totalSteps(): number {
    return this.stepsPerEpoch * this.options.config.epochs;
  }

  private get batchSize(): number {
    return Math.min(this.options.config.batchSize, this.options.dataset.train.count);
  }

  /** Asks the loop to stop after the current step; it checkpoints, so the run can be resumed. */
  stop(): void {
    this.stopRequested = true;
    this.resume();
  }

  pause(): void {
    if (this.pauseGate) return;
    let release = () => {};
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.pauseGate = { promise, release };
  }

  resume(): void {
    this.pauseGate?.release();
    this.pauseGate = undefined;
  }

  get paused(): boolean {
    return this.pauseGate !== undefined;
  }

  /** Restores weights, optimizer state and position from the run folder's checkpoint. */
  async restore(): Promise<void> {
    const checkpoint = await loadCheckpoint(this.options.folder.dir);
    try {
      assignNetworkTensors(this.net, checkpoint.network, this.options.folder.dir);
      this.method.optimizers.forEach((opt, k) => {
        const saved = checkpoint.optimizers[k];
        if (!saved || saved.name !== opt.name) {
          // Checkpoints from before the two-optimizer rule hold one "exit-<block>" optimizer per exit.
          const older = saved?.name.startsWith('exit-')
            ? '; it was saved before each exit had separate backbone and head optimizers, so start a new run'
            : '';
          throw new Error(`checkpoint optimizer ${k} is ${saved?.name ?? 'missing'}, expected ${opt.name}${older}`);
        }
        opt.loadState(saved.state);
      });
    } finally {
      tf.dispose([...checkpoint.network.values(), ...checkpoint.optimizers.flatMap((o) => [...o.state.values()])]);
    }
    this.epoch = checkpoint.epoch;
    this.step = checkpoint.step;
    this.progress = checkpoint.progress;
    this.start.resumedFrom = { epoch: checkpoint.epoch, step: checkpoint.step };
  }

  private emit(event: RunEvent): void {
    this.options.onEvent?.(event);
  }

  private async setState(
    status: 'running' | 'paused' | 'stopped' | 'failed' | 'completed',
    message?: string,
  ): Promise<void> {
    const state = { status, pid: process.pid, epoch: this.epoch, step: this.step, ...(message ? { message } : {}) };
    await this.options.folder.writeState(state);
    this.emit({ type: 'status', state: { ...state, updatedAt: new Date().toISOString() } });
  }

  private async checkpoint(): Promise<void> {
    await saveCheckpoint(this.options.folder.dir, {
      epoch: this.epoch,
      step: this.step,
      progress: this.progress,
      network: this.net.namedTensors(),
      optimizers: this.method.optimizers.map((opt) => ({ name: opt.name, state: opt.state() })),
    });
  }

  /**
   * Trains to the configured number of epochs (or until stopped), evaluates every exit and
   * writes the summary. Returns undefined when stopped early.
   */
  async run(): Promise<RunSummary | undefined> {
    const { config, dataset, folder } = this.options;
    await folder.writeStart(this.start);
    this.emit({ type: 'started', start: this.start });
    await this.setState('running');
    const checkpointMs = (this.options.checkpointSeconds ?? 300) * 1000;
    let lastCheckpoint = performance.now();
    this.sessionStart = performance.now();
    this.sessionStartStep = this.step;
    try {
      while (this.epoch < config.epochs) {
        const epochNumber = this.epoch + 1;
        const order = epochOrder(dataset.train.count, derivedRandom(config.seed, 0, epochNumber));
        const epochStart = performance.now() - this.progress.seconds * 1000;
        // One step stays in flight: step k+1 is queued before step k's losses are read (below), so
        // a GPU never idles while they travel back. Stopping, pausing and checkpointing settle it first.
        while (this.progress.stepInEpoch < this.stepsPerEpoch || this.inFlight) {
          const checkpointDue = performance.now() - lastCheckpoint > checkpointMs;
          if (this.pauseGate || this.stopRequested || checkpointDue) await this.settleInFlight(epochNumber);
          if (this.pauseGate) {
            await this.setState('paused');
            await this.pauseGate.promise;
            if (!this.stopRequested) await this.setState('running');
          }
          if (this.stopRequested) {
            this.progress.seconds = (performance.now() - epochStart) / 1000;
            await this.checkpoint();
            await this.setState('stopped', `stopped at step ${this.step}; resume continues from here`);
            return undefined;
          }
          if (checkpointDue) {
            this.progress.seconds = (performance.now() - epochStart) / 1000;
            await this.checkpoint();
            lastCheckpoint = performance.now();
          }
          const previous = this.inFlight;
          this.inFlight = this.progress.stepInEpoch < this.stepsPerEpoch ? this.queueStep(order) : undefined;
          if (previous) await this.completeStep(previous, epochNumber);
          await new Promise((resolve) => setImmediate(resolve));
        }
        const seconds = (performance.now() - epochStart) / 1000;
        const epochRecord = await this.finishEpoch(epochNumber, seconds);
        await folder.appendMetrics([epochRecord]);
        this.emit(epochRecord);
        await this.checkpoint();
        lastCheckpoint = performance.now();
      }
      const summary = await this.summarize(this.sessionStartStep);
      await folder.writeSummary(summary);
      await this.setState('completed');
      this.emit({ type: 'finished', summary });
      return summary;
    } catch (error) {
      // A step still in flight disposes its tensors once read; nothing waits for it any more.
      this.inFlight?.values.catch(() => undefined);
      this.inFlight = undefined;
      await this.setState('failed', (error as Error).message);
      throw error;
    }
  }

  /** Runs the step in flight to its end: its losses read, checked and counted, its record written. */
  private async settleInFlight(epochNumber: number): Promise<void> {
    const step = this.inFlight;
    this.inFlight = undefined;
    if (step) await this.completeStep(step, epochNumber);
  }

  /**
   * Queues one training step (on a GPU the work is only enqueued) and starts reading its losses
   * and correct counts back. The position advances now, so the next step can be queued; what is
   * counted from the losses waits for completeStep.
   */
  private queueStep(order: Int32Array): QueuedStep {
    const { config, dataset } = this.options;
    const begin = this.progress.stepInEpoch * this.batchSize;
    const indices = order.subarray(begin, begin + this.batchSize);
    const augment = config.augment ? derivedRandom(config.seed, 1, this.step) : null;
    const factor = learningRateFactor(config.schedule, this.step, this.totalSteps, config.milestones);
    const queuedAt = performance.now();
    // Dropout masks follow the step, so a resumed run draws what an uninterrupted one would.
    this.net.clock.step = this.step;
    const frozen = backboneFrozenIn(config, this.epoch + 1);
    // Elastic: the cache serves the frozen epochs only; once the backbone trains, its features change.
    if (!frozen) this.featureCache = undefined;
    let result: StepResult;
    let backbone: QueuedStep['backbone'];
    if (frozen) {
      const labels = batchLabels(dataset.train, indices);
      let inputs = this.featureCache?.read(indices);
      backbone = inputs ? 'cached' : 'frozen';
      if (!inputs) {
        const { x } = makeBatch(dataset, dataset.train, indices, augment);
        inputs = this.net.headInputs(x);
        x.dispose();
        this.featureCache?.write(indices, inputs);
      }
      result = this.method.stepHeads(inputs, labels, factor);
      tf.dispose([...inputs, labels]);
    } else {
      const { x, labels } = makeBatch(dataset, dataset.train, indices, augment);
      result = this.method.step(x, labels, factor);
      tf.dispose([x, labels]);
    }
    const read = [result.losses, result.correct, ...(result.crossEntropy ? [result.crossEntropy] : [])];
    const values = Promise.all([result.losses.data(), result.correct.data(), result.crossEntropy?.data()]).finally(() =>
      tf.dispose(read),
    );
    this.step++;
    this.progress.stepInEpoch++;
    return { step: this.step, images: indices.length, queuedAt, values, ...(backbone ? { backbone } : {}) };
  }

  /** Waits for a queued step's losses, checks them, adds them to the epoch's sums and emits its record. */
  private async completeStep(queued: QueuedStep, epochNumber: number): Promise<void> {
    const { config, folder } = this.options;
    const [losses, correct, crossEntropy] = await queued.values;
    const bad = losses.findIndex((l) => !Number.isFinite(l));
    if (bad >= 0) {
      const exit = this.net.exits[bad]!;
      const queuedAfter = this.step > queued.step ? ` (found once step ${this.step} was already queued)` : '';
      throw new NonFiniteLossError(
        `loss of the ${exit.final ? 'final exit' : `exit after block ${exit.block}`} became ${losses[bad]} at step ${queued.step}${queuedAfter}; ` +
          'the run stopped and keeps its last good checkpoint. Try a lower learning rate.',
      );
    }
    this.progress.seen += queued.images;
    losses.forEach((l, k) => (this.progress.lossSums[k]! += l * queued.images));
    correct.forEach((c, k) => (this.progress.correct[k]! += c));
    // A step's time runs from when it was queued, or from when the one before it finished if later.
    const now = performance.now();
    const stepSeconds = (now - Math.max(queued.queuedAt, this.lastCompletedAt)) / 1000;
    this.lastCompletedAt = now;
    this.trainingSeconds += stepSeconds;
    const rate = queued.images / stepSeconds;
    this.recentRate = this.recentRate ? 0.9 * this.recentRate + 0.1 * rate : rate;
    const sessionRate = ((queued.step - this.sessionStartStep) * this.batchSize) / ((now - this.sessionStart) / 1000);
    const record = {
      type: 'batch' as const,
      epoch: epochNumber,
      step: queued.step,
      totalSteps: this.totalSteps,
      losses: Array.from(losses),
      ...(crossEntropy ? { crossEntropy: Array.from(crossEntropy) } : {}),
      lr: config.lr * learningRateFactor(config.schedule, queued.step - 1, this.totalSteps, config.milestones),
      imagesPerSecond: this.recentRate,
      etaSeconds: ((this.totalSteps - queued.step) * this.batchSize) / sessionRate,
      ...(queued.backbone ? { backbone: queued.backbone } : {}),
    };
    await folder.appendMetrics([record]);
    this.emit(record);
  }

  private async finishEpoch(epochNumber: number, seconds: number): Promise<EpochMetrics> {
    const { config, dataset } = this.options;
    this.emit({ type: 'evaluating', what: `epoch ${epochNumber} accuracy` });
    const { top1 } = await exitAccuracy(this.net, dataset, selectionSet(dataset));
    const { seen, lossSums, correct } = this.progress;
    const record: EpochMetrics = {
      type: 'epoch',
      epoch: epochNumber,
      epochs: config.epochs,
      step: this.step,
      trainLoss: lossSums.map((s) => s / seen),
      trainAccuracy: correct.map((c) => c / seen),
      testAccuracy: top1,
      seconds,
      imagesPerSecond: seen / seconds,
    };
    this.epoch = epochNumber;
    this.progress = emptyProgress(this.net.exits.length);
    return record;
  }

  private async summarize(fromStep: number): Promise<RunSummary> {
    const { config, dataset, backend, latency } = this.options;
    this.emit({ type: 'evaluating', what: 'test accuracy and latency of every exit' });
    const exits: ExitReport[] = await exitReports(this.net, dataset, dataset.test, latency);
    if (dataset.validation) {
      // The same figure on validation, so a validation-set evaluation has a summary to match.
      const { top1 } = await exitAccuracy(this.net, dataset, dataset.validation);
      exits.forEach((exit, k) => (exit.validationTop1 = top1[k]!));
    }
    this.emit({ type: 'evaluated', exits });
    return {
      run: this.start.run,
      name: this.start.name,
      network: this.start.network,
      config,
      dataset: this.start.dataset,
      backend,
      lossWeights: this.start.lossWeights,
      exits,
      trainSeconds: this.trainingSeconds,
      imagesPerSecond: ((this.step - fromStep) * this.batchSize) / Math.max(this.trainingSeconds, 1e-9),
      finishedAt: new Date().toISOString(),
    };
  }

  dispose(): void {
    for (const opt of this.method.optimizers) opt.disposeState();
    this.net.dispose();
  }
}
