/**
 * The studio API: what the renderer may ask of the engine, and what the engine pushes back.
 * The preload exposes it as `window.studio` (Electron IPC); serve mode offers the same calls
 * over a WebSocket. Every request is validated here, at the boundary, because the renderer
 * and the network are untrusted: a bad payload gets an ApiError naming the field.
 */
import { z } from 'zod';
import {
  BackendSummarySchema,
  DatasetSummarySchema,
  ExitInfoSchema,
  MetricsRecordSchema,
  RunStateSchema,
  RunSummarySchema,
  RUN_STATUSES,
  RunEventSchema,
} from './metrics.js';
import { EXIT_CRITERIA, EarlyExitSweepSchema, LesionStudySchema, SupervisionSharesSchema } from './analysis.js';
import { ExitRefSchema } from './exitRef.js';
import {
  EVALUATION_SPLITS,
  EvaluationImagesSchema,
  EvaluationSchema,
  ImageSelectionSchema,
  MAX_THUMBNAILS,
} from './evaluation.js';
import { DatasetPreviewRequestSchema, DatasetPreviewSchema } from './preview.js';
import { RunConfigSchema } from './spec.js';
import type { Contract } from './protocol.js';

export { ApiError } from './protocol.js';
import { DeploymentReportSchema, EXPORT_FORMATS } from './deployment.js';
import { BackboneInspectionSchema, BackboneListingSchema, BackboneNameSchema } from './backbones.js';
import {
  ExecutorSchema,
  StudyIdSchema,
  StudyListSchema,
  StudyMethodsSchema,
  StudySeedsSchema,
  StudyViewSchema,
} from './study.js';

const runDir = z.string().min(1, 'run folder is required').max(4096);

/**
 * Images an analysis uses at most, of the validation hold-out (the test set for a run that held
 * out nothing), class-balanced: enough for stable accuracies, quick to run.
 */
export const ANALYSIS_MAX_IMAGES = 2000;

export { EXPORT_FORMATS, type ExportFormat } from './deployment.js';

/** Request payloads of the calls the page and the engine both answer, one schema per method. */
const SharedRequestSchemas = {
  getInfo: z.object({}).strict(),
  listRuns: z.object({}).strict(),
  openRun: z.object({ run: runDir }).strict(),
  /** The config is validated in full by parseRunConfig (which also checks exits against the depth). */
  startRun: z.object({ config: z.unknown() }).strict(),
  resumeRun: z.object({ run: runDir }).strict(),
  pauseRun: z.object({}).strict(),
  continueRun: z.object({}).strict(),
  stopRun: z.object({}).strict(),
  exportExit: z
    .object({
      run: runDir,
      /** The exit's block number, or 'final' (shared/exitRef.ts). */
      exit: ExitRefSchema,
      format: z.enum(EXPORT_FORMATS),
      /** Folder to write into; omitted = the run folder's exports/. */
      destination: z.string().min(1).max(4096).optional(),
      /** Multi format: the max-softmax confidence at which a sample leaves (the early-exit policy's pick). */
      threshold: z.number().gt(0, 'threshold must be above 0').max(1, 'threshold is at most 1').optional(),
    })
    .strict(),
  /** Analyses of a trained run, on at most ANALYSIS_MAX_IMAGES of its validation hold-out (of its test set when it has none). */
  earlyExit: z.object({ run: runDir, criterion: z.enum(EXIT_CRITERIA) }).strict(),
  lesion: z.object({ run: runDir }).strict(),
  supervision: z.object({ run: runDir }).strict(),
  /** Per-exit evaluation on a split, computed once (with evaluation-progress events) and cached in the run folder. */
  evaluate: z.object({ run: runDir, split: z.enum(EVALUATION_SPLITS) }).strict(),
  /** The images behind one cell of an evaluation, as thumbnails, a page at a time. */
  evaluationImages: z
    .object({
      run: runDir,
      split: z.enum(EVALUATION_SPLITS),
      selection: ImageSelectionSchema,
      offset: z.number().int().nonnegative().default(0),
      limit: z
        .number()
        .int()
        .positive()
        .max(MAX_THUMBNAILS, `at most ${MAX_THUMBNAILS} images a page`)
        .default(MAX_THUMBNAILS),
    })
    .strict(),
  /** The New-run page's look at a dataset before training: counts, thumbnails, augmentation draws. */
  previewDataset: DatasetPreviewRequestSchema,
  /**
   * A study: the config (validated in full per queued run) under each method and seed, trained
   * one run after another in the engine, or as one Slurm job array (the controller checks the
   * Slurm settings before the study exists). Seeds run from the config's seed upwards.
   */
  startStudy: z
    .object({
      config: z.unknown(),
      methods: StudyMethodsSchema,
      seeds: StudySeedsSchema,
      executor: ExecutorSchema.default({ kind: 'local' }),
    })
    .strict(),
  /** Continues a stopped or interrupted study: cut-short runs from their checkpoints, then the rest (Slurm: jobs still queued are watched again). */
  resumeStudy: z.object({ study: StudyIdSchema }).strict(),
  /** Stops the study's live run (it checkpoints) and starts no further one; a Slurm study's jobs are cancelled (scancel). */
  stopStudy: z.object({}).strict(),
  /** The studies in the runs root with their results, newest first. */
  listStudies: z.object({}).strict(),
  /** The pinned ImageNet-pretrained backbones and whether each is in the user's cache. */
  listBackbones: z.object({}).strict(),
  /** Downloads one pinned backbone into the cache (checked against its SHA-256); answers its path. */
  fetchBackbone: z.object({ name: BackboneNameSchema }).strict(),
  /** A backbone file's exit candidates (with parameters and MACs up to each), default exits and input. */
  inspectBackbone: z.object({ path: z.string().min(1, 'backbone path is required').max(4096) }).strict(),
} as const;

/** Request payloads of the studio API, one schema per method: what the page may ask. */
export const RequestSchemas = {
  ...SharedRequestSchemas,
  /**
   * The native folder picker (for 'backbone', a picker of one .onnx file), answered by the Electron
   * main process itself, which then tells the engine the path may be used (allowFolder); serve
   * mode answers {} (the page types paths).
   */
  chooseFolder: z.object({ purpose: z.enum(['dataset', 'export', 'backbone']) }).strict(),
  /**
   * The desktop app opens a remote studio (serve mode on a cluster's login node, through an SSH
   * tunnel) in a window of its own and keeps address and token through the OS keychain; checked
   * by the main process (shared/remote.ts: an empty token means the one kept for that address).
   * Serve mode refuses it.
   */
  connectRemote: z.object({ address: z.string().max(200), token: z.string().max(200) }).strict(),
  /** The remote studio's address kept from the last connection (never its token). */
  savedRemote: z.object({}).strict(),
} as const;
export type StudioMethod = keyof typeof RequestSchemas;
export type StudioRequest<M extends StudioMethod> = z.infer<(typeof RequestSchemas)[M]>;

/** What a face may ask its engine process: the studio API but the dialog, which the face shows itself. */
export const EngineRequestSchemas = {
  ...SharedRequestSchemas,
  /** A folder the user chose in the native dialog: paths under it may be used (with native dialogs, only those). */
  allowFolder: z.object({ path: z.string().min(1).max(4096) }).strict(),
} as const;
export type EngineMethod = keyof typeof EngineRequestSchemas;
export type EngineRequest<M extends EngineMethod> = z.infer<(typeof EngineRequestSchemas)[M]>;

export const StudioInfoSchema = z.object({
  version: z.string(),
  backend: BackendSummarySchema,
  /** Why faster backends were not used. */
  backendNotes: z.array(z.string()),
  runsRoot: z.string(),
  /** Whether native dialogs exist (Electron) or paths are typed (browser). */
  nativeDialogs: z.boolean(),
  activeRun: z.string().optional(),
  /** The study being trained, if any (its runs are the active run in turn). */
  activeStudy: z.string().optional(),
  /** Whether Slurm's sbatch is on the PATH of the machine the engine runs on (the Study view offers the Slurm executor). */
  slurm: z.boolean(),
});
export type StudioInfo = z.infer<typeof StudioInfoSchema>;

export const RunListingSchema = z.object({
  dir: z.string(),
  name: z.string(),
  config: RunConfigSchema.optional(),
  status: z.enum([...RUN_STATUSES, 'unknown']),
  summary: RunSummarySchema.optional(),
  problem: z.string().optional(),
});
export type RunListingView = z.infer<typeof RunListingSchema>;

export const RunDetailSchema = z.object({
  dir: z.string(),
  config: RunConfigSchema,
  state: RunStateSchema.optional(),
  summary: RunSummarySchema.optional(),
  /** Exits with their costs, known even before the run finished. */
  exits: z.array(ExitInfoSchema),
  dataset: DatasetSummarySchema.optional(),
  metrics: z.array(MetricsRecordSchema),
});
export type RunDetail = z.infer<typeof RunDetailSchema>;

export const ExportResultSchema = z.object({
  files: z.array(z.string()),
  directory: z.string(),
  deployment: DeploymentReportSchema,
});
export type ExportResult = z.infer<typeof ExportResultSchema>;

const SharedResponseSchemas = {
  getInfo: StudioInfoSchema,
  listRuns: z.array(RunListingSchema),
  openRun: RunDetailSchema,
  startRun: z.object({ run: z.string() }),
  resumeRun: z.object({ run: z.string() }),
  pauseRun: z.object({}),
  continueRun: z.object({}),
  stopRun: z.object({}),
  exportExit: ExportResultSchema,
  earlyExit: EarlyExitSweepSchema,
  lesion: LesionStudySchema,
  supervision: SupervisionSharesSchema,
  evaluate: EvaluationSchema,
  evaluationImages: EvaluationImagesSchema,
  previewDataset: DatasetPreviewSchema,
  startStudy: z.object({ study: z.string() }),
  resumeStudy: z.object({ study: z.string() }),
  stopStudy: z.object({}),
  listStudies: StudyListSchema,
  listBackbones: z.array(BackboneListingSchema),
  fetchBackbone: z.object({ path: z.string() }),
  inspectBackbone: BackboneInspectionSchema,
} as const satisfies Record<keyof typeof SharedRequestSchemas, z.ZodType>;

/** Responses of the studio API, checked by the page's side of either transport. */
export const ResponseSchemas = {
  ...SharedResponseSchemas,
  chooseFolder: z.object({ path: z.string().optional() }),
  connectRemote: z.object({}),
  savedRemote: z.object({ address: z.string().optional() }),
} as const satisfies Record<StudioMethod, z.ZodType>;
export type StudioResponse<M extends StudioMethod> = z.infer<(typeof ResponseSchemas)[M]>;

export const EngineResponseSchemas = {
  ...SharedResponseSchemas,
  allowFolder: z.object({}),
} as const satisfies Record<EngineMethod, z.ZodType>;
export type EngineResponse<M extends EngineMethod> = z.infer<(typeof EngineResponseSchemas)[M]>;

/**
 * Commands of the desktop app's menu that the page carries out: File > New Run shows the new-run
 * view, File > Connect to a Remote Studio its form.
 */
export const MENU_COMMANDS = ['new-run', 'connect-remote'] as const;

/**
 * Pushed to the renderer: run events (batches coalesced), trainer crashes and study progress
 * (its record and result at every run's start and end) from the engine, menu commands from the shell.
 */
export const StudioEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('run'), events: z.array(RunEventSchema) }),
  z.object({ type: z.literal('trainer-crashed'), message: z.string(), run: z.string().optional() }),
  z.object({ type: z.literal('menu-command'), command: z.enum(MENU_COMMANDS) }),
  z.object({
    type: z.literal('evaluation-progress'),
    run: z.string(),
    split: z.enum(EVALUATION_SPLITS),
    done: z.number().int().nonnegative(),
    total: z.number().int().nonnegative(),
  }),
  z.object({ type: z.literal('study'), study: StudyViewSchema }),
]);
export type StudioEvent = z.infer<typeof StudioEventSchema>;

/** `window.studio`: one method per operation, each returning a promise. */
export type StudioApi = {
  [M in StudioMethod]: (request: StudioRequest<M>) => Promise<StudioResponse<M>>;
} & {
  /** Subscribes to pushed events; returns the unsubscribe function. */
  onEvent(listener: (event: StudioEvent) => void): () => void;
};

/** The page and its face (Electron's main process through the preload, or serve mode's server). */
export const STUDIO_CONTRACT = {
  requests: RequestSchemas,
  responses: ResponseSchemas,
  events: StudioEventSchema,
} as const satisfies Contract;
export type StudioContract = typeof STUDIO_CONTRACT;

/** A face and its engine process (electron/relay/ and electron/engine/worker.ts). */
export const ENGINE_CONTRACT = {
  requests: EngineRequestSchemas,
  responses: EngineResponseSchemas,
  events: StudioEventSchema,
} as const satisfies Contract;
export type EngineContract = typeof ENGINE_CONTRACT;
