/**
 * Slurm's client commands as the studio uses them: submit a study's runs as one job array,
 * read the elements' states, cancel them. Every command is run with an argument list
 * (execFile), never through a shell, so no setting of the user's is ever parsed as shell text.
 * Job states come from squeue (which also lists jobs that ended a few minutes ago), then from
 * sacct for older ones where accounting is on; a job neither knows is "gone", and the run
 * folder says how it ended.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { delimiter, join, resolve } from 'node:path';
import type { SlurmExecutor } from '../../shared/study.js';
import { writeFileAtomic } from '../base/files.js';
import { SlurmError } from './errors.js';
import { resourcesDir } from './resources.js';

/** Slurm's answer takes seconds when the controller is slow; a minute means something is wrong. */
const COMMAND_TIMEOUT_MS = 60_000;

/** The part of a command's complaint worth a line: its last non-empty line. */
const lastLine = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .at(-1) ?? '';

const UNREACHABLE =
  /unable to contact slurm controller|connection refused|socket timed out|zero bytes were transmitted/i;

/** Runs one Slurm command; its failures become one-line SlurmErrors that say what to do. */
export function slurmCommand(command: string, args: readonly string[]): Promise<string> {
  return new Promise((done, fail) => {
    execFile(
      command,
      args,
      { timeout: COMMAND_TIMEOUT_MS, maxBuffer: 16 << 20, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (!error) return done(stdout);
        const said =
          stderr
            .split('\n')
            .find((l) => /error/i.test(l))
            ?.trim() ||
          lastLine(stderr) ||
          error.message;
        if ((error as NodeJS.ErrnoException).code === 'ENOENT')
          return fail(
            new SlurmError(
              `${command} is not on the PATH of the machine the engine runs on; the Slurm executor needs Slurm's client commands (sbatch, squeue, scancel) there`,
            ),
          );
        if (UNREACHABLE.test(stderr) || error.killed)
          return fail(
            new SlurmError(
              `the Slurm controller is unreachable (${command}: ${said}); check that slurmctld runs (sinfo answers) and that SLURM_CONF names this cluster`,
            ),
          );
        fail(new SlurmError(`${command} refused: ${said}`));
      },
    );
  });
}

/** Whether `sbatch` is an executable on this process's PATH (the Study view offers Slurm then). */
export async function sbatchOnPath(): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    try {
      await access(join(dir, 'sbatch'), constants.X_OK);
      return true;
    } catch {
      // not in this folder
    }
  }
  return false;
}

/** Single-quoted for sh: the job script is the one place a path meets a shell. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/** The command that runs the installed studio's CLI: this Node and the package's bin/mw-studio.js. */
function studioCommand(): string[] {
  if (process.versions.electron)
    throw new SlurmError(
      'the desktop app cannot submit to Slurm itself; run `mw-studio serve` on the cluster login node (npm install) and connect to it',
    );
  return [process.execPath, resolve(resourcesDir(), '..', 'bin', 'mw-studio.js')];
}

export interface ArrayElement {
  /** The array task id: the run's index in the study record. */
  index: number;
  /** The run folder (absolute), created with its config before submission. */
  dir: string;
}

/**
 * The job script, kept in the study's folder for the user to read: element N resumes run N's
 * folder (from its checkpoint, or from the start when it has none) with `mw-studio train`,
 * as a job step (srun) so that Slurm's warning signal and scancel reach the trainer, which
 * checkpoints on SIGTERM and exits.
 */
export function jobScript(study: string, elements: readonly ArrayElement[], executor: SlurmExecutor): string {
  const train = [...studioCommand(), 'train', '--resume', '"$run"'];
  const quoted = train.map((part) => (part === '"$run"' ? part : shellQuote(part)));
  if (executor.backend) quoted.push('--backend', shellQuote(executor.backend));
  const cases = elements.map((e) => `  ${e.index}) run=${shellQuote(e.dir)} ;;`);
  return [
    '#!/bin/sh',
    `# Mw Studio study ${study}: Slurm array element N trains run N of ${study}.study.json,`,
    '# continuing from its checkpoint when it has one. Written by the studio at each submission.',
    'set -eu',
    'case "$SLURM_ARRAY_TASK_ID" in',
    ...cases,
    '  *) echo "no run for array element $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;',
    'esac',
    `exec srun --ntasks=1 ${quoted.join(' ')}`,
    '',
  ].join('\n');
}

/** sbatch's arguments for one array over `indices`: the studio's own options, then the user's settings. */
export function sbatchArguments(
  study: string,
  folder: string,
  indices: readonly number[],
  executor: SlurmExecutor,
): string[] {
  return [
    '--parsable',
    `--array=${indices.join(',')}`,
    `--job-name=mw-${study}`.slice(0, 120),
    `--output=${join(folder, 'slurm-%A_%a.out')}`,
    `--chdir=${folder}`,
    ...optionArguments(executor),
    join(folder, 'job.sh'),
  ];
}

/** Slurm's options for the runs, without the script: what `--test-only` checks and every submission uses. */
function optionArguments(executor: SlurmExecutor): string[] {
  return [
    '--requeue',
    // Slurm's warning before a time limit or preemption: the trainer checkpoints and exits.
    '--signal=TERM@60',
    '--ntasks=1',
    `--cpus-per-task=${executor.cpusPerRun}`,
    ...(executor.partition ? [`--partition=${executor.partition}`] : []),
    ...(executor.gpusPerRun ? [`--gres=gpu:${executor.gpusPerRun}`] : []),
    ...(executor.time ? [`--time=${executor.time}`] : []),
    ...(executor.account ? [`--account=${executor.account}`] : []),
    ...executor.sbatchArgs,
  ];
}

/**
 * Asks the controller whether it would take jobs with these settings (`sbatch --test-only`:
 * nothing is queued), so a bad partition, account or option fails before the study exists.
 */
export async function checkSlurmSettings(executor: SlurmExecutor, runs: number): Promise<void> {
  await slurmCommand('sbatch', ['--test-only', `--array=0-${runs - 1}`, ...optionArguments(executor), '--wrap=true']);
}

/**
 * Writes the job script into `folder` and submits the elements as one array; resolves with the
 * array's job id.
 */
export async function submitArray(
  study: string,
  folder: string,
  elements: readonly ArrayElement[],
  executor: SlurmExecutor,
): Promise<string> {
  await mkdir(folder, { recursive: true });
  await writeFileAtomic(join(folder, 'job.sh'), jobScript(study, elements, executor));
  const indices = elements.map((e) => e.index);
  const out = await slurmCommand('sbatch', sbatchArguments(study, folder, indices, executor));
  const id = lastLine(out).split(';')[0]!;
  if (!/^\d+$/.test(id)) throw new SlurmError(`sbatch answered "${lastLine(out)}" instead of a job id`);
  return id;
}

export interface ElementState {
  state: string;
  reason?: string;
  node?: string;
}

/** The states of the given array jobs' elements, by "<array id>_<task id>"; elements Slurm no longer knows are absent. */
export async function elementStates(arrays: readonly string[]): Promise<Map<string, ElementState>> {
  const states = new Map<string, ElementState>();
  if (!arrays.length) return states;
  let out = '';
  try {
    out = await slurmCommand('squeue', ['-h', '-r', '-t', 'all', '-j', arrays.join(','), '-o', '%i|%T|%r|%N']);
  } catch (error) {
    // Every id given has left the controller's memory.
    if (!/invalid job id/i.test((error as Error).message)) throw error;
  }
  for (const line of out.split('\n')) {
    const [job, state, reason, node] = line.trim().split('|');
    if (!job || !state || !/^\d+_\d+$/.test(job)) continue;
    states.set(job, {
      state,
      ...(reason && reason !== 'None' ? { reason } : {}),
      ...(node ? { node } : {}),
    });
  }
  return states;
}

/** Ended states of elements squeue no longer lists, from accounting; empty where accounting is off. */
export async function accountedStates(jobs: readonly string[]): Promise<Map<string, ElementState>> {
  const states = new Map<string, ElementState>();
  if (!jobs.length) return states;
  let out: string;
  try {
    out = await slurmCommand('sacct', ['-n', '-P', '-X', '-j', jobs.join(','), '-o', 'JobID,State']);
  } catch (error) {
    if (/unreachable/.test((error as Error).message)) throw error;
    return states;
  }
  for (const line of out.split('\n')) {
    const [job, state] = line.trim().split('|');
    // sacct says "CANCELLED by 0": the state is the first word.
    if (job && state && jobs.includes(job)) states.set(job, { state: state.split(' ')[0]! });
  }
  return states;
}

/** Cancels whole arrays (every element, pending or running); running ones get SIGTERM, then SIGKILL after KillWait. */
export async function cancelArrays(arrays: readonly string[]): Promise<void> {
  if (arrays.length) await slurmCommand('scancel', [...arrays]);
}
