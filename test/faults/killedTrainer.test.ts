/**
 * The trainer process killed mid-epoch (SIGKILL, no chance to clean up): the run folder stays
 * intact and reads as interrupted, and `train --resume` continues from the last checkpoint to
 * the same weights as an uninterrupted run with the same seed.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunFolder } from '../../electron/engine/runs/store.js';
import { finalWeights, maxDifference } from '../runWeights.js';

const CLI = resolve('bin/mw-studio.js');
const ARGS = [
  '--depth',
  '8',
  '--width',
  '0.5',
  '--exits',
  '1,2',
  '--epochs',
  '2',
  '--batch',
  '32',
  '--lr',
  '0.05',
  '--seed',
  '5',
  '--limit-train',
  '256',
  '--limit-test',
  '64',
  '--backend',
  'wasm',
];
const roots: string[] = [];

afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

function cli(args: string[], onStderr?: (text: string, kill: () => void) => void): Promise<number | null> {
  const child = spawn(process.execPath, [CLI, 'train', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    onStderr?.(stderr, () => child.kill('SIGKILL'));
  });
  child.stdout.resume();
  return new Promise((done) => child.on('exit', (code) => done(code)));
}

async function onlyRun(root: string): Promise<string> {
  const [name] = await readdir(root);
  return join(root, name!);
}

describe('a killed trainer', () => {
  it('leaves an interrupted run that resumes to the uninterrupted result', async () => {
    const straightRoot = await mkdtemp(join(tmpdir(), 'mw-straight-'));
    const killedRoot = await mkdtemp(join(tmpdir(), 'mw-killed-'));
    roots.push(straightRoot, killedRoot);

    expect(await cli([...ARGS, '--out', straightRoot])).toBe(0);
    const straight = await onlyRun(straightRoot);

    // Kill hard once epoch 2 is under way (epoch 1 ended with a checkpoint).
    let killed = false;
    const code = await cli([...ARGS, '--out', killedRoot], (text, kill) => {
      if (!killed && /epoch 2 \[/.test(text)) {
        killed = true;
        kill();
      }
    });
    expect(killed).toBe(true);
    expect(code).toBeNull();
    const dir = await onlyRun(killedRoot);
    const folder = await RunFolder.open(dir);
    expect((await folder.state())?.status).toBe('interrupted');
    expect(await folder.summary()).toBeUndefined();
    const { records } = await folder.metrics();
    expect(records.some((r) => r.type === 'epoch' && r.epoch === 1)).toBe(true);

    // The same backend as the interrupted run: a different one changes float rounding, hence the weights.
    expect(await cli(['--resume', dir, '--backend', 'wasm'])).toBe(0);
    expect((await folder.state())?.status).toBe('completed');
    expect(maxDifference(await finalWeights(dir), await finalWeights(straight))).toBeLessThan(1e-5);
    const top1 = async (d: string) => (await (await RunFolder.open(d)).summary())!.exits.map((e) => e.top1);
    expect(await top1(dir)).toEqual(await top1(straight));
  });
});
