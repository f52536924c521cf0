/**
 * The studio API on top of the engine: one handler per method of shared/api.ts, holding at
 * most one active training run (a study's runs are that run in turn). It runs inside the
 * engine process (Electron utility process, or serve mode's child process), never on a UI
 * thread. Run events are coalesced: batch
 * metrics are flushed about every 100 ms, other events at once and in order, so the UI gets
 * a steady trickle however fast the steps are.
 */
import { readFileSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { ANALYSIS_MAX_IMAGES, ApiError, type EngineContract, type StudioEvent } from '../../shared/api.js';
import type { Handlers } from '../../shared/peer.js';
import type { RunEvent, RunSummary } from '../../shared/metrics.js';
import { parseRunConfig } from '../../shared/spec.js';
import { studyQueue, type StudyRecord, type StudyView } from '../../shared/study.js';
import { earlyExitSweep, lesionStudy, supervisionShares } from './analysis/index.js';
import { summarizeBackend, type BackendInfo } from './backend/index.js';
import {
  EMBEDDED_SOURCE,
  imageBytes,
  loadDataset,
  loadRunDataset,
  makeBatch,
  selectionSet,
  type Dataset,
  type ImageSet,
} from './data/index.js';
import { stratifiedSplit } from './data/sets.js';
import { previewDataset } from './data/preview.js';
import { exitLatency } from './evaluate/index.js';
import { evaluationImages } from './evaluate/images.js';
import { evaluateRun } from './evaluate/runEvaluation.js';
import { exportExit } from './export/index.js';
import { Random } from './random.js';
import { resourcesDir } from './resources.js';
import { RunFolder, listRuns } from './runs/store.js';
import { loadTrainedNetwork, type TrainedNetwork } from './runs/trained.js';
import { openRun, type RunRequest } from './session.js';
import { checkSlurmSettings, sbatchOnPath } from './slurm.js';
import { runSlurmStudy } from './slurmStudy.js';
import { createStudy, listStudies, readStudy, runStudy } from './study.js';
import { fetchBackbone, listBackbones } from './onnx/zoo.js';
import { inspectBackbone } from './models/import/network.js';
import type { Trainer } from './train/trainer.js';

export const COALESCE_MS = 100;

export interface EngineHostOptions {
  backend: BackendInfo;
  runsRoot: string;
  /** Pushes an event to the renderer(s). */
  emit: (event: StudioEvent) => void;
  /**
   * Whether the face has native dialogs (Electron): then paths outside the runs root must be
   * under a folder the user chose in one (allowFolder). In serve mode paths are typed.
   */
  nativeDialogs?: boolean;
  latency?: { warmup?: number; minRepeats?: number; maxRepeats?: number };
  /** Images an analysis looks at, at most (ANALYSIS_MAX_IMAGES; tests use fewer). */
  analysisMaxImages?: number;
}

/** The app's version: given by the Electron shell (a packaged app has no package.json beside its resources), else read from the project. */
function version(): string {
  if (process.env.MW_VERSION) return process.env.MW_VERSION;
  try {
    return (JSON.parse(readFileSync(resolve(resourcesDir(), '..', 'package.json'), 'utf8')) as { version: string })
      .version;
  } catch {
    return 'dev';
  }
}

/** Buffers batch events and flushes them together; any other event flushes what is pending first. */
export class EventCoalescer {
  private pending: RunEvent[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly emit: (events: RunEvent[]) => void,
    private readonly intervalMs = COALESCE_MS,
  ) {}

  push(event: RunEvent): void {
    this.pending.push(event);
    if (event.type !== 'batch') this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.intervalMs);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.pending.length) return;
    const events = this.pending;
    this.pending = [];
    this.emit(events);
  }
}

export class EngineHost {
  private active: Trainer | undefined;
  private activeRun: Promise<unknown> | undefined;
  private readonly runsRoot: string;
  /** Folders the user picked in a native dialog: the only paths outside runs/ the renderer may name. */
  private readonly chosen = new Set<string>();
  private loadedDataset: { dir: string; dataset: Promise<Dataset> } | undefined;
  /**
   * The study being trained (locally its runs are the active run in turn) or watched on Slurm;
   * `leave` is what quitting the app does to it: a local one stops, Slurm jobs go on.
   */
  private study: { id: string; stop: AbortController; leave: () => void; done: Promise<unknown> } | undefined;

  constructor(private readonly options: EngineHostOptions) {
    this.runsRoot = resolve(options.runsRoot);
  }

  /** A run folder named by the renderer must be inside the runs root. */
  private runPath(run: string): string {
    const path = resolve(this.runsRoot, run);
    if (path !== this.runsRoot && path.startsWith(this.runsRoot + sep)) return path;
    throw new ApiError(`run folder ${run} is outside ${this.runsRoot}`);
  }

  /** With native dialogs, paths outside runs/ must be ones the user chose; typed paths are for serve mode. */
  private userPath(path: string, what: string): string {
    const resolved = resolve(path);
    if (!this.options.nativeDialogs) return resolved;
    const allowed = [...this.chosen].some((c) => resolved === c || resolved.startsWith(c + sep));
    if (allowed || resolved.startsWith(this.runsRoot + sep)) return resolved;
    throw new ApiError(`${what} ${path} was not chosen in a dialog; choose it with the Browse button`);
  }

  /**
   * Opens a run and starts training it as the active run; `done` settles when it ends, with its
   * summary (undefined: stopped), or with the error after a trainer-crashed event.
   */
  private async train(request: RunRequest): Promise<{ trainer: Trainer; done: Promise<RunSummary | undefined> }> {
    if (this.active) throw new ApiError(`a run is already active (${this.active.start.run}); stop it first`);
    const coalescer = new EventCoalescer((events) => this.options.emit({ type: 'run', events }));
    const trainer = await openRun(request, {
      backend: summarizeBackend(this.options.backend),
      onEvent: (event) => coalescer.push(event),
      ...(this.options.latency ? { latency: this.options.latency } : {}),
    });
    this.active = trainer;
    const done = trainer
      .run()
      .catch((error: Error) => {
        this.options.emit({ type: 'trainer-crashed', message: error.message, run: trainer.start.run });
        throw error;
      })
      .finally(() => {
        coalescer.flush();
        trainer.dispose();
        if (this.active === trainer) this.active = undefined;
      });
    this.activeRun = done.catch(() => undefined);
    return { trainer, done };
  }

  /** A single run from the renderer: refused while a study owns the engine. */
  private async begin(request: RunRequest): Promise<{ run: string }> {
    if (this.study) throw new ApiError(`study ${this.study.id} is training; stop it first`);
    const { trainer } = await this.train(request);
    return { run: trainer.start.run };
  }

  /** Trains a study's runs in the background, one at a time, each as the active run, or watches them on Slurm. */
  private beginStudy(record: StudyRecord): { study: string } {
    this.requireIdle();
    const stop = new AbortController();
    const detach = new AbortController();
    const onUpdate = (study: StudyView) => this.options.emit({ type: 'study', study });
    const slurm = record.executor?.kind === 'slurm';
    const running = slurm
      ? runSlurmStudy(this.runsRoot, record, { signal: stop.signal, detach: detach.signal, onUpdate })
      : runStudy(this.runsRoot, record, {
          signal: stop.signal,
          onUpdate,
          train: async (request, started) => {
            const { trainer, done: trained } = await this.train(request);
            await started(trainer.start.run);
            return trained;
          },
        });
    const done = running
      // A failed run marked the study failed, saying why (a trainer crash also came as trainer-crashed).
      .catch(() => undefined)
      .finally(() => {
        if (this.study?.id === record.id) this.study = undefined;
      });
    const leave = () => (slurm ? detach : stop).abort();
    this.study = { id: record.id, stop, leave, done };
    return { study: record.id };
  }

  /** A study starts only when the engine trains nothing. */
  private requireIdle(): void {
    if (this.study) throw new ApiError(`study ${this.study.id} is already training; stop it first`);
    if (this.active) throw new ApiError(`a run is already active (${this.active.start.run}); stop it first`);
  }

  /** The config the renderer sent, with a dataset path outside the runs root checked (userPath). */
  private checkedConfig(config: unknown): unknown {
    const { dataset, arch } = (config ?? {}) as { dataset?: unknown; arch?: { backbone?: unknown } };
    const checked =
      typeof dataset === 'string' && dataset !== 'embedded'
        ? { ...(config as object), dataset: this.userPath(dataset, 'dataset') }
        : config;
    // An imported backbone is a user's file too.
    return typeof arch?.backbone === 'string'
      ? { ...(checked as object), arch: { ...arch, backbone: this.userPath(arch.backbone, 'backbone') } }
      : checked;
  }

  /**
   * Loads a run's trained network and the images an analysis looks at: the validation hold-out
   * (the test set for a run that held out nothing), at most analysisMaxImages of it, drawn
   * class-balanced with the run's seed. Runs `analyse`, and frees the network.
   */
  private async analyse<T>(
    run: string,
    analyse: (trained: TrainedNetwork, dataset: Dataset, images: ImageSet) => Promise<T>,
  ): Promise<T> {
    const trained = await loadTrainedNetwork(this.runPath(run));
    try {
      const { config } = trained.start;
      const cap = this.options.analysisMaxImages ?? ANALYSIS_MAX_IMAGES;
      const dataset = await loadRunDataset(config, cap);
      const all = selectionSet(dataset);
      const images =
        all.count <= cap
          ? all
          : stratifiedSplit(all, cap, dataset.classes.length, new Random(config.seed), imageBytes(dataset.shape))
              .picked;
      return await analyse(trained, dataset, images);
    } finally {
      trained.net.dispose();
    }
  }

  /** Per-exit MACs and batch-1 median latency: from the run's summary, measured here if it has none yet. */
  private async leavingCosts({ net, folder }: TrainedNetwork): Promise<{ macs: number; latencyMs: number }[]> {
    const summary = await folder.summary();
    const costs = [];
    for (const cost of net.costs()) {
      const latency =
        summary?.exits[cost.index]?.latencyMs ?? (await exitLatency(net, cost.index, this.options.latency));
      costs.push({ macs: cost.macs, latencyMs: latency.batch1.median });
    }
    return costs;
  }

  /** A run's full dataset, kept for the run last asked about: paging through thumbnails reloads nothing. */
  private runDataset(dir: string): Promise<Dataset> {
    if (this.loadedDataset?.dir !== dir) {
      const dataset = RunFolder.open(dir).then(async (folder) => loadRunDataset(await folder.config()));
      // A failed load is not kept: the next call tries again.
      dataset.catch(() => {
        if (this.loadedDataset?.dataset === dataset) this.loadedDataset = undefined;
      });
      this.loadedDataset = { dir, dataset };
    }
    return this.loadedDataset.dataset;
  }

  private requireActive(): Trainer {
    if (!this.active) throw new ApiError('no run is active');
    return this.active;
  }

  /** One per method of the engine's contract; the worker's end of the channel checks each call before it gets here. */
  readonly handlers: Handlers<EngineContract> = {
    getInfo: async () => ({
      version: version(),
      backend: summarizeBackend(this.options.backend),
      backendNotes: this.options.backend.skipped.map((s) => `${s.name}: ${s.reason}`),
      runsRoot: this.runsRoot,
      nativeDialogs: Boolean(this.options.nativeDialogs),
      ...(this.active ? { activeRun: this.active.start.run } : {}),
      ...(this.study ? { activeStudy: this.study.id } : {}),
      slurm: await sbatchOnPath(),
    }),
    listRuns: async () => listRuns(this.runsRoot),
    openRun: async ({ run }) => {
      const folder = await RunFolder.open(this.runPath(run));
      const [config, state, summary, start, metrics] = await Promise.all([
        folder.config(),
        folder.state(),
        folder.summary(),
        folder.start(),
        folder.metrics(),
      ]);
      return {
        dir: folder.dir,
        config,
        ...(state ? { state } : {}),
        ...(summary ? { summary } : {}),
        exits: start?.exits ?? [],
        ...(start ? { dataset: start.dataset } : {}),
        metrics: metrics.records,
      };
    },
    startRun: async ({ config }) =>
      this.begin({ kind: 'new', config: this.checkedConfig(config), runsRoot: this.runsRoot }),
    resumeRun: async ({ run }) => this.begin({ kind: 'resume', dir: this.runPath(run) }),
    pauseRun: async () => (this.requireActive().pause(), {}),
    continueRun: async () => (this.requireActive().resume(), {}),
    stopRun: async () => (this.requireActive().stop(), {}),
    exportExit: async ({ run, exit, format, destination, threshold }) =>
      exportExit({
        run: this.runPath(run),
        exit,
        format,
        ...(destination ? { destination: this.userPath(destination, 'export folder') } : {}),
        ...(threshold !== undefined ? { threshold } : {}),
      }),
    allowFolder: async ({ path }) => {
      this.chosen.add(resolve(path));
      return {};
    },
    earlyExit: async ({ run, criterion }) =>
      this.analyse(run, async (trained, dataset, images) =>
        earlyExitSweep(trained.net, dataset, images, {
          criterion,
          costs: await this.leavingCosts(trained),
        }),
      ),
    lesion: async ({ run }) => this.analyse(run, ({ net }, dataset, images) => lesionStudy(net, dataset, images)),
    supervision: async ({ run }) =>
      this.analyse(run, async ({ net, start }, dataset, images) => {
        const { count } = images;
        const size = Math.min(start.config.batchSize, count);
        // Spread over the whole set: a prefix of it may be one class.
        const batch = makeBatch(
          dataset,
          images,
          Array.from({ length: size }, (_, i) => Math.floor((i * count) / size)),
          null,
        );
        try {
          return await supervisionShares(net, batch, start.config.method, start.config.gamma);
        } finally {
          batch.x.dispose();
          batch.labels.dispose();
        }
      }),
    evaluate: async ({ run, split }) => {
      const dir = this.runPath(run);
      const onProgress = (done: number, total: number) =>
        this.options.emit({ type: 'evaluation-progress', run, split, done, total });
      return (await evaluateRun(dir, split, { onProgress, dataset: await this.runDataset(dir) })).evaluation;
    },
    evaluationImages: async ({ run, split, selection, offset, limit }) => {
      const dir = this.runPath(run);
      const dataset = await this.runDataset(dir);
      return evaluationImages(await evaluateRun(dir, split, { dataset }), dataset, selection, { offset, limit });
    },
    previewDataset: async ({ dataset, imageSize, augment, seed }) => {
      const source = dataset === EMBEDDED_SOURCE ? dataset : this.userPath(dataset, 'dataset');
      return previewDataset(await loadDataset(source, imageSize === undefined ? {} : { imageSize }), { augment, seed });
    },
    startStudy: async ({ config, methods, seeds, executor }) => {
      this.requireIdle();
      const plan = { base: parseRunConfig(this.checkedConfig(config)), methods, seeds, executor };
      // The controller checks the Slurm settings before the study exists: a refusal leaves nothing behind.
      if (executor.kind === 'slurm') await checkSlurmSettings(executor, studyQueue(plan).length);
      return this.beginStudy(await createStudy(this.runsRoot, plan));
    },
    resumeStudy: async ({ study }) => {
      const record = await readStudy(this.runsRoot, study);
      if (record.status === 'completed') throw new ApiError(`study ${study} has completed`);
      if (record.status === 'running') throw new ApiError(`study ${study} is being trained by process ${record.pid}`);
      return this.beginStudy(record);
    },
    stopStudy: async () => {
      if (!this.study) throw new ApiError('no study is training');
      this.study.stop.abort();
      this.active?.stop();
      return {};
    },
    listStudies: async () => listStudies(this.runsRoot),
    listBackbones: async () => listBackbones(),
    fetchBackbone: async ({ name }) => {
      const { path } = await fetchBackbone(name);
      // A file the studio fetched into its cache may be trained on, as one chosen in a dialog.
      this.chosen.add(path);
      return { path };
    },
    inspectBackbone: async ({ path }) => inspectBackbone(this.userPath(path, 'backbone')),
  };

  /** Stops the active run (and study) and waits until it has checkpointed; used when the app quits. */
  async shutdown(): Promise<void> {
    this.study?.leave();
    this.active?.stop();
    await Promise.all([this.activeRun, this.study?.done]);
  }
}
