/** The `mw-studio` command: train, info (and the commands later issues add). */
import { ConfigError } from '../../shared/spec.js';
import { DatasetError, describeBackend, ExportError, initBackend, FileError } from '../engine/index.js';
import { BENCH_USAGE, bench } from '../bench/index.js';
import { SERVE_USAGE, serve, start } from './serve.js';
import { EXPORT_USAGE, exportCommand } from './export.js';
import { STUDY_USAGE, compare, study } from './study.js';
import { TRAIN_USAGE, train } from './train.js';
import { UsageError } from './usage.js';

const USAGE = `Mw Studio: train multi-exit networks with multi-way backpropagation and pick a depth.

usage: mw-studio <command> [options]

commands:
  train    train an Mw-network and report every exit (mw-studio train --help)
  info     show the compute backend in use and why
  export   one exit of a trained run as a TensorFlow.js or ONNX model (mw-studio export --help)
  serve    the studio in a browser (loopback only, token-protected)
  start    the desktop app; serve mode where Electron is not installed
  bench    training and inference speed, against PyTorch where available
  study    one network under several methods and seeds: per-exit mean ± spread, exit tax
  compare  per-exit top-1 of finished runs side by side

${TRAIN_USAGE}

${EXPORT_USAGE}

${SERVE_USAGE}

${BENCH_USAGE}

${STUDY_USAGE}`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  train,
  export: exportCommand,
  serve: (argv) => serve(argv),
  start,
  bench,
  study,
  compare,
  info: async () => {
    process.stdout.write(`${describeBackend(await initBackend())}\n`);
    return 0;
  },
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h' || rest.includes('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 2;
  }
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(`mw-studio: unknown command "${command}"\n\n${USAGE}\n`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (error) {
    const known = [ConfigError, DatasetError, FileError, ExportError, UsageError].some((kind) => error instanceof kind);
    const usage = error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`\nmw-studio ${command}: ${known || usage ? (error as Error).message : (error as Error).stack}\n`);
    if (usage) process.stderr.write(`run "mw-studio ${command} --help" for the options\n`);
    return usage || error instanceof ConfigError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
