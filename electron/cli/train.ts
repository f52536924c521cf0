/** `mw-studio train`: one run from the terminal, with progress, a per-exit table and --json. */
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { exitTax } from '../../shared/comparison.js';
import { exitLabel, formatCount, formatMs, formatPercent, formatPoints } from '../../shared/format.js';
import type { RunSummary } from '../../shared/metrics.js';
import { MOBILENET_BLOCKS } from '../../shared/mobilenet.js';
import {
  DEFAULT_ARCH,
  DEFAULT_RESNET_BLOCK,
  DEFAULT_RUN_CONFIG,
  HEADS,
  METHODS,
  NORMALIZATIONS,
  RESNET_BLOCKS,
  type ResNetBlock,
  type RunConfigInput,
} from '../../shared/spec.js';
import { initBackend, listRuns, openRun, type RunRequest, summarizeBackend } from '../engine/index.js';
import { ProgressReporter } from './progress.js';
import { renderTable } from './table.js';
import { BACKEND_CHOICES, UsageError } from './usage.js';

const d = DEFAULT_RUN_CONFIG;

/** The defaults shown are the shared run-config defaults (shared/spec.ts), which the parser below applies. */
export const TRAIN_USAGE = `mw-studio train [options]
  --dataset embedded|<path>   embedded Fashion-MNIST subset (default ${d.dataset}), an idx/CIFAR folder or
                              archive, or an image folder (one sub-folder per class)
  --arch resnet|mobilenet     network family (default ${DEFAULT_ARCH.family})
  --depth N                   ResNet depth 6n+2 (default ${DEFAULT_ARCH.depth})
  --width K                   width factor / multiplier (default ${DEFAULT_ARCH.width})
  --block ${RESNET_BLOCKS.join('|')}   ResNet block (default ${DEFAULT_RESNET_BLOCK}: pre-activation, option-A
                              shortcuts, the paper's parameter counts; projection = 1x1 conv + BN
                              shortcut, as the PyTorch yardstick)
  --backbone FILE.onnx        start from an imported ONNX backbone (torchvision, timm, tf2onnx or
                              this studio's export) instead of --arch; its exit candidates:
                              mw-studio inspect --backbone FILE
  --exits B1,B2,...           blocks (or the backbone's candidate ids) followed by an auxiliary exit
                              (default: the paper's placement; about four by compute on a backbone)
  --method ${METHODS.join('|')}   (default ${d.method})
  --gamma G                   loss-weight exponent (default ${d.gamma}; 0 = equal weights)
  --epochs E  --batch B  --lr LR  --seed S  --schedule step|cosine
                              (defaults ${d.epochs}, ${d.batchSize}, ${d.lr}, ${d.seed}, ${d.schedule})
  --milestones F1,F2,...      fractions of training where the step schedule cuts the lr x0.1
                              (default ${d.milestones.join(',')}, the paper's code)
  --distill                   self-distillation: auxiliary exits also learn from the final exit
  --distill-alpha A  --distill-temperature T   its weight (default ${d.distillAlpha}) and temperature (default ${d.distillTemperature})
  --gradient-equilibrium      IMTA's gradient equilibrium (each block learns from the average of
                              the exits at and above it)
  --head ${HEADS.join('|')}         exit head (default ${d.head}: the MW-BP code's; elastic = pool -> dropout -> FC)
  --freeze-epochs K           Elastic: train only the heads for the first K epochs, then everything
  --freeze-backbone           SDN IC-only: train only the heads; the backbone stays as it is
                              (with --no-augment each exit's features are computed once and cached)
  --no-feature-cache          recompute a frozen backbone's features every epoch
  --backbone-lr-scale F       the backbone learns at lr x F (default 1 from scratch, 0.1 pretrained)
  --normalize ${NORMALIZATIONS.join('|')}  input mean/std: the backbone's (ImageNet for pretrained
                              networks, their default) or the training set's (default from scratch)
  --validation F              hold out fraction F of the training set (default ${d.validationSplit}, 0 = none)
                              for per-epoch accuracy and the analyses; the test set is scored once
  --image-size N              image folders: resize every image to NxN (default: the most
                              common size, capped at 64; images of other sizes are resized)
  --limit-train N  --limit-test N   use a stratified subset
  --no-augment                no random crop / flip
  --out DIR                   where run folders go (default runs/)
  --resume DIR                continue a stopped or interrupted run from its checkpoint
  --backend ${BACKEND_CHOICES}
  --json                      print the result as one JSON object on the last line of stdout`;

export const TRAIN_OPTIONS = {
  dataset: { type: 'string' },
  arch: { type: 'string' },
  backbone: { type: 'string' },
  depth: { type: 'string' },
  width: { type: 'string' },
  block: { type: 'string' },
  exits: { type: 'string' },
  method: { type: 'string' },
  gamma: { type: 'string' },
  epochs: { type: 'string' },
  batch: { type: 'string' },
  lr: { type: 'string' },
  seed: { type: 'string' },
  schedule: { type: 'string' },
  milestones: { type: 'string' },
  validation: { type: 'string' },
  'image-size': { type: 'string' },
  'limit-train': { type: 'string' },
  'limit-test': { type: 'string' },
  'no-augment': { type: 'boolean' },
  distill: { type: 'boolean' },
  'distill-alpha': { type: 'string' },
  'distill-temperature': { type: 'string' },
  'gradient-equilibrium': { type: 'boolean' },
  head: { type: 'string' },
  'freeze-epochs': { type: 'string' },
  'freeze-backbone': { type: 'boolean' },
  'no-feature-cache': { type: 'boolean' },
  'backbone-lr-scale': { type: 'string' },
  normalize: { type: 'string' },
  out: { type: 'string' },
  resume: { type: 'string' },
  backend: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export type TrainFlags = ReturnType<
  typeof parseArgs<{ options: typeof TRAIN_OPTIONS; strict: true; allowPositionals: false }>
>['values'];

/** Numbers stay as given ("abc" becomes NaN) so the shared schema names the bad field. */
function num(value: string | undefined, fallback?: number): number | undefined {
  return value === undefined ? fallback : Number(value);
}

function numberList(value: string): number[] {
  return value
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => Number(s.trim()));
}

export function configFromFlags(flags: TrainFlags): RunConfigInput {
  const family = flags.arch ?? DEFAULT_ARCH.family;
  const exits = flags.exits === undefined ? undefined : numberList(flags.exits);
  let arch: RunConfigInput['arch'];
  if (flags.backbone !== undefined) {
    const others = (['arch', 'depth', 'width', 'block'] as const).filter((f) => flags[f] !== undefined);
    if (others.length) throw new UsageError(`--backbone brings its own network; leave out --${others.join(', --')}`);
    arch = { family: 'imported', backbone: flags.backbone, ...(exits ? { exits } : {}) };
  } else if (family === 'resnet') {
    const block = (flags.block ?? DEFAULT_RESNET_BLOCK) as ResNetBlock;
    arch = {
      family,
      depth: num(flags.depth, DEFAULT_ARCH.depth)!,
      width: num(flags.width, DEFAULT_ARCH.width)!,
      block,
      ...(exits ? { exits } : {}),
    };
  } else if (family === 'mobilenet') {
    if (flags.depth !== undefined)
      throw new UsageError(
        `--depth applies to --arch resnet; MobileNet has a fixed ${MOBILENET_BLOCKS} blocks (use --width)`,
      );
    if (flags.block !== undefined)
      throw new UsageError('--block applies to --arch resnet; MobileNet has depthwise-separable blocks only');
    arch = { family, width: num(flags.width, DEFAULT_ARCH.width)!, ...(exits ? { exits } : {}) };
  } else {
    throw new UsageError(`--arch must be resnet or mobilenet, not "${family}"`);
  }
  return {
    dataset: flags.dataset ?? d.dataset,
    arch,
    method: (flags.method ?? d.method) as RunConfigInput['method'],
    gamma: num(flags.gamma, d.gamma)!,
    epochs: num(flags.epochs, d.epochs)!,
    batchSize: num(flags.batch, d.batchSize)!,
    lr: num(flags.lr, d.lr)!,
    seed: num(flags.seed, d.seed)!,
    schedule: (flags.schedule ?? d.schedule) as RunConfigInput['schedule'],
    milestones: flags.milestones === undefined ? d.milestones : numberList(flags.milestones),
    augment: !flags['no-augment'],
    distill: flags.distill ?? d.distill,
    distillAlpha: num(flags['distill-alpha'], d.distillAlpha)!,
    distillTemperature: num(flags['distill-temperature'], d.distillTemperature)!,
    gradientEquilibrium: flags['gradient-equilibrium'] ?? d.gradientEquilibrium,
    validationSplit: num(flags.validation, d.validationSplit)!,
    head: (flags.head ?? d.head) as RunConfigInput['head'],
    freezeEpochs: num(flags['freeze-epochs'], d.freezeEpochs)!,
    freezeBackbone: flags['freeze-backbone'] ?? d.freezeBackbone,
    featureCache: !flags['no-feature-cache'],
    ...(flags['backbone-lr-scale'] !== undefined ? { backboneLrScale: num(flags['backbone-lr-scale'])! } : {}),
    ...(flags.normalize !== undefined ? { normalize: flags.normalize as RunConfigInput['normalize'] } : {}),
    ...(flags['image-size'] !== undefined ? { imageSize: num(flags['image-size'])! } : {}),
    ...(flags['limit-train'] !== undefined ? { limitTrain: num(flags['limit-train'])! } : {}),
    ...(flags['limit-test'] !== undefined ? { limitTest: num(flags['limit-test'])! } : {}),
  };
}

export function exitTable(summary: RunSummary): string {
  const top5 = summary.exits.some((e) => e.top5 !== undefined);
  const header = [
    'exit',
    'layer',
    'params',
    'MACs',
    'top-1',
    ...(top5 ? ['top-5'] : []),
    'latency b1',
    'p90 b1',
    'latency b32',
  ];
  const rows = summary.exits.map((e) => [
    exitLabel(e),
    String(e.layer),
    formatCount(e.params),
    formatCount(e.macs),
    formatPercent(e.top1, 2),
    ...(top5 ? [e.top5 === undefined ? '' : formatPercent(e.top5, 2)] : []),
    formatMs(e.latencyMs.batch1.median),
    formatMs(e.latencyMs.batch1.p90),
    formatMs(e.latencyMs.batch32.median),
  ]);
  const runtime = summary.exits.find((e) => e.latencyMs.runtime)?.latencyMs.runtime;
  return renderTable(header, rows) + (runtime ? `\nlatency: ${runtime}` : '');
}

/** The --json result: one object, final output last. */
export function jsonResult(summary: RunSummary): object {
  return {
    run: summary.run,
    backend: summary.backend.name,
    device: summary.backend.device,
    method: summary.config.method,
    network: summary.network,
    imagesPerSecond: summary.imagesPerSecond,
    exits: summary.exits.map((e) => ({
      block: e.block,
      layer: e.layer,
      final: e.final,
      params: e.params,
      macs: e.macs,
      top1: e.top1,
      ...(e.top5 !== undefined ? { top5: e.top5 } : {}),
      latencyMs: e.latencyMs.batch1.median,
      latency: e.latencyMs,
    })),
  };
}

/** The exit tax line for a finished run, when a plain run of the same network and data is in `runsRoot`. */
export async function exitTaxLine(summary: RunSummary, runsRoot: string): Promise<string | undefined> {
  const others = (await listRuns(runsRoot)).flatMap((l) => (l.summary && l.dir !== summary.run ? [l.summary] : []));
  const tax = exitTax(summary, others);
  if (!tax) return undefined;
  return `exit tax: final top-1 ${formatPercent(summary.exits.at(-1)!.top1, 2)} vs ${formatPercent(tax.plainTop1, 2)} for plain BP (${tax.plainRuns} run${tax.plainRuns === 1 ? '' : 's'}): ${formatPoints(tax.difference)} points`;
}

/**
 * Trains one run with progress on stderr; Ctrl-C stops after the current step and checkpoints.
 * `started`, when given, hears the run folder before training begins (a study records it).
 * Returns the summary, or undefined when stopped (the run folder in `stopped`).
 */
export async function trainOne(
  request: RunRequest,
  backend: Awaited<ReturnType<typeof initBackend>>,
  progress: ProgressReporter,
  started?: (run: string) => Promise<void>,
): Promise<{ summary?: RunSummary; run: string }> {
  const trainer = await openRun(request, {
    backend: summarizeBackend(backend),
    onEvent: (event) => {
      if (event.type === 'batch') progress.batch(event);
      else if (event.type === 'epoch') progress.epoch(event);
      else if (event.type === 'evaluating') progress.line(`evaluating ${event.what}...`);
      else if (event.type === 'started') {
        const s = event.start;
        const from = s.resumedFrom ? ` (resuming after step ${s.resumedFrom.step})` : '';
        const held = s.dataset.validation ? ` / ${s.dataset.validation} validation` : '';
        progress.line(
          `${s.network} on ${s.dataset.name} (${s.dataset.train} train${held} / ${s.dataset.test} test), ${s.config.method} BP${from}`,
        );
        if (s.dataset.sizeNote) progress.line(`images: ${s.dataset.sizeNote}`);
        if (s.featureCache) progress.line(s.featureCache);
        progress.line(`run folder: ${s.run}`);
      }
    },
  });
  try {
    await started?.(trainer.start.run);
  } catch (error) {
    trainer.dispose();
    throw error;
  }
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts > 1) process.exit(130);
    progress.line('stopping after this step and saving a checkpoint (Ctrl-C again to quit at once)...');
    trainer.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const summary = await trainer.run();
    return { run: trainer.start.run, ...(summary ? { summary } : {}) };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    trainer.dispose();
  }
}

export async function train(argv: string[]): Promise<number> {
  const { values: flags } = parseArgs({ args: argv, options: TRAIN_OPTIONS, strict: true, allowPositionals: false });
  const runsRoot = flags.out ?? 'runs';
  const request: RunRequest = flags.resume
    ? { kind: 'resume', dir: flags.resume }
    : { kind: 'new', config: configFromFlags(flags), runsRoot };
  const progress = new ProgressReporter();
  const backend = await initBackend(flags.backend);
  progress.line(`backend: ${backend.label} on ${backend.device}`);
  const { summary, run } = await trainOne(request, backend, progress);
  if (!summary) {
    progress.line(`stopped; continue with: mw-studio train --resume ${run}`);
    return 130;
  }
  const tax = await exitTaxLine(summary, flags.resume ? dirname(summary.run) : runsRoot);
  process.stdout.write(`\n${exitTable(summary)}\n${tax ? `${tax}\n` : ''}\nrun: ${summary.run}\n`);
  if (flags.json) process.stdout.write(`${JSON.stringify(jsonResult(summary))}\n`);
  return 0;
}
