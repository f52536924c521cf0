/**
 * The same end-to-end flow as studio.e2e.test.ts, in the real desktop app: `npm run build`, then
 * Electron started by Playwright's _electron on the built main process, with the engine in its
 * utility process and the page on app://studio. Runs where an Electron binary is installed (and,
 * on Linux, a display); skipped with one printed line elsewhere (test/requirements.ts).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { _electron, type ElectronApplication } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ELECTRON, locate } from '../requirements.js';
import { evaluateAndOpenCells, trainPickExportAnalyse, writeMixedFolder } from './studioFlow.js';

const electronPath = locate(ELECTRON, 'the end-to-end flow in the desktop app');

describe.runIf(electronPath)('the desktop app', () => {
  let app: ElectronApplication;
  let scratch: string;

  beforeAll(async () => {
    await promisify(execFile)('npm', ['run', 'build']);
    scratch = await mkdtemp(join(tmpdir(), 'mw-e2e-desktop-'));
    app = await _electron.launch({
      executablePath: electronPath!,
      // Root in a container has no usable sandbox; the page's own isolation is unchanged.
      args: ['--no-sandbox', resolve('.')],
      env: {
        ...(process.env as Record<string, string>),
        MW_RUNS_ROOT: join(scratch, 'runs'),
        MW_BACKEND: 'wasm',
        HOME: scratch,
      },
    });
  }, 300_000);

  afterAll(async () => {
    await app?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('trains a multi-way run, recommends an exit within a latency budget, exports it and runs the analyses', async () => {
    const page = await app.firstWindow();
    const screenshots = resolve('test-results/screenshots');
    await trainPickExportAnalyse(
      page,
      join(scratch, 'runs'),
      await writeMixedFolder(join(scratch, 'data')),
      screenshots,
      'desktop',
    );
    await evaluateAndOpenCells(page, screenshots, 'desktop');
  });
});
