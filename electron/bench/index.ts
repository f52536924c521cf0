/**
 * `npm run bench`: training throughput of plain, joint and multi-way BP, per-exit inference
 * latency and peak memory on the active backend, and, where /usr/bin/python3 has torch, the
 * PyTorch reference (../shared/bench/torch_reference.py or MW_TORCH_REFERENCE) on the same
 * settings in the same run. Prints the ratios and writes them as JSON. A benchmark, not a
 * test: figures from one run on one machine are compared only with each other.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { exitLabel, formatMs } from '../../shared/format.js';
import { DEFAULT_ARCH, DEFAULT_RUN_CONFIG, parseRunConfig, resolveExits, type Method } from '../../shared/spec.js';
import { buildNetwork, createTrainingMethod, exitLatency, initBackend, loadDataset, makeBatch, measureLatency, onnxLatency, openSubModelSession, Random } from '../engine/index.js';
import { renderTable } from '../cli/table.js';
import { configFromFlags, TRAIN_OPTIONS } from '../cli/train.js';
import { UsageError } from '../cli/usage.js';

const BENCH_METHODS: Method[] = ['plain', 'joint', 'multiway'];
const TORCH_MODES: Record<string, string> = { plain: 'final', joint: 'joint', multiway: 'multiway' };

export const BENCH_USAGE = `mw-studio bench [--depth ${DEFAULT_ARCH.depth}] [--exits ${DEFAULT_ARCH.exits!.join(',')}] [--batch ${DEFAULT_RUN_CONFIG.batchSize}] [--steps 6] [--baseline wasm|none] [--out bench.json] [--no-torch]
  training images/s per method (also on --baseline: wasm by default on wasm-ort), per-exit latency as the
  engine measures it next to the backend's tfjs kernels and onnxruntime on the same exported sub-model,
  and peak memory, against PyTorch when available`;

interface TorchResult {
  train_img_per_s: number;
}

function torchReference(mode: string, depth: number, exits: number[], batch: number, steps: number): TorchResult | { skipped: string } {
  const script = process.env.MW_TORCH_REFERENCE ?? resolve('..', 'shared', 'bench', 'torch_reference.py');
  if (!existsSync('/usr/bin/python3')) return { skipped: '/usr/bin/python3 not found' };
  if (!existsSync(script)) return { skipped: `${script} not found (set MW_TORCH_REFERENCE)` };
  const run = spawnSync('/usr/bin/python3', [script, '--depth', String(depth), '--exits', exits.join(','), '--mode', mode, '--batch', String(batch), '--bench-steps', String(steps + 2), '--train', String(batch * (steps + 2))], { encoding: 'utf8' });
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
    options: { depth: TRAIN_OPTIONS.depth, exits: TRAIN_OPTIONS.exits, batch: TRAIN_OPTIONS.batch, steps: { type: 'string' }, out: { type: 'string' }, baseline: { type: 'string' }, 'no-torch': { type: 'boolean' } },
    strict: true,
  });
  // The network and batch go through train's parser, so a bad setting gets train's one-line error.
  const config = parseRunConfig(configFromFlags({ depth: values.depth, exits: values.exits ?? DEFAULT_ARCH.exits!.join(','), batch: values.batch }));
  if (config.arch.family !== 'resnet') throw new UsageError('the bench measures MwResNet only');
  const { depth } = config.arch;
  const exits = resolveExits(config.arch);
  const batch = config.batchSize;
  const steps = Number(values.steps ?? 6);
  if (!Number.isInteger(steps) || steps < 1) throw new UsageError(`--steps must be a whole number of at least 1, not "${values.steps}"`);
  const backend = await initBackend();
  const dataset = await loadDataset('embedded', { limitTrain: batch * (steps + 2), limitTest: 256 });
  const { height, width, channels } = dataset.shape;
  const arch = { ...config.arch, exits };
  process.stderr.write(`bench: MwResNet-${depth} exits ${exits.join(',')}, batch ${batch}, ${steps} timed steps, backend ${backend.label}\n`);

  let peakBytes = 0;
  const trainingThroughput = async (method: Method): Promise<number> => {
    const net = buildNetwork(arch, [height, width, channels], dataset.classes.length, 0);
    const trainer = createTrainingMethod(method, net, { lr: 0.1, momentum: 0.9, weightDecay: 1e-4, gamma: 2 });
    const rng = new Random(1);
    let timed = 0;
    for (let s = 0; s < steps + 2; s++) {
      const indices = Array.from({ length: batch }, (_, i) => s * batch + i);
      const { x, labels } = makeBatch(dataset, dataset.train, indices, rng);
      const start = performance.now();
      const result = trainer.step(x, labels, 1);
      await result.losses.data();
      // Two warm-up steps: kernel setup and first-step allocations are not throughput.
      if (s >= 2) timed += performance.now() - start;
      peakBytes = Math.max(peakBytes, process.memoryUsage().rss);
      for (const t of [x, labels, result.losses, result.correct]) t.dispose();
    }
    for (const opt of trainer.optimizers) opt.disposeState();
    net.dispose();
    return (steps * batch) / (timed / 1000);
  };

  const training: Record<string, { imagesPerSecond: number; baselineImagesPerSecond?: number; torchImagesPerSecond?: number; ratio?: number; torchSkipped?: string }> = {};
  for (const method of BENCH_METHODS) {
    const imagesPerSecond = await trainingThroughput(method);
    const entry: (typeof training)[string] = { imagesPerSecond };
    training[method] = entry;
    // PyTorch right after the same method, so both see the (shared, drifting) machine alike.
    if (!values['no-torch']) {
      const torch = torchReference(TORCH_MODES[method]!, depth, exits, batch, steps);
      if ('skipped' in torch) entry.torchSkipped = torch.skipped;
      else {
        entry.torchImagesPerSecond = torch.train_img_per_s;
        entry.ratio = imagesPerSecond / torch.train_img_per_s;
      }
    }
    const torchText = entry.torchImagesPerSecond === undefined ? '' : `, torch ${entry.torchImagesPerSecond.toFixed(1)} img/s`;
    process.stderr.write(`  ${method}: ${imagesPerSecond.toFixed(1)} img/s${torchText}\n`);
  }
  // The path this one improves on, measured in the same run: wasm-ort against plain wasm.
  const baseline = values.baseline === 'none' ? undefined : (values.baseline ?? (backend.name === 'wasm-ort' ? 'wasm' : undefined));
  if (baseline !== undefined) {
    const baselineInfo = await initBackend(baseline);
    process.stderr.write(`baseline: ${baselineInfo.label}\n`);
    for (const method of BENCH_METHODS) {
      training[method]!.baselineImagesPerSecond = await trainingThroughput(method);
      process.stderr.write(`  ${method}: ${training[method]!.baselineImagesPerSecond!.toFixed(1)} img/s\n`);
    }
    await initBackend(backend.name);
  }

  // Per-exit latency as the engine measures it (on wasm-ort: the whole sub-model in onnxruntime),
  // the backend's own tfjs kernels at batch 1, and onnxruntime running the exported sub-model.
  const net = buildNetwork(arch, [height, width, channels], dataset.classes.length, 0);
  const latency = [];
  for (const exit of net.costs()) {
    const ours = await exitLatency(net, exit.index);
    const image = tf.randomNormal([1, height, width, channels]);
    const tfjsKernels = await measureLatency(() => net.predict(image, { upToExit: exit.index, onlyLast: true })).finally(() => image.dispose());
    const session = await openSubModelSession(net, [exit.index]);
    const onnx = await onnxLatency(session, [height, width, channels]).finally(() => session.release());
    latency.push({ exit: exitLabel(exit), block: exit.block, ...ours, tfjsKernelsBatch1: tfjsKernels, onnxBatch1: onnx, ratioToOnnx: ours.batch1.median / onnx.median });
  }
  net.dispose();

  const report = { backend: backend.name, label: backend.label, baseline, device: backend.device, depth, exits, batch, steps, training, latency, peakMemoryBytes: peakBytes, date: new Date().toISOString() };
  const rows = BENCH_METHODS.map((m) => {
    const t = training[m]!;
    const against = t.baselineImagesPerSecond === undefined ? [] : [t.baselineImagesPerSecond.toFixed(1), `${(t.imagesPerSecond / t.baselineImagesPerSecond).toFixed(2)}x`];
    return [m, t.imagesPerSecond.toFixed(1), ...against, t.torchImagesPerSecond?.toFixed(1) ?? (t.torchSkipped ? 'n/a' : '-'), t.ratio ? `${t.ratio.toFixed(3)}x` : '-'];
  });
  const baselineHeaders = baseline !== undefined ? [`${baseline} img/s`, 'speed-up'] : [];
  process.stdout.write(`${renderTable(['method', `${backend.name} img/s`, ...baselineHeaders, 'torch img/s', 'ratio to torch'], rows)}\n\n`);
  process.stdout.write(
    `${renderTable(
      ['exit', 'latency b1', 'p90 b1', 'latency b32', 'tfjs kernels b1', 'onnxruntime b1 (exported)', 'ratio'],
      latency.map((l) => [
        l.exit,
        formatMs(l.batch1.median),
        formatMs(l.batch1.p90),
        formatMs(l.batch32.median),
        formatMs(l.tfjsKernelsBatch1.median),
        formatMs(l.onnxBatch1.median),
        `${l.ratioToOnnx.toFixed(2)}x`,
      ]),
    )}\n`,
  );
  process.stdout.write(`peak resident memory ${(peakBytes / 2 ** 20).toFixed(0)} MiB\n`);
  const out = values.out ?? 'bench.json';
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`written: ${out}\n`);
  return 0;
}
