/** `mw-studio export`: one exit of a trained run as a tfjs or ONNX model, with its model card. */
import { parseArgs } from 'node:util';
import { EXPORT_FORMATS, type ExportFormat } from '../../shared/api.js';
import { describeExitRefs, exitRefOf, findExit } from '../../shared/exitRef.js';
import { exitLabel } from '../../shared/format.js';
import type { ExitInfo } from '../../shared/metrics.js';
import { exportExit, initBackend, FileError, RunFolder } from '../engine/index.js';
import { UsageError } from './usage.js';

export const EXPORT_USAGE = `mw-studio export --run DIR --exit BLOCK|final --format tfjs|onnx|multi [options]
  --run DIR                   a run folder (trained, or at least checkpointed)
  --exit BLOCK|final          the exit after block BLOCK, or the final output
  --format tfjs|onnx|multi    TensorFlow.js layers model, ONNX (opset 13), or a tfjs model
                              with every exit up to --exit as outputs plus early-exit metadata
  --out PATH                  folder to create (default DIR/exports/<exit>-<format>)
  --threshold P               multi: max-softmax probability at which an exit answers (default 0.9)
  --backend auto|tensorflow-gpu|tensorflow|wasm-ort|wasm|cpu   backend that checks the tfjs export`;

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
  if (!isExportFormat(flags.format)) throw new UsageError(`--format must be one of ${EXPORT_FORMATS.join(', ')}, not "${flags.format}"`);
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
  return 0;
}
