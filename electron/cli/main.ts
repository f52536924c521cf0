/**
 * The `mw-studio` command: train, export, serve, start, bench, info. A mistake of the user's
 * (bad option, bad setting, missing file, unusable backend) is one line on stderr, never a stack;
 * a stack means a bug in the studio.
 */
import { ApiError } from '../../shared/api.js';
import { ConfigError } from '../../shared/spec.js';
import {
  BackboneFetchError,
  BackendError,
  DatasetError,
  describeBackend,
  ExportError,
  initBackend,
  FileError,
  ImportError,
  SlurmError,
} from '../engine/index.js';
import { BENCH_USAGE, bench } from '../bench/index.js';
import { BACKBONE_USAGE, backboneCommand } from './backbone.js';
import { SERVE_USAGE, serve, start } from './serve.js';
import { EVALUATE_USAGE, evaluateCommand } from './evaluate.js';
import { EXPORT_USAGE, exportCommand } from './export.js';
import { INSPECT_USAGE, inspectCommand } from './inspect.js';
import { PREDICT_USAGE, predictCommand } from './predict.js';
import { STUDY_USAGE, compare, study } from './study.js';
import { TRAIN_USAGE, train } from './train.js';
import { UsageError } from './usage.js';

const USAGE = `Mw Studio: train multi-exit networks with multi-way backpropagation and pick a depth.

usage: mw-studio <command> [options]

commands:
  train    train an Mw-network and report every exit (mw-studio train --help)
  info     show the compute backend in use and why
  evaluate per-class results, confusion and overthinking of every exit (mw-studio evaluate --help)
  inspect  an ONNX backbone's exit candidates (mw-studio inspect --backbone FILE)
  export   one exit of a trained run as a TensorFlow.js or ONNX model (mw-studio export --help)
  predict  an exported model's top classes for image files (mw-studio predict --help)
  serve    the studio in a browser (loopback only, token-protected)
  start    the desktop app; serve mode where Electron is not installed
  bench    training and inference speed, against PyTorch where available
  study    one network under several methods and seeds: per-exit mean ± spread, exit tax
  compare  per-exit top-1 of finished runs side by side
  backbone list or fetch ImageNet-pretrained ONNX backbones (mw-studio backbone --help)

${TRAIN_USAGE}

${EVALUATE_USAGE}

${INSPECT_USAGE}

${EXPORT_USAGE}

${PREDICT_USAGE}

${SERVE_USAGE}

${BENCH_USAGE}

${STUDY_USAGE}

${BACKBONE_USAGE}`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  train,
  evaluate: evaluateCommand,
  inspect: inspectCommand,
  export: exportCommand,
  predict: predictCommand,
  serve: (argv) => serve(argv),
  start,
  bench,
  study,
  compare,
  backbone: backboneCommand,
  info: async () => {
    process.stdout.write(`${describeBackend(await initBackend())}\n`);
    return 0;
  },
};

/** Errors that describe what the user asked for or has, each with a message that says what to do. */
const USER_ERRORS = [
  ConfigError,
  DatasetError,
  FileError,
  ExportError,
  BackendError,
  ImportError,
  BackboneFetchError,
  ApiError,
  SlurmError,
];

const oneLine = (message: string) => message.replace(/\s*\n\s*/g, ' ');

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
    const usage = error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS');
    const userError = usage || USER_ERRORS.some((kind) => error instanceof kind);
    const hint = usage ? ` (mw-studio ${command} --help lists the options)` : '';
    process.stderr.write(
      `\nmw-studio ${command}: ${userError ? oneLine((error as Error).message) : (error as Error).stack}${hint}\n`,
    );
    return usage || error instanceof ConfigError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
