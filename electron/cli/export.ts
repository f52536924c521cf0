/** `mw-studio export`: one exit of a trained run as a tfjs or ONNX model, with its model card. */
import { parseArgs } from 'node:util';
import { EXPORT_FORMATS, type ExportFormat } from '../../shared/api.js';
import { describeExitRefs, exitRefOf, findExit } from '../../shared/exitRef.js';
import { exitLabel, formatBytes, formatMs, formatPercent } from '../../shared/format.js';
import type { DeploymentReport } from '../../shared/deployment.js';
import type { ExitInfo } from '../../shared/metrics.js';
import { exportExit, initBackend, FileError, RunFolder } from '../engine/index.js';
import { BACKEND_CHOICES, UsageError } from './usage.js';

export const EXPORT_USAGE = `mw-studio export --run DIR --exit BLOCK|final --format FORMAT [options]
  --run DIR                   a run folder (trained, or at least checkpointed)
  --exit BLOCK|final          the exit after block BLOCK, or the final output
  --format FORMAT             tfjs: TensorFlow.js layers model; tfjs-float16: the same with float16 weights;
                              onnx: ONNX (opset 13); onnx-int8: ONNX with int8 weights and activations
                              (static post-training quantization, QDQ form); multi / multi-onnx-int8: a
                              tfjs / int8 ONNX model with every exit up to --exit as outputs, plus
                              early-exit metadata. Every export is re-scored on the run's held-out images
                              and carries a demo page (index.html) and a README
  --out PATH                  folder to create (default DIR/exports/<exit>-<format>)
  --threshold P               multi-exit formats: max-softmax probability at which an exit answers (default 0.9)
  --backend ${BACKEND_CHOICES}   backend that checks the tfjs export`;

const OPTIONS = {
  run: { type: 'string' },
  exit: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
  threshold: { type: 'string' },
  backend: { type: 'string' },
} as const;

function isExportFormat(value: string): value is ExportFormat {
  return (EXPORT_FORMATS as readonly string[]).includes(value);
}

/** The run's exit named "final" or by its block number, as run.json lists it. */
async function chosenExit(run: string, exit: string): Promise<{ point: ExitInfo; network: string }> {
  const start = await (await RunFolder.open(run)).start();
  if (!start) throw new FileError(`${run}: the run never started (no run.json)`);
  const point = findExit(start.exits, exit === 'final' ? 'final' : Number(exit));
  if (!point) throw new UsageError(`--exit ${exit}: this run has exits after blocks ${describeExitRefs(start.exits)}`);
  return { point, network: start.network };
}

export async function exportCommand(argv: string[]): Promise<number> {
  const { values: flags } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
  if (!flags.run || !flags.exit || !flags.format) throw new UsageError('--run, --exit and --format are required');
  if (!isExportFormat(flags.format))
    throw new UsageError(`--format must be one of ${EXPORT_FORMATS.join(', ')}, not "${flags.format}"`);
  const threshold = flags.threshold === undefined ? undefined : Number(flags.threshold);
  const { point, network } = await chosenExit(flags.run, flags.exit);
  await initBackend(flags.backend);
  const result = await exportExit({
    run: flags.run,
    exit: exitRefOf(point),
    format: flags.format,
    ...(flags.out !== undefined ? { destination: flags.out } : {}),
    ...(threshold !== undefined ? { threshold } : {}),
  });
  process.stdout.write(`exported ${exitLabel(point)} of ${network} as ${flags.format} to ${result.directory}:\n`);
  for (const file of result.files) process.stdout.write(`  ${file}\n`);
  process.stdout.write(deploymentLines(result.deployment).join('\n') + '\n');
  for (const warning of result.deployment.warnings) process.stderr.write(`warning: ${warning}\n`);
  return 0;
}

function deploymentLines({ accuracy, sizes, onnxruntimeBatch1: latency }: DeploymentReport): string[] {
  const scores = (['float32', 'float16', 'int8'] as const).flatMap((p) =>
    accuracy[p] === undefined ? [] : [`${p} ${formatPercent(accuracy[p], 2)}`],
  );
  const engine = accuracy.engine === undefined ? '' : ` (the run measured ${formatPercent(accuracy.engine, 2)})`;
  const ms = (l: { median: number }) => formatMs(l.median);
  return [
    `top-1 of the exported file on the run's ${accuracy.images} ${accuracy.split} images: ${scores.join(', ')}${engine}`,
    `size: ONNX float32 ${formatBytes(sizes.onnxFloat32)}, ONNX int8 ${formatBytes(sizes.onnxInt8)}, tfjs ${formatBytes(sizes.tfjsFloat32)}, tfjs float16 ${formatBytes(sizes.tfjsFloat16)}`,
    `onnxruntime batch-1 latency (median): float32 ${ms(latency.float32)}, int8 ${ms(latency.int8)} on ${latency.device}`,
  ];
}
