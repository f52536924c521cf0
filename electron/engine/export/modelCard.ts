/**
 * The model card written beside every export (model-card.json for programs, MODEL_CARD.md for
 * people): what the model is, how it was trained, how well and how fast it runs, and exactly
 * how to prepare its input.
 */
import { exitLabel, formatBytes, formatCount, formatMs, formatPercent } from '../../../shared/format.js';
import type { ExitReport, Latency, RunStart, RunSummary } from '../../../shared/metrics.js';
import { METHOD_LABELS, type Method } from '../../../shared/spec.js';
import type { ExportFormat } from '../../../shared/api.js';
import { ACCURACY_TOLERANCE_POINTS, type DeploymentReport } from '../../../shared/deployment.js';
import type { ExitCost } from '../models/network.js';

export interface Preprocessing {
  /** Name of the model's input. */
  input: string;
  layout: 'NHWC';
  dtype: 'float32';
  /** [batch, height, width, channels]; the batch size is free. */
  shape: [string, number, number, number];
  channelOrder: string;
  /** Per channel, of pixels scaled to [0, 1], measured on the training images. */
  mean: number[];
  std: number[];
  formula: string;
}

export interface ExitCard {
  index: number;
  block: number;
  layer: number;
  final: boolean;
  label: string;
  /** Name of the model output holding this exit's logits. */
  output: string;
  params: number;
  macs: number;
  /** The exit's weight in the training loss (lambda). */
  lossWeight: number;
  /** On the run's test set; absent until the run finished. */
  top1?: number;
  top5?: number;
  /** Top-1 of the exported file itself on the held-out images (deployment.accuracy says which), by weight precision. */
  exportedTop1: { float32: number; float16?: number; int8?: number };
  latencyMs: {
    /**
     * Measured by the run on its backend (the sub-model alone), when it finished; `runtime` says
     * what ran it where not the backend's own kernels (wasm-ort: onnxruntime, the whole sub-model).
     */
    run?: { backend: string; runtime?: string; device: string; batch1: Latency; batch32: Latency };
    /** Measured at export with onnxruntime-node on the CPU. */
    onnxruntime?: { version: string; device: string; batch1: Latency };
  };
}

export interface ModelCard {
  title: string;
  createdAt: string;
  format: ExportFormat;
  /** The model's files in the folder (besides the two card files). */
  files: string[];
  /** Hex SHA-256 of each model file (early-exit metadata aside): loading refuses a file that differs. */
  sha256: Record<string, string>;
  network: string;
  run: {
    folder: string;
    method: Method;
    methodLabel: string;
    /** Loss-weight exponent the exit weights derive from. */
    gamma: number;
    seed: number;
    epochs: number;
    batchSize: number;
    learningRate: number;
    finishedAt?: string;
  };
  dataset: { name: string; source: string; classes: string[]; trainImages: number; testImages: number };
  /** Exported exits, shallowest first (one unless the format is 'multi'). */
  exits: ExitCard[];
  outputs: string;
  preprocessing: Preprocessing;
  earlyExit?: { file: string; threshold: number };
  /** The exported model against the trained network on random inputs, before writing. */
  verification: { images: number; maxAbsDiff: number };
  /** Re-scored accuracy, sizes of every format, onnxruntime float32 / int8 latency. */
  deployment: DeploymentReport;
}

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

const FORMAT_DESCRIPTIONS: Record<ExportFormat, string> = {
  tfjs: 'TensorFlow.js layers model (model.json + weights.bin); load with tf.loadLayersModel',
  'tfjs-float16':
    'TensorFlow.js layers model with float16-quantised weights (half the bytes; tfjs restores float32 on loading); load with tf.loadLayersModel',
  onnx: 'ONNX model (opset 13, NCHW inside, NHWC input, batch norm folded into the convolutions)',
  'onnx-int8': `ONNX model in int8 QDQ form (static post-training quantization: per-channel symmetric int8 weights, per-tensor int8 activations calibrated by min-max on training images), float32 input and output`,
  multi:
    'TensorFlow.js layers model with one output per exit, shallowest first, and early-exit metadata (early-exit.json)',
  'multi-onnx-int8':
    'int8 QDQ ONNX model with one output per exit, shallowest first, and early-exit metadata (early-exit.json)',
};

/** The card's deployment section: the exported file's accuracy, every format's size, float32 vs int8 latency. */
function deploymentLines(card: ModelCard): string[] {
  const { accuracy, sizes, onnxruntimeBatch1: latency, warnings } = card.deployment;
  const precisions = (['float32', 'float16', 'int8'] as const).flatMap((precision) => {
    const top1 = accuracy[precision];
    return top1 === undefined ? [] : [[precision, top1] as const];
  });
  return [
    '## Deployment',
    '',
    `Accuracy of the exported file itself, re-scored on the run's ${accuracy.images} ${accuracy.split} images` +
      (accuracy.engine !== undefined
        ? ` (the engine measured ${formatPercent(accuracy.engine, 2)} for this exit):`
        : ':'),
    '',
    ...table(
      ['Weights', 'Top-1'],
      precisions.map(([precision, top1]) => [precision, formatPercent(top1, 2)]),
    ),
    '',
    ...(warnings.length
      ? [
          `**More than ${ACCURACY_TOLERANCE_POINTS} points below the engine's figure:**`,
          '',
          ...warnings.map((w) => `- ${w}`),
          '',
        ]
      : [`No exported exit is more than ${ACCURACY_TOLERANCE_POINTS} points below the engine's figure.`, '']),
    ...table(
      ['Format', 'Size on disk', 'Latency b1, onnxruntime CPU'],
      [
        ['ONNX float32', formatBytes(sizes.onnxFloat32), latencyCell(latency.float32)],
        ['ONNX int8 (QDQ)', formatBytes(sizes.onnxInt8), latencyCell(latency.int8)],
        ['tfjs float32 weights', formatBytes(sizes.tfjsFloat32), 'n/a'],
        ['tfjs float16 weights', formatBytes(sizes.tfjsFloat16), 'n/a'],
      ],
    ),
    '',
    `Latency: onnxruntime-node ${latency.version} on ${latency.device}, median (p90) of batch-1 runs.`,
    '',
  ];
}

function latencyCell(latency: Latency | undefined): string {
  return latency ? `${formatMs(latency.median)} (p90 ${formatMs(latency.p90)})` : 'not measured';
}

function table(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => ' --- ').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
}

export function modelCardMarkdown(card: ModelCard): string {
  const p = card.preprocessing;
  const run = card.exits.find((e) => e.latencyMs.run)?.latencyMs.run;
  const onnxRuntime = card.exits.find((e) => e.latencyMs.onnxruntime)?.latencyMs.onnxruntime;
  const header = [
    'Exit',
    'Layer',
    'Output',
    'Params',
    'MACs',
    'Loss weight λ',
    'Top-1',
    `Latency b1, ${run ? (run.runtime ?? `tfjs ${run.backend}`) : 'tfjs'}`,
  ];
  if (onnxRuntime) header.push('Latency b1, onnxruntime CPU');
  const rows = card.exits.map((e) => {
    const row = [
      e.label,
      String(e.layer),
      `\`${e.output}\``,
      formatCount(e.params),
      formatCount(e.macs),
      e.lossWeight.toPrecision(3),
    ];
    row.push(
      e.top1 === undefined ? 'run not finished' : formatPercent(e.top1, 2),
      latencyCell(e.latencyMs.run?.batch1),
    );
    if (onnxRuntime) row.push(latencyCell(e.latencyMs.onnxruntime?.batch1));
    return row;
  });
  const lines = [
    `# Model card: ${card.title}`,
    '',
    `Exported by Mw Studio on ${card.createdAt}. Format: ${FORMAT_DESCRIPTIONS[card.format]}.`,
    `Files: ${card.files.map((f) => `\`${f}\``).join(', ')}.`,
    '',
    '## Exits',
    '',
    ...table(header, rows),
    '',
    `Top-1 is measured on the run's ${card.dataset.testImages} test images.` +
      (run
        ? ` The run measured its latency on ${run.backend}${run.runtime ? ` (${run.runtime})` : ''}, ${run.device}.`
        : ''),
    ...(onnxRuntime
      ? [
          `onnxruntime latency was measured at export with onnxruntime-node ${onnxRuntime.version} on ${onnxRuntime.device}.`,
        ]
      : []),
    `Outputs are ${card.outputs}.`,
    '',
    '## Training',
    '',
    ...table(
      ['', ''],
      [
        ['Network', card.network],
        ['Method', `${card.run.methodLabel}, loss-weight exponent γ = ${card.run.gamma}`],
        ['Seed', String(card.run.seed)],
        ['Epochs, batch size, learning rate', `${card.run.epochs}, ${card.run.batchSize}, ${card.run.learningRate}`],
        ['Finished', card.run.finishedAt ?? 'not finished (exported from the last checkpoint)'],
        ['Run folder', `\`${card.run.folder}\``],
      ],
    ),
    '',
    '## Data',
    '',
    `${card.dataset.name} (\`${card.dataset.source}\`): ${card.dataset.trainImages} training and ${card.dataset.testImages} test images.`,
    '',
    `Classes (output order): ${card.dataset.classes.map((c, i) => `${i} ${c}`).join(', ')}.`,
    '',
    '## Input preprocessing',
    '',
    `Input \`${p.input}\`: ${p.dtype}, ${p.layout}, shape [${p.shape.join(', ')}] (${p.shape[1]}x${p.shape[2]}x${p.shape[3]}, ${p.channelOrder}; any batch size N).`,
    '',
    `    ${p.formula}`,
    '',
    ...table(
      ['Channel', 'mean', 'std'],
      p.mean.map((m, c) => [String(c), String(m), String(p.std[c])]),
    ),
    '',
  ];
  if (card.earlyExit) {
    lines.push(
      '## Early exit',
      '',
      `\`${card.earlyExit.file}\` lists the outputs in order. Run the model, then take the first exit whose highest softmax probability is at least ${card.earlyExit.threshold}; if none is, take the final one.`,
      '',
    );
  }
  lines.push(
    ...deploymentLines(card),
    '## Verification',
    '',
    `Before writing, the exported model was run on ${card.verification.images} random inputs: largest difference from the trained network ${card.verification.maxAbsDiff.toExponential(2)}.`,
    '',
  );
  return lines.join('\n');
}
