/**
 * Studies on a Slurm cluster, as a user runs them (`mw-studio study --executor slurm`, real
 * processes, the one-node cluster of test/slurm/): the result equals the same study trained
 * locally, a cancelled study leaves no job and continues from its checkpoints, a run stopped by
 * Slurm's SIGTERM is resubmitted and ends with the weights of an uninterrupted run, and bad
 * settings or an unreachable controller are refused in one line with nothing submitted.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../shared/metrics.js';
import { StudyRecordSchema, type StudyRecord } from '../../shared/study.js';
import { RunFolder } from '../../electron/engine/runs/store.js';
import { locate, SLURM } from '../requirements.js';
import { finalWeights, maxDifference } from '../runWeights.js';

const slurm = locate(SLURM, 'the Slurm executor tests');
const CLI = resolve('bin/mw-studio.js');
/** A tiny study: ResNet-8 at half width with two auxiliary exits, 2 methods x 2 seeds, one backend everywhere. */
const NETWORK = ['--depth', '8', '--width', '0.5', '--exits', '1,2'];
const STUDY = ['--methods', 'plain,multiway', '--seeds', '2', ...NETWORK];
const RECIPE = ['--batch', '32', '--lr', '0.05', '--seed', '5', '--validation', '0', '--backend', 'wasm'];
const TINY = [...RECIPE, '--epochs', '1', '--limit-train', '64', '--limit-test', '32'];
/** Long enough (16 steps an epoch) to be caught mid-training. */
const LONGER = [...RECIPE, '--epochs', '2', '--limit-train', '512', '--limit-test', '64'];
const ENV = { ...process.env, MW_SLURM_POLL_SECONDS: '1' };

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function tempRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'mw-slurm-'));
  roots.push(root);
  return root;
}

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `mw-studio <args>` as a child process; `child` is there to signal it. */
function cli(args: string[], env: NodeJS.ProcessEnv = ENV) {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Finished>((settle) => child.on('exit', (code) => settle({ code, stdout, stderr })));
  return { child, done };
}

/** The one study in `root`. */
async function studyIn(root: string): Promise<StudyRecord> {
  const files = (await readdir(root)).filter((f) => f.endsWith('.study.json'));
  expect(files).toHaveLength(1);
  return StudyRecordSchema.parse(JSON.parse(await readFile(join(root, files[0]!), 'utf8')));
}

/** Every job Slurm still holds (pending, running, or ended within MinJobAge), as "id state name". */
function slurmJobs(): string[] {
  return execFileSync('squeue', ['-h', '-r', '-t', 'all', '-o', '%i %T %j'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean);
}

/** Jobs Slurm holds whose working folder is under `root` (a study's jobs run in its `<id>.slurm` folder). */
function jobsUnder(root: string): string[] {
  return execFileSync('squeue', ['-h', '-t', 'all', '-o', '%i %Z'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.split(' ')[1]?.startsWith(root));
}

/** Jobs of `study` that are queued or running. */
const liveJobs = (study: string) =>
  slurmJobs().filter((j) => j.endsWith(` mw-${study}`) && /PENDING|RUNNING|COMPLETING|CONFIGURING/.test(j));

async function until<T>(what: string, probe: () => Promise<T | undefined>, seconds = 150): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 200));
  }
}

/** A run of the study (its folder) with at least one batch trained. */
async function runUnderWay(root: string, index: number): Promise<string | undefined> {
  const entry = (await studyIn(root)).runs[index];
  if (!entry?.run) return undefined;
  const { records } = await (await RunFolder.open(join(root, entry.run))).metrics();
  return records.some((r) => r.type === 'batch') ? entry.run : undefined;
}

async function summaries(root: string): Promise<Map<string, RunSummary>> {
  const byRun = new Map<string, RunSummary>();
  for (const entry of (await studyIn(root)).runs) {
    const summary = await (await RunFolder.open(join(root, entry.run!))).summary();
    byRun.set(`${entry.method} seed ${entry.seed}`, summary!);
  }
  return byRun;
}

describe.skipIf(!slurm)('a study on Slurm', () => {
  it('trains 2 methods x 2 seeds as one job array, to the same per-exit top-1 as the study trained locally', async () => {
    const [local, cluster] = [await tempRoot(), await tempRoot()];
    const slurmStudy = cli([
      'study',
      ...STUDY,
      ...TINY,
      '--executor',
      'slurm',
      '--cpus-per-run',
      '1',
      '--out',
      cluster,
    ]);
    const localStudy = await cli(['study', ...STUDY, ...TINY, '--out', local]).done;
    expect(localStudy.code, localStudy.stderr).toBe(0);
    const onSlurm = await slurmStudy.done;
    expect(onSlurm.code, onSlurm.stderr).toBe(0);

    const record = await studyIn(cluster);
    expect(record.status).toBe('completed');
    expect(record.executor).toMatchObject({ kind: 'slurm', cpusPerRun: 1, backend: 'wasm' });
    const arrays = new Set(record.runs.map((r) => r.slurm!.job.split('_')[0]));
    expect(arrays.size).toBe(1);
    expect(record.runs.map((r) => [r.slurm!.job.split('_')[1], r.slurm!.state])).toEqual(
      record.runs.map((_, i) => [String(i), 'COMPLETED']),
    );
    expect(onSlurm.stderr).toMatch(/job \d+_\d PENDING/);
    expect(onSlurm.stderr).toMatch(/job \d+_\d RUNNING on \S+/);
    // The job script is in the study's folder, and each element trained its own run there.
    const folder = join(cluster, `${record.id}.slurm`);
    const script = await readFile(join(folder, 'job.sh'), 'utf8');
    for (const entry of record.runs) expect(script).toContain(join(cluster, entry.run!));
    expect(await readFile(join(folder, `slurm-${record.runs[0]!.slurm!.job}.out`), 'utf8')).toMatch(/run folder:/);

    const [fromSlurm, fromLocal] = [await summaries(cluster), await summaries(local)];
    expect([...fromSlurm.keys()].sort()).toEqual([...fromLocal.keys()].sort());
    for (const [run, summary] of fromLocal) {
      expect(summary.exits.map((e) => e.block)).toEqual([1, 2, 3]);
      expect(
        fromSlurm.get(run)!.exits.map((e) => e.top1),
        run,
      ).toEqual(summary.exits.map((e) => e.top1));
      // Stronger than top-1 on 32 images: the trained weights are the same.
      expect(
        maxDifference(await finalWeights(fromSlurm.get(run)!.run), await finalWeights(summary.run)),
        run,
      ).toBeLessThan(1e-6);
    }
    // The printed result is the same table.
    const table = (out: string) => out.slice(out.indexOf('method'));
    expect(table(onSlurm.stdout)).toBe(table(localStudy.stdout));
  }, 600_000);

  it('cancels every job when stopped, then continues the runs from their checkpoints', async () => {
    const root = await tempRoot();
    // One seed: both runs train side by side on the two CPUs, and both are cut short.
    const study = cli([
      'study',
      '--methods',
      'plain,multiway',
      '--seeds',
      '1',
      ...NETWORK,
      ...LONGER,
      '--executor',
      'slurm',
      '--out',
      root,
    ]);
    await until('a run under way', () => runUnderWay(root, 0));
    const { id } = await studyIn(root);
    study.child.kill('SIGINT');
    const stopped = await study.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(liveJobs(id)).toEqual([]);
    const record = await studyIn(root);
    expect(record.status).toBe('stopped');
    expect(record.runs.filter((r) => r.slurm?.state === 'CANCELLED').length).toBeGreaterThan(0);
    const cut = record.runs.filter((r) => !r.finishedAt && r.run);
    const checkpointed: string[] = [];
    for (const entry of cut)
      if (await (await RunFolder.open(join(root, entry.run!))).hasCheckpoint()) checkpointed.push(entry.run!);
    expect(checkpointed.length).toBeGreaterThan(0);

    const continued = await cli(['study', '--resume', id, '--out', root]).done;
    expect(continued.code, continued.stderr).toBe(0);
    const done = await studyIn(root);
    expect(done.status).toBe('completed');
    expect(done.runs.every((r) => r.finishedAt && r.slurm?.state === 'COMPLETED')).toBe(true);
    for (const run of checkpointed) {
      const start = await (await RunFolder.open(join(root, run))).start();
      expect(start?.resumedFrom?.step, run).toBeGreaterThan(0);
    }
    expect(liveJobs(id)).toEqual([]);
  }, 600_000);

  it('resubmits a run stopped by scancel --signal=TERM, which ends with the weights of an uninterrupted run', async () => {
    const [straight, signalled] = [await tempRoot(), await tempRoot()];
    const args = [
      '--methods',
      'multiway',
      '--seeds',
      '1',
      '--depth',
      '8',
      '--width',
      '0.5',
      '--exits',
      '1,2',
      ...LONGER,
    ];
    const study = cli(['study', ...args, '--executor', 'slurm', '--out', signalled]);
    const run = await until('the run under way', () => runUnderWay(signalled, 0));
    const job = (await studyIn(signalled)).runs[0]!.slurm!.job;
    execFileSync('scancel', ['--signal=TERM', job]);
    const straightRun = await cli(['study', ...args, '--out', straight]).done;
    expect(straightRun.code, straightRun.stderr).toBe(0);
    const finished = await study.done;
    expect(finished.code, finished.stderr).toBe(0);

    const [entry] = (await studyIn(signalled)).runs;
    expect(entry!.slurm!.resubmits).toBe(1);
    expect(entry!.slurm!.job).not.toBe(job);
    expect(finished.stderr).toMatch(new RegExp(`job ${job} FAILED`));
    const folder = await RunFolder.open(join(signalled, run));
    expect((await folder.start())?.resumedFrom?.step).toBeGreaterThan(0);
    const [straightEntry] = (await studyIn(straight)).runs;
    const uninterrupted = await finalWeights(join(straight, straightEntry!.run!));
    expect(maxDifference(await finalWeights(folder.dir), uninterrupted)).toBeLessThan(1e-5);
  }, 600_000);

  it('refuses bad settings in one line before anything is queued', async () => {
    const root = await tempRoot();
    const cases: [string[], RegExp][] = [
      [['--partition', 'a;rm -rf /'], /^--partition: partition is letters, digits/],
      [['--time', 'soon'], /^--time: time is minutes, HH:MM:SS or D-HH:MM:SS/],
      [['--gpus-per-run', '0'], /^--gpus-per-run: GPUs per run must be at least 1/],
      [['--sbatch-arg=--array=0-99'], /^--sbatch-arg: --array is set by the studio/],
      [['--sbatch-arg=-N 2'], /^--sbatch-arg: each sbatch option is one --name or --name=value/],
      // These two the controller refuses (sbatch --test-only): still nothing queued.
      [['--partition', 'nosuchpartition'], /^sbatch refused: .*invalid partition/i],
      [['--gpus-per-run', '1'], /^sbatch refused: /],
    ];
    for (const [flags, message] of cases) {
      const { code, stderr } = await cli(['study', ...STUDY, ...TINY, '--executor', 'slurm', ...flags, '--out', root])
        .done;
      const lines = stderr.trim().split('\n');
      expect(lines, flags.join(' ')).toHaveLength(1);
      expect(lines[0]!.replace(/^mw-studio study: /, ''), flags.join(' ')).toMatch(message);
      expect(code).toBeGreaterThan(0);
    }
    const local = await cli(['study', ...STUDY, ...TINY, '--partition', 'debug', '--out', root]).done;
    expect(local.stderr.trim()).toMatch(/^mw-studio study: --partition applies to --executor slurm/);
    expect(await readdir(root)).toEqual([]);
    expect(jobsUnder(root)).toEqual([]);
  });

  it('says in one line that the controller is unreachable', async () => {
    const root = await tempRoot();
    // This cluster's configuration, pointing at a port where no controller listens.
    const conf = (await readFile(process.env.SLURM_CONF ?? '/etc/slurm/slurm.conf', 'utf8')).replace(
      /^SlurmctldHost=.*$/m,
      'SlurmctldHost=localhost\nSlurmctldPort=9',
    );
    const confPath = join(root, 'unreachable.conf');
    await writeFile(confPath, conf);
    const { code, stderr } = await cli(
      ['study', ...STUDY, ...TINY, '--executor', 'slurm', '--out', join(root, 'runs')],
      {
        ...ENV,
        SLURM_CONF: confPath,
      },
    ).done;
    expect(code).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^mw-studio study: the Slurm controller is unreachable \(sbatch: .*\); check that slurmctld runs/,
    );
    expect(await readdir(root)).toEqual(['unreachable.conf']);
  });
});
