/**
 * The CLI's error paths, run as a user runs them (`node bin/mw-studio.js ...`, real processes):
 * every mistake is one line on stderr naming what is wrong, with a non-zero exit and no stack.
 * Each fails before anything is written (settings and data are checked before a run folder is made).
 */
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      ['bin/mw-studio.js', ...args],
      { env: { ...process.env, MW_BACKEND: 'cpu' }, timeout: 120_000 },
      (error, stdout, stderr) => {
        done({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
  });
}

describe.concurrent('the CLI on a user mistake', () => {
  it.each([
    [['serve', '--port', '99999'], 2, /^mw-studio serve: --port must be a whole number 0-65535, not "99999"/],
    [['train', '--backend', 'nonsense'], 1, /^mw-studio train: Unknown compute backend 'nonsense'\. Valid values/],
    [['bench', '--exits', '99'], 2, /^mw-studio bench: arch\.exits: block 99 is outside the network/],
    [['train', '--epochs', 'abc'], 2, /^mw-studio train: epochs: /],
    [['train', '--head', 'mlp'], 2, /^mw-studio train: head: head must be one of bn-relu, elastic/],
    [
      ['train', '--freeze-epochs', '3', '--epochs', '3'],
      2,
      /^mw-studio train: freezeEpochs: 3 of 3 epochs leaves none to train the backbone/,
    ],
    [['train', '--arch', 'vgg'], 2, /^mw-studio train: --arch must be resnet or mobilenet, not "vgg"/],
    [['train', '--frobnicate'], 2, /^mw-studio train: Unknown option '--frobnicate'.*--help lists the options/],
    [
      ['study', '--methods', 'plain+distill'],
      2,
      /^mw-studio study: plain\+distill: method: distillation trains the auxiliary exits' backbone/,
    ],
    [['study', '--methods', 'joint,joint'], 2, /^mw-studio study: --methods: methods must not repeat/],
    [['study', '--methods', 'plain', '--seeds', '0'], 2, /^mw-studio study: --seeds: seeds must be at least 1/],
    [['export', '--run', 'x'], 2, /^mw-studio export: --run, --exit and --format are required/],
    [
      ['train', '--dataset', '/nonexistent/mw-dataset', '--epochs', '1'],
      1,
      /^mw-studio train: \/nonexistent\/mw-dataset: file not found$/,
    ],
  ] as const)('%j: one line, exit %i, no stack', async (args, code, message) => {
    const result = await cli([...args]);
    const lines = result.stderr.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('backend: '));
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(result.code).toBe(code);
  });
});
