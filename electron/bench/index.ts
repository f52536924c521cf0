/**
 * `npm run bench`: training throughput of plain, joint and multi-way BP (MwResNet, or MwMobileNet
 * with --arch mobilenet), per-exit inference latency and peak memory on the active backend, and,
 * where /usr/bin/python3 has torch, the PyTorch reference (torch_throughput.py beside this file,
 * or MW_TORCH_REFERENCE; on CUDA when torch sees a GPU) on the same settings in the same run: the
 * same MwResNet or MwMobileNet, or for --backbone the file's own graph run by torch (python3-onnx
 * reads it) with the same exits. Prints the ratios and writes them as JSON. A benchmark, not a
 * test: figures from one run on one machine are compared only with each other. Images are
 * random: throughput does not depend on their content, and any --shape (the paper's CIFAR
 * network: --shape 32x32x3 --depth 56) needs no dataset.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { exitLabel, formatMs } from '../../shared/format.js';
import type { Latency } from '../../shared/metrics.js';
import { DEFAULT_ARCH, DEFAULT_RUN_CONFIG, parseRunConfig, resolveExits, type Method } from '../../shared/spec.js';
import {
  buildNetwork,
  createTrainingMethodOn,
  exitLatency,
  initBackend,
  inspectBackbone,
  measureLatency,
  onnxLatency,
  openSubModelSession,
} from '../engine/index.js';
import { renderTable } from '../cli/table.js';
import { configFromFlags, TRAIN_OPTIONS } from '../cli/train.js';
import { BACKEND_CHOICES, UsageError } from '../cli/usage.js';

const BENCH_METHODS: Method[] = ['plain', 'joint', 'multiway'];
const TORCH_MODES: Record<string, string> = { plain: 'final', joint: 'joint', multiway: 'multiway' };

export const BENCH_USAGE = `mw-studio bench [--backend ${BACKEND_CHOICES}] [--arch resnet|mobilenet] [--depth ${DEFAULT_ARCH.depth} | --backbone FILE.onnx] [--width 1]
                [--shape 28x28x1] [--exits ${DEFAULT_ARCH.exits!.join(',')}] [--batch ${DEFAULT_RUN_CONFIG.batchSize}] [--steps 6]
                [--baseline wasm|wasm-ort|none] [--out bench.json] [--no-torch]
  training images/s per method (also on --baseline: wasm-ort by default on ort and webgpu, wasm on wasm-ort), per-exit
  latency as the engine measures it next to the backend's tfjs kernels and onnxruntime on the same exported
  sub-model, and peak memory, against PyTorch (CUDA when torch sees a GPU) when available`;

const CLASSES = 10;

interface TorchResult {
  train_img_per_s: number;
  /** The CUDA GPU's name, or 'cpu'. */
  device: string;
  /** The torch process's peak resident memory. */
  peak_rss_bytes: number;
}

function parseShape(text: string): [number, number, number] {
  const dims = text.split('x').map(Number);
  if (dims.length !== 3 || !dims.every((d) => Number.isInteger(d) && d > 0 && d <= 512)) {
    throw new UsageError(`--shape must be HxWxC with whole numbers up to 512, e.g. 32x32x3 (got '${text}')`);
  }
  return dims as [number, number, number];
}

/** What torch_throughput.py builds: a built-in network, or an imported backbone's own graph cut at the exits' nodes. */
type TorchNetwork =
  | { family: 'resnet' | 'mobilenet'; depth: number; width: number; exits: number[]; shape: [number, number, number] }
  | { family: 'imported'; backbone: string; exitNodes: string[] };

function torchNetworkArgs(network: TorchNetwork): string[] {
  if (network.family === 'imported')
    return ['--backbone', network.backbone, '--exit-nodes', network.exitNodes.join(',')];
  const { family, width, depth, exits, shape } = network;
  return [
    '--arch',
    family,
    '--width',
    String(width),
    '--depth',
    String(depth),
    '--exits',
    exits.join(','),
    '--shape',
    shape.join('x'),
  ];
}

function torchReference(
  mode: string,
  network: TorchNetwork,
  batch: number,
  steps: number,
): TorchResult | { skipped: string } {
  const script = process.env.MW_TORCH_REFERENCE ?? fileURLToPath(new URL('torch_throughput.py', import.meta.url));
  const python = process.env.MW_PYTHON ?? '/usr/bin/python3';
  if (!existsSync(python)) return { skipped: `${python} not found (set MW_PYTHON)` };
  if (!existsSync(script)) return { skipped: `${script} not found (set MW_TORCH_REFERENCE)` };
  const args = [...torchNetworkArgs(network), '--mode', mode, '--batch', String(batch), '--steps', String(steps)];
  const run = spawnSync(python, [script, ...args], { encoding: 'utf8' });
  const line = run.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as TorchResult;
  } catch {
    return { skipped: `torch reference failed: ${(run.stderr || run.stdout).trim().split('\n').pop()}` };
  }
}

export async function bench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string' },
      shape: { type: 'string' },
      arch: TRAIN_OPTIONS.arch,
      width: TRAIN_OPTIONS.width,
      depth: TRAIN_OPTIONS.depth,
      backbone: TRAIN_OPTIONS.backbone,
      exits: TRAIN_OPTIONS.exits,
      batch: TRAIN_OPTIONS.batch,
      steps: { type: 'string' },
      out: { type: 'string' },
      baseline: { type: 'string' },
      'no-torch': { type: 'boolean' },
    },
    strict: true,
  });
  // The network and batch go through train's parser, so a bad setting gets train's one-line error.
  const family = values.arch ?? 'resnet';
  // MwResNet-20's exits by default, as the issue's measurements; MobileNet's and a backbone's own default placement.
  const defaultExits = values.backbone === undefined && family === 'resnet' ? DEFAULT_ARCH.exits!.join(',') : undefined;
  const config = parseRunConfig(
    configFromFlags({
      arch: values.backbone === undefined ? family : undefined,
      depth: values.depth,
      width: values.width,
      backbone: values.backbone,
      exits: values.exits ?? defaultExits,
      batch: values.batch,
    }),
  );
  if (config.arch.family === 'imported' && values.shape !== undefined)
    throw new UsageError('--shape comes from the backbone with --backbone; leave it out');
  const batch = config.batchSize;
  const steps = Number(values.steps ?? 6);
  if (!Number.isInteger(steps) || steps < 1)
    throw new UsageError(`--steps must be a whole number of at least 1, not "${values.steps}"`);
  const backend = await initBackend(values.backend);
  // An imported backbone brings its input size and its candidates (reading it needs the backend).
  const inspected = config.arch.family === 'imported' ? inspectBackbone(config.arch.backbone) : undefined;
  const depth = config.arch.family === 'resnet' ? config.arch.depth : undefined;
  const exits =
    config.arch.family === 'resnet' ? resolveExits(config.arch) : (config.arch.exits ?? inspected!.defaultExits);
  const [height, width, channels] = inspected?.inputShape ?? parseShape(values.shape ?? '28x28x1');
  const arch = { ...config.arch, exits };
  const torchNetwork: TorchNetwork =
    config.arch.family === 'imported'
      ? {
          family: 'imported',
          backbone: config.arch.backbone,
          // The heads' nodes: the auxiliary exits' candidates, then the final features.
          exitNodes: [...exits, inspected!.candidates.length].map((id) => inspected!.candidates[id - 1]!.node),
        }
      : {
          family: config.arch.family,
          depth: depth ?? 0,
          width: config.arch.width,
          exits,
          shape: [height, width, channels],
        };
  const name =
    config.arch.family === 'imported'
      ? `the backbone ${values.backbone}`
      : config.arch.family === 'resnet'
        ? `MwResNet-${depth}`
        : `MwMobileNet-${config.arch.width}`;
  process.stderr.write(
    `bench: ${name} exits ${exits.join(',')}, ${height}x${width}x${channels}, batch ${batch}, ${steps} timed steps, backend ${backend.label} on ${backend.device}\n`,
  );

  let peakBytes = 0;
  let peakGpuBytes = 0;
  const trainingThroughput = async (method: Method, backendName: string): Promise<number> => {
    const net = buildNetwork(arch, [height, width, channels], CLASSES, 0);
    const trainer = createTrainingMethodOn(backendName, method, net, {
      lr: 0.1,
      momentum: 0.9,
      weightDecay: 1e-4,
      gamma: 2,
    });
    let timed = 0;
    for (let s = 0; s < steps + 2; s++) {
      const x = tf.randomNormal([batch, height, width, channels]) as tf.Tensor4D;
      const labels = tf.randomUniformInt([batch], 0, CLASSES) as tf.Tensor1D;
      // Both exist before the clock starts (a GPU backend may still be writing them).
      await labels.data();
      const start = performance.now();
      const result = trainer.step(x, labels, 1);
      await result.losses.data();
      // Two warm-up steps: kernel setup and first-step allocations are not throughput.
      if (s >= 2) timed += performance.now() - start;
      peakBytes = Math.max(peakBytes, process.memoryUsage().rss);
      peakGpuBytes = Math.max(
        peakGpuBytes,
        (tf.memory() as { numBytesInGPUAllocated?: number }).numBytesInGPUAllocated ?? 0,
      );
      for (const t of [x, labels, result.losses, result.correct]) t.dispose();
    }
    trainer.release?.();
    for (const opt of trainer.optimizers) opt.disposeState();
    net.dispose();
    return (steps * batch) / (timed / 1000);
  };

  const training: Record<
    string,
    {
      imagesPerSecond: number;
      baselineImagesPerSecond?: number;
      torchImagesPerSecond?: number;
      torchDevice?: string;
      torchPeakMemoryBytes?: number;
      ratio?: number;
      torchSkipped?: string;
    }
  > = {};
  for (const method of BENCH_METHODS) {
    const imagesPerSecond = await trainingThroughput(method, backend.name);
    const entry: (typeof training)[string] = { imagesPerSecond };
    training[method] = entry;
    // PyTorch right after the same method, so both see the (shared, drifting) machine alike.
    if (!values['no-torch']) {
      const torch = torchReference(TORCH_MODES[method]!, torchNetwork, batch, steps);
      if ('skipped' in torch) entry.torchSkipped = torch.skipped;
      else {
        entry.torchImagesPerSecond = torch.train_img_per_s;
        entry.torchDevice = torch.device;
        entry.torchPeakMemoryBytes = torch.peak_rss_bytes;
        entry.ratio = imagesPerSecond / torch.train_img_per_s;
      }
    }
    const torchText =
      entry.torchImagesPerSecond === undefined
        ? ''
        : `, torch ${entry.torchImagesPerSecond.toFixed(1)} img/s on ${entry.torchDevice}`;
    process.stderr.write(`  ${method}: ${imagesPerSecond.toFixed(1)} img/s${torchText}\n`);
  }
  // The backend's own peak: the baseline and the latency runs below come after it.
  const backendPeakBytes = peakBytes;
  // The path this one improves on, measured in the same run: wasm-ort against plain wasm, ort and webgpu against wasm-ort.
  const defaultBaseline =
    backend.name === 'wasm-ort' ? 'wasm' : backend.name === 'webgpu' || backend.name === 'ort' ? 'wasm-ort' : undefined;
  const baseline = values.baseline === 'none' ? undefined : (values.baseline ?? defaultBaseline);
  if (baseline !== undefined) {
    const baselineInfo = await initBackend(baseline);
    process.stderr.write(`baseline: ${baselineInfo.label}\n`);
    for (const method of BENCH_METHODS) {
      training[method]!.baselineImagesPerSecond = await trainingThroughput(method, baselineInfo.name);
      process.stderr.write(`  ${method}: ${training[method]!.baselineImagesPerSecond!.toFixed(1)} img/s\n`);
    }
    await initBackend(backend.name);
  }

  // Per-exit latency as the engine measures it (on wasm-ort: the whole sub-model in onnxruntime),
  // the backend's own tfjs kernels at batch 1, and onnxruntime running the exported sub-model.
  const net = buildNetwork(arch, [height, width, channels], CLASSES, 0);
  const latency = [];
  for (const exit of net.costs()) {
    const ours = await exitLatency(net, exit.index);
    const image = tf.randomNormal([1, height, width, channels]);
    const tfjsKernels = await measureLatency(() =>
      net.predict(image, { upToExit: exit.index, onlyLast: true }),
    ).finally(() => image.dispose());
    // The ONNX writer does not write an imported backbone's blocks (yet): no onnxruntime comparison there.
    let onnx: Latency | undefined;
    if (depth !== undefined) {
      const session = await openSubModelSession(net, [exit.index]);
      onnx = await onnxLatency(session, [height, width, channels]).finally(() => session.release());
    }
    latency.push({
      exit: exitLabel(exit),
      block: exit.block,
      ...ours,
      tfjsKernelsBatch1: tfjsKernels,
      ...(onnx ? { onnxBatch1: onnx, ratioToOnnx: ours.batch1.median / onnx.median } : {}),
    });
  }
  net.dispose();

  const report = {
    backend: backend.name,
    label: backend.label,
    baseline,
    device: backend.device,
    ...(depth === undefined ? { backbone: values.backbone } : { depth }),
    exits,
    shape: [height, width, channels],
    batch,
    steps,
    training,
    latency,
    peakMemoryBytes: peakBytes,
    backendPeakMemoryBytes: backendPeakBytes,
    torchPeakMemoryBytes: Math.max(0, ...BENCH_METHODS.map((m) => training[m]!.torchPeakMemoryBytes ?? 0)),
    ...(peakGpuBytes > 0 ? { peakGpuBytes } : {}),
    date: new Date().toISOString(),
  };
  const rows = BENCH_METHODS.map((m) => {
    const t = training[m]!;
    const against =
      t.baselineImagesPerSecond === undefined
        ? []
        : [t.baselineImagesPerSecond.toFixed(1), `${(t.imagesPerSecond / t.baselineImagesPerSecond).toFixed(2)}x`];
    return [
      m,
      t.imagesPerSecond.toFixed(1),
      ...against,
      t.torchImagesPerSecond?.toFixed(1) ?? (t.torchSkipped ? 'n/a' : '-'),
      t.ratio ? `${t.ratio.toFixed(3)}x` : '-',
    ];
  });
  const baselineHeaders = baseline !== undefined ? [`${baseline} img/s`, 'speed-up'] : [];
  process.stdout.write(
    `${renderTable(['method', `${backend.name} img/s`, ...baselineHeaders, 'torch img/s', 'ratio to torch'], rows)}\n\n`,
  );
  process.stdout.write(
    `${renderTable(
      ['exit', 'latency b1', 'p90 b1', 'latency b32', 'tfjs kernels b1', 'onnxruntime b1 (exported)', 'ratio'],
      latency.map((l) => [
        l.exit,
        formatMs(l.batch1.median),
        formatMs(l.batch1.p90),
        formatMs(l.batch32.median),
        formatMs(l.tfjsKernelsBatch1.median),
        l.onnxBatch1 ? formatMs(l.onnxBatch1.median) : '-',
        l.ratioToOnnx ? `${l.ratioToOnnx.toFixed(2)}x` : '-',
      ]),
    )}\n`,
  );
  process.stdout.write(
    `peak resident memory ${(backendPeakBytes / 2 ** 20).toFixed(0)} MiB while training on ${backend.name} (${(peakBytes / 2 ** 20).toFixed(0)} MiB over the whole bench)${peakGpuBytes > 0 ? `, GPU buffers ${(peakGpuBytes / 2 ** 20).toFixed(0)} MiB` : ''}${report.torchPeakMemoryBytes > 0 ? `; torch ${(report.torchPeakMemoryBytes / 2 ** 20).toFixed(0)} MiB` : ''}\n`,
  );
  const out = values.out ?? 'bench.json';
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`written: ${out}\n`);
  return 0;
}
