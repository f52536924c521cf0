/**
 * A run as the Live and Exits views draw it. The same reducer builds it from a live event
 * stream and from a run folder's records, so a run looks the same whether it was watched or
 * opened afterwards. Series grow in place (they can hold tens of thousands of points); the
 * store owning a trace publishes a new shallow copy of it once per batch of events.
 */
import type { RunDetail } from '../../shared/api.js';
import type {
  BackendSummary,
  BatchMetrics,
  DatasetSummary,
  ExitInfo,
  ExitReport,
  MetricsRecord,
  RunEvent,
  RunStart,
  RunStatus,
  RunSummary,
} from '../../shared/metrics.js';
import type { RunConfig } from '../../shared/spec.js';

/** A chart point, in the shape Chart.js reads without parsing (which its decimation needs). */
export interface Point {
  x: number;
  y: number;
}

export interface RunProgress {
  /** Global steps done, and of how many (unknown until the first step is reported). */
  step: number;
  totalSteps?: number;
  /** Epoch in progress (or last finished), of how many. */
  epoch: number;
  epochs: number;
  imagesPerSecond?: number;
  etaSeconds?: number;
  /** Set while only the heads train on a frozen backbone (BatchMetrics.backbone). */
  backbone?: BatchMetrics['backbone'];
}

export type TraceStatus = RunStatus | 'unknown';

export interface RunTrace {
  dir: string;
  name: string;
  config: RunConfig;
  network?: string;
  backend?: BackendSummary;
  dataset?: DatasetSummary;
  /** Every exit with its costs, known from the start. */
  exits: ExitInfo[];
  /** Accuracy and latency of every exit, once the run has been evaluated. */
  reports?: ExitReport[];
  summary?: RunSummary;
  status: TraceStatus;
  statusMessage?: string;
  /** A frozen backbone's feature cache: what it holds, or why there is none (live runs). */
  featureCache?: string;
  /** What the engine is evaluating right now, if anything. */
  evaluating?: string;
  progress: RunProgress;
  /** One series per exit, shallowest first: loss per step, train and test accuracy per epoch. */
  loss: Point[][];
  /** Each exit's plain cross-entropy per step, where it differs from the loss (self-distillation); else empty. */
  crossEntropy: Point[][];
  trainAccuracy: Point[][];
  testAccuracy: Point[][];
}

/** An exits-table row: costs always, accuracy and latency once evaluated. */
export type ExitRow = ExitInfo & Partial<Pick<ExitReport, 'top1' | 'top5' | 'latencyMs'>>;

export type ProgressEvent = Exclude<RunEvent, { type: 'started' }>;

/** "/runs/2026-11-23_09-41-07_resnet20_multiway" -> "2026-11-23_09-41-07_resnet20_multiway". */
export function runName(dir: string): string {
  return dir.split(/[\\/]/).filter(Boolean).pop() ?? dir;
}

function emptySeries(exits: number): Point[][] {
  return Array.from({ length: exits }, () => []);
}

/**
 * A trace for a run that just started. When it resumes the run `previous` shows, the history up
 * to the checkpoint is kept; steps logged after it are dropped, since they will be trained again.
 */
export function traceFromStart(start: RunStart, previous?: RunTrace): RunTrace {
  const from = start.resumedFrom ?? { epoch: 0, step: 0 };
  const history = start.resumedFrom && previous?.dir === start.run ? previous : undefined;
  const keep = (series: Point[][] | undefined, upTo: number) =>
    series?.map((points) => points.filter((p) => p.x <= upTo)) ?? emptySeries(start.exits.length);
  return {
    dir: start.run,
    name: start.name,
    config: start.config,
    network: start.network,
    backend: start.backend,
    dataset: start.dataset,
    exits: start.exits,
    ...(start.featureCache ? { featureCache: start.featureCache } : {}),
    status: 'running',
    progress: {
      step: from.step,
      epoch: from.epoch,
      epochs: start.config.epochs,
      totalSteps: history?.progress.totalSteps,
    },
    loss: keep(history?.loss, from.step),
    crossEntropy: keep(history?.crossEntropy, from.step),
    trainAccuracy: keep(history?.trainAccuracy, from.epoch),
    testAccuracy: keep(history?.testAccuracy, from.epoch),
  };
}

/** A trace for a run read back from its folder (finished, stopped, or still training). */
export function traceFromDetail(detail: RunDetail): RunTrace {
  const { summary, state } = detail;
  const trace: RunTrace = {
    dir: detail.dir,
    name: summary?.name ?? runName(detail.dir),
    config: detail.config,
    network: summary?.network,
    backend: summary?.backend,
    dataset: detail.dataset ?? summary?.dataset,
    exits: detail.exits,
    reports: summary?.exits,
    summary,
    status: state?.status ?? (summary ? 'completed' : 'unknown'),
    statusMessage: state?.message,
    progress: { step: state?.step ?? 0, epoch: state?.epoch ?? 0, epochs: detail.config.epochs },
    loss: emptySeries(detail.exits.length),
    crossEntropy: emptySeries(detail.exits.length),
    trainAccuracy: emptySeries(detail.exits.length),
    testAccuracy: emptySeries(detail.exits.length),
  };
  for (const record of detail.metrics) applyRecord(trace, record);
  return trace;
}

const lastX = (series: Point[][]) => series[0]?.at(-1)?.x ?? 0;

/** Adds one metrics record. Records already drawn (a run opened from disk, then followed live) are skipped. */
export function applyRecord(trace: RunTrace, record: MetricsRecord): void {
  const { progress } = trace;
  if (record.type === 'batch') {
    if (record.step <= lastX(trace.loss)) return;
    record.losses.forEach((loss, k) => trace.loss[k]?.push({ x: record.step, y: loss }));
    record.crossEntropy?.forEach((entropy, k) => trace.crossEntropy[k]?.push({ x: record.step, y: entropy }));
    progress.step = record.step;
    progress.totalSteps = record.totalSteps;
    progress.epoch = record.epoch;
    progress.imagesPerSecond = record.imagesPerSecond;
    progress.etaSeconds = record.etaSeconds;
    progress.backbone = record.backbone;
    return;
  }
  if (record.epoch <= lastX(trace.testAccuracy)) return;
  record.trainAccuracy.forEach((accuracy, k) => trace.trainAccuracy[k]?.push({ x: record.epoch, y: accuracy }));
  record.testAccuracy.forEach((accuracy, k) => trace.testAccuracy[k]?.push({ x: record.epoch, y: accuracy }));
  progress.epoch = record.epoch;
  progress.epochs = record.epochs;
  progress.step = Math.max(progress.step, record.step);
}

/** Applies one event of the run the trace shows ('started' replaces the trace: see traceFromStart). */
export function applyRunEvent(trace: RunTrace, event: ProgressEvent): void {
  switch (event.type) {
    case 'batch':
    case 'epoch':
      applyRecord(trace, event);
      trace.evaluating = undefined;
      return;
    case 'evaluating':
      trace.evaluating = event.what;
      return;
    case 'evaluated':
      trace.reports = event.exits;
      trace.evaluating = undefined;
      return;
    case 'status':
      trace.status = event.state.status;
      trace.statusMessage = event.state.message;
      return;
    case 'finished':
      trace.summary = event.summary;
      trace.reports = event.summary.exits;
      trace.status = 'completed';
      trace.evaluating = undefined;
      trace.progress.etaSeconds = 0;
      return;
  }
}

/** Fraction of the training done, when known. */
export function progressFraction(trace: RunTrace): number | undefined {
  if (trace.status === 'completed') return 1;
  const { step, totalSteps } = trace.progress;
  return totalSteps ? Math.min(1, step / totalSteps) : undefined;
}

/** The exits-table rows: evaluated reports when there are, else the exits with their costs. */
export function exitRows(trace: RunTrace): ExitRow[] {
  return trace.reports ?? trace.exits;
}

export function lastValue(series: readonly Point[] | undefined): number | undefined {
  return series?.at(-1)?.y;
}
