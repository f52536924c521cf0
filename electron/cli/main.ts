/** The `mw-studio` command: train, info (and the commands later issues add). */
import { ConfigError } from '../../shared/spec.js';
import { DatasetError } from '../engine/data/dataset.js';
import { RunFileError } from '../engine/runs/files.js';
import { describeBackend, initBackend } from '../engine/backend/index.js';
import { TRAIN_USAGE, train } from './train.js';
import { UsageError } from './usage.js';

const USAGE = `Mw Studio: train multi-exit networks with multi-way backpropagation and pick a depth.

usage: mw-studio <command> [options]

commands:
  train    train an Mw-network and report every exit (mw-studio train --help)
  info     show the compute backend in use and why

${TRAIN_USAGE}`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  train,
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
    const known = [ConfigError, DatasetError, RunFileError, UsageError].some((kind) => error instanceof kind);
    const usage = error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`\nmw-studio ${command}: ${known || usage ? (error as Error).message : (error as Error).stack}\n`);
    if (usage) process.stderr.write(`run "mw-studio ${command} --help" for the options\n`);
    return usage || error instanceof ConfigError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
