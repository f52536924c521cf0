/**
 * What a run reports: the events the engine streams while training and the files it leaves
 * in the run folder. Engine, CLI, serve mode and renderer all speak these types; the schemas
 * validate what is read back from disk or received over a socket (both untrusted).
 */
import { z } from 'zod';
import { RunConfigSchema } from './spec.js';

const count = z.number().int().nonnegative();
const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const fraction = z.number().min(0).max(1);

export const ExitInfoSchema = z.object({
  /** Position among the exits, shallowest first; the final output is last. */
  index: count,
  /** 1-based block after which the exit sits. */
  block: z.number().int().positive(),
  /** Layer index (stem = 1, two layers per block). */
  layer: z.number().int().positive(),
  final: z.boolean(),
  /** Parameters of the sub-model ending at this exit (backbone prefix + head). */
  params: count,
  /** Multiply-accumulates per image of that sub-model. */
  macs: count,
});
export type ExitInfo = z.infer<typeof ExitInfoSchema>;

export const LatencySchema = z.object({ median: finite, p90: finite });
export type Latency = z.infer<typeof LatencySchema>;

export const ExitReportSchema = ExitInfoSchema.extend({
  top1: fraction,
  /** Only for 20 or more classes. */
  top5: fraction.optional(),
  /** Top-1 on the held-out validation split, when the run has one (top1 is on the test set). */
  validationTop1: fraction.optional(),
  /** Milliseconds per forward pass of the sub-model on the run's backend. */
  latencyMs: z.object({
    batch1: LatencySchema,
    batch32: LatencySchema,
    /** What ran the timed inference when not the backend's own kernels (wasm-ort: onnxruntime, whole sub-model). */
    runtime: z.string().max(200).optional(),
  }),
});
export type ExitReport = z.infer<typeof ExitReportSchema>;

export const BackendSummarySchema = z.object({
  name: z.string(),
  label: z.string(),
  device: z.string(),
  gpu: z.boolean(),
});
export type BackendSummary = z.infer<typeof BackendSummarySchema>;

export const DatasetSummarySchema = z.object({
  name: z.string(),
  source: z.string(),
  shape: z.object({
    height: z.number().int().positive(),
    width: z.number().int().positive(),
    channels: z.number().int().positive(),
  }),
  classes: z.array(z.string()),
  train: count,
  test: count,
  validation: count,
  normalization: z.object({ mean: z.array(finite), std: z.array(finite) }),
  /** Set when an image folder's images were resized to one size: how many, to what, and why. */
  sizeNote: z.string().optional(),
});
export type DatasetSummary = z.infer<typeof DatasetSummarySchema>;

/** One line of metrics.ndjson per optimisation step (sampled) or per epoch. */
export const BatchMetricsSchema = z.object({
  type: z.literal('batch'),
  epoch: z.number().int().positive(),
  /** Global step, 1-based. */
  step: z.number().int().positive(),
  totalSteps: z.number().int().positive(),
  /**
   * The loss each exit optimises, batch mean: its cross-entropy, or under self-distillation an
   * auxiliary exit's (1 - alpha) * CE + alpha * T^2 * KL(final || exit).
   */
  losses: z.array(finite),
  /** Each exit's cross-entropy, given under self-distillation (where it differs from losses). */
  crossEntropy: z.array(finite).optional(),
  lr: finite,
  imagesPerSecond: finite,
  etaSeconds: finite,
  /**
   * Set while the backbone is frozen and only the heads train: 'frozen' when the step ran the
   * backbone for the heads' inputs, 'cached' when it read them from the feature cache.
   */
  backbone: z.enum(['frozen', 'cached']).optional(),
});
export type BatchMetrics = z.infer<typeof BatchMetricsSchema>;

/** How the progress line names a step on a frozen backbone (BatchMetrics.backbone). */
export const HEADS_ONLY: Record<NonNullable<BatchMetrics['backbone']>, string> = {
  frozen: 'heads only (backbone frozen)',
  cached: 'heads only, cached features',
};

export const EpochMetricsSchema = z.object({
  type: z.literal('epoch'),
  epoch: z.number().int().positive(),
  epochs: z.number().int().positive(),
  step: z.number().int().positive(),
  trainLoss: z.array(finite),
  trainAccuracy: z.array(fraction),
  /** Accuracy on the held-out validation split when there is one, else on the test set. */
  testAccuracy: z.array(fraction),
  seconds: finite,
  imagesPerSecond: finite,
});
export type EpochMetrics = z.infer<typeof EpochMetricsSchema>;

export const MetricsRecordSchema = z.discriminatedUnion('type', [BatchMetricsSchema, EpochMetricsSchema]);
export type MetricsRecord = z.infer<typeof MetricsRecordSchema>;

export const RUN_STATUSES = ['running', 'paused', 'completed', 'stopped', 'failed', 'interrupted'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** state.json: where a run stands; rewritten atomically as it moves. */
export const RunStateSchema = z.object({
  status: z.enum(RUN_STATUSES),
  /** Process that owns a running run; a dead pid means the run was interrupted. */
  pid: z.number().int().optional(),
  updatedAt: z.string(),
  message: z.string().optional(),
  /** Completed epochs and steps as of the last checkpoint. */
  epoch: count,
  step: count,
});
export type RunState = z.infer<typeof RunStateSchema>;

/** What identifies a run and its setting: shared by its start announcement and its summary. */
const RunIdentitySchema = z.object({
  run: z.string(),
  name: z.string(),
  network: z.string(),
  config: RunConfigSchema,
  dataset: DatasetSummarySchema,
  backend: BackendSummarySchema,
  lossWeights: z.array(finite),
});

export const RunSummarySchema = RunIdentitySchema.extend({
  exits: z.array(ExitReportSchema),
  trainSeconds: finite,
  imagesPerSecond: finite,
  finishedAt: z.string(),
});
export type RunSummary = z.infer<typeof RunSummarySchema>;

/** What the engine announces when a run starts: enough for a view to draw every exit. */
export const RunStartSchema = RunIdentitySchema.extend({
  exits: z.array(ExitInfoSchema),
  /** Set when the run continues from a checkpoint. */
  resumedFrom: z.object({ epoch: count, step: count }).optional(),
  /** Set when a frozen backbone trains: what the feature cache holds, or why there is none. */
  featureCache: z.string().optional(),
});
export type RunStart = z.infer<typeof RunStartSchema>;

/** The stream a training run emits, in order: started, (batch* epoch)*, evaluated, then one end. */
export const RunEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('started'), start: RunStartSchema }),
  BatchMetricsSchema,
  EpochMetricsSchema,
  z.object({ type: z.literal('evaluating'), what: z.string() }),
  z.object({ type: z.literal('evaluated'), exits: z.array(ExitReportSchema) }),
  z.object({ type: z.literal('status'), state: RunStateSchema }),
  z.object({ type: z.literal('finished'), summary: RunSummarySchema }),
]);
export type RunEvent = z.infer<typeof RunEventSchema>;
