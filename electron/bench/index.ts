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
import { exitLabel, formatMs } from '../../shared/format.js';
import type { Method } from '../../shared/spec.js';
import { initBackend } from '../engine/backend/index.js';
import { makeBatch } from '../engine/data/batches.js';
import { loadDataset } from '../engine/data/index.js';
import { exitLatency } from '../engine/evaluate/index.js';
import { buildNetwork } from '../engine/models/index.js';
import { Random } from '../engine/random.js';
import { createTrainingMethod } from '../engine/train/methods.js';
import { renderTable } from '../cli/table.js';

const BENCH_METHODS: Method[] = ['plain', 'joint', 'multiway'];
const TORCH_MODES: Record<string, string> = { plain: 'final', joint: 'joint', multiway: 'multiway' };

export const BENCH_USAGE = `mw-studio bench [--depth 20] [--exits 3,6] [--batch 128] [--steps 6] [--out bench.json] [--no-torch]
  training images/s per method, per-exit latency and peak memory, against PyTorch when available`;

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
    options: { depth: { type: 'string' }, exits: { type: 'string' }, batch: { type: 'string' }, steps: { type: 'string' }, out: { type: 'string' }, 'no-torch': { type: 'boolean' } },
    strict: true,
  });
  const depth = Number(values.depth ?? 20);
  const exits = (values.exits ?? '3,6').split(',').map(Number);
  const batch = Number(values.batch ?? 128);
  const steps = Number(values.steps ?? 6);
  const backend = await initBackend();
  const dataset = await loadDataset('embedded', { limitTrain: batch * (steps + 2), limitTest: 256 });
  const { height, width, channels } = dataset.shape;
  const arch = { family: 'resnet' as const, depth, width: 1, exits };
  process.stderr.write(`bench: MwResNet-${depth} exits ${exits.join(',')}, batch ${batch}, ${steps} timed steps, backend ${backend.label}\n`);

  const training: Record<string, { imagesPerSecond: number; torchImagesPerSecond?: number; ratio?: number; torchSkipped?: string }> = {};
  let peakBytes = 0;
  for (const method of BENCH_METHODS) {
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
    const imagesPerSecond = (steps * batch) / (timed / 1000);
    training[method] = { imagesPerSecond };
    for (const opt of trainer.optimizers) opt.disposeState();
    net.dispose();
    process.stderr.write(`  ${method}: ${imagesPerSecond.toFixed(1)} img/s\n`);
  }
  if (!values['no-torch']) {
    for (const method of BENCH_METHODS) {
      const torch = torchReference(TORCH_MODES[method]!, depth, exits, batch, steps);
      const entry = training[method]!;
      if ('skipped' in torch) entry.torchSkipped = torch.skipped;
      else {
        entry.torchImagesPerSecond = torch.train_img_per_s;
        entry.ratio = entry.imagesPerSecond / torch.train_img_per_s;
      }
    }
  }

  const net = buildNetwork(arch, [height, width, channels], dataset.classes.length, 0);
  const latency = [];
  for (const exit of net.costs()) latency.push({ exit: exitLabel(exit), block: exit.block, ...(await exitLatency(net, exit.index)) });
  net.dispose();

  const report = { backend: backend.name, device: backend.device, depth, exits, batch, steps, training, latency, peakMemoryBytes: peakBytes, date: new Date().toISOString() };
  const rows = BENCH_METHODS.map((m) => {
    const t = training[m]!;
    return [m, t.imagesPerSecond.toFixed(1), t.torchImagesPerSecond?.toFixed(1) ?? (t.torchSkipped ? 'n/a' : '-'), t.ratio ? `${t.ratio.toFixed(3)}x` : '-'];
  });
  process.stdout.write(`${renderTable(['method', 'img/s', 'torch img/s', 'ratio'], rows)}\n\n`);
  process.stdout.write(`${renderTable(['exit', 'latency b1', 'p90 b1', 'latency b32'], latency.map((l) => [l.exit, formatMs(l.batch1.median), formatMs(l.batch1.p90), formatMs(l.batch32.median)]))}\n`);
  process.stdout.write(`peak resident memory ${(peakBytes / 2 ** 20).toFixed(0)} MiB\n`);
  const out = values.out ?? 'bench.json';
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`written: ${out}\n`);
  return 0;
}
