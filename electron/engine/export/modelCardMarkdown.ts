/** MODEL_CARD.md: the model card for people. */
import { formatBytes, formatCount, formatMs, formatPercent } from '../../../shared/format.js';
import type { Latency } from '../../../shared/metrics.js';
import type { ExportFormat } from '../../../shared/api.js';
import { ACCURACY_TOLERANCE_POINTS } from '../../../shared/deployment.js';
import type { ModelCard } from './modelCard.js';

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
