/** The model card of an export, from the run's start and summary and what the export measured. */
import { exitLabel } from '../../../shared/format.js';
import type { ExitReport, Latency, RunStart, RunSummary } from '../../../shared/metrics.js';
import { METHOD_LABELS } from '../../../shared/spec.js';
import type { ExportFormat } from '../../../shared/api.js';
import type { DeploymentReport } from '../../../shared/deployment.js';
import type { ExitCost } from '../models/network.js';
import type { ExitCard, ModelCard, Preprocessing } from './modelCard.js';

export function preprocessingOf(start: RunStart, input: string): Preprocessing {
  const { height, width, channels } = start.dataset.shape;
  return {
    input,
    layout: 'NHWC',
    dtype: 'float32',
    shape: ['N', height, width, channels],
    channelOrder: channels === 1 ? 'grayscale' : channels === 3 ? 'RGB' : `${channels} channels as in the dataset`,
    mean: start.dataset.normalization.mean,
    std: start.dataset.normalization.std,
    formula: 'x[n, h, w, c] = (pixel[n, h, w, c] / 255 - mean[c]) / std[c]',
  };
}

export interface CardInput {
  start: RunStart;
  summary: RunSummary | undefined;
  format: ExportFormat;
  files: string[];
  sha256: Record<string, string>;
  exits: readonly { exit: ExitCost; output: string }[];
  preprocessing: Preprocessing;
  onnxLatency?: { version: string; device: string; batch1: readonly Latency[] };
  earlyExit?: ModelCard['earlyExit'];
  verification: ModelCard['verification'];
  deployment: DeploymentReport;
  /** Per weight precision, the exported file's top-1 at each exported exit, in order. */
  exportedTop1: { float32: number[]; float16?: number[]; int8?: number[] };
  createdAt?: Date;
}

function exitCard(input: CardInput, exit: ExitCost, output: string, position: number): ExitCard {
  const report: ExitReport | undefined = input.summary?.exits[exit.index];
  const { summary, onnxLatency } = input;
  return {
    index: exit.index,
    block: exit.block,
    layer: exit.layer,
    final: exit.final,
    label: exitLabel(exit),
    output,
    params: exit.params,
    macs: exit.macs,
    lossWeight: input.start.lossWeights[exit.index]!,
    ...(report ? { top1: report.top1 } : {}),
    ...(report?.top5 !== undefined ? { top5: report.top5 } : {}),
    exportedTop1: {
      float32: input.exportedTop1.float32[position]!,
      ...(input.exportedTop1.float16 ? { float16: input.exportedTop1.float16[position]! } : {}),
      ...(input.exportedTop1.int8 ? { int8: input.exportedTop1.int8[position]! } : {}),
    },
    latencyMs: {
      ...(report && summary
        ? {
            run: {
              backend: summary.backend.label,
              ...(report.latencyMs.runtime ? { runtime: report.latencyMs.runtime } : {}),
              device: summary.backend.device,
              batch1: report.latencyMs.batch1,
              batch32: report.latencyMs.batch32,
            },
          }
        : {}),
      ...(onnxLatency
        ? {
            onnxruntime: {
              version: onnxLatency.version,
              device: onnxLatency.device,
              batch1: onnxLatency.batch1[position]!,
            },
          }
        : {}),
    },
  };
}

export function buildModelCard(input: CardInput): ModelCard {
  const { start, summary } = input;
  const exits = input.exits.map(({ exit, output }, position) => exitCard(input, exit, output, position));
  const subject = input.format === 'multi' ? `every exit up to ${exits.at(-1)!.label}` : exits[0]!.label;
  return {
    title: `${start.network}: ${subject}`,
    createdAt: (input.createdAt ?? new Date()).toISOString(),
    format: input.format,
    files: input.files,
    sha256: input.sha256,
    network: start.network,
    run: {
      folder: start.run,
      method: start.config.method,
      methodLabel: METHOD_LABELS[start.config.method],
      gamma: start.config.gamma,
      seed: start.config.seed,
      epochs: start.config.epochs,
      batchSize: start.config.batchSize,
      learningRate: start.config.lr,
      ...(summary ? { finishedAt: summary.finishedAt } : {}),
    },
    dataset: {
      name: start.dataset.name,
      source: start.dataset.source,
      classes: start.dataset.classes,
      trainImages: start.dataset.train,
      testImages: start.dataset.test,
    },
    exits,
    outputs: 'logits, one per class in the order of the dataset classes; softmax gives probabilities',
    preprocessing: input.preprocessing,
    ...(input.earlyExit ? { earlyExit: input.earlyExit } : {}),
    verification: input.verification,
    deployment: input.deployment,
  };
}
