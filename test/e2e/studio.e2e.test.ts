/**
 * The studio end to end in Debian's Chromium against serve mode: a real server, a real engine
 * process training a small multi-way run on the embedded data, the built renderer. Screenshots
 * of every view are kept under test-results/screenshots/. Without chromium (test/requirements.ts)
 * only the server's boundary checks run, which need no browser.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startServer, type StudioServer } from '../../electron/serve/server.js';
import { CHROMIUM, locate } from '../requirements.js';
import { initBackend, summarizeBackend } from '../../electron/engine/backend/index.js';
import { exportExit } from '../../electron/engine/export/index.js';
import { inspectBackbone } from '../../electron/engine/models/import/network.js';
import { openRun } from '../../electron/engine/session.js';
import { builtRenderer, launchChromium, SCREENSHOTS } from './browser.js';
import {
  evaluateAndOpenCells,
  studyAndCompareThree,
  trainOnBackbone,
  trainPickExportAnalyse,
  writeMixedFolder,
} from './studioFlow.js';

const chromiumPath = locate(CHROMIUM, 'the end-to-end flow in Chromium');

let server: StudioServer;
let browser: BrowserContext;
let page: Page;
let runsRoot: string;
let mixedFolder: string;

beforeAll(async () => {
  runsRoot = await mkdtemp(join(tmpdir(), 'mw-e2e-runs-'));
  mixedFolder = await writeMixedFolder(await mkdtemp(join(tmpdir(), 'mw-e2e-data-')));
  server = await startServer({ rendererDir: await builtRenderer(), runsRoot, engineEnv: { MW_BACKEND: 'wasm' } });
  if (!chromiumPath) return;
  ({ browser, page } = await launchChromium(chromiumPath));
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (runsRoot) await rm(runsRoot, { recursive: true, force: true });
  if (mixedFolder) await rm(join(mixedFolder, '..'), { recursive: true, force: true });
});

describe('serve mode boundary', () => {
  it('refuses pages and sockets without the session token or from another origin', async () => {
    const base = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${base}/`)).status).toBe(403);
    expect((await fetch(`${base}/?token=wrong`)).status).toBe(403);
    const ok = await fetch(server.url);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-security-policy')).not.toContain('unsafe-eval');
    const refused = (url: string, origin: string) =>
      new Promise<boolean>((done) => {
        const ws = new WebSocket(url, { origin });
        ws.on('open', () => (ws.close(), done(false)));
        ws.on('error', () => done(true));
      });
    expect(await refused(`ws://127.0.0.1:${server.port}/api?token=${server.token}`, 'http://evil.example')).toBe(true);
    expect(await refused(`ws://127.0.0.1:${server.port}/api?token=nope`, base)).toBe(true);
  });

  it('answers a bad call with an error naming the field, and keeps serving', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api?token=${server.token}`, {
      origin: `http://127.0.0.1:${server.port}`,
    });
    await new Promise((done) => ws.on('open', done));
    const call = (message: unknown) =>
      new Promise<{ ok: boolean; error?: string }>((done) => {
        ws.once('message', (data) => done(JSON.parse(data.toString())));
        ws.send(JSON.stringify(message));
      });
    const bad = await call({ id: 1, method: 'exportExit', payload: { run: 'x', exit: -1, format: 'exe' } });
    expect(bad.ok).toBe(false);
    expect(bad.error).toMatch(/exportExit: exit.*; format/);
    expect((await call({ id: 2, method: 'listRuns', payload: {} })).ok).toBe(true);
    ws.close();
  });
});

describe.runIf(chromiumPath)('the studio in Chromium', () => {
  it('trains a multi-way run, shows every exit live, recommends an exit within a latency budget and exports it', async () => {
    await page.goto(server.url);
    await trainPickExportAnalyse(page, runsRoot, mixedFolder, SCREENSHOTS, 'serve');
  });

  it('evaluates the trained run per exit and opens exactly the images of a confusion cell and of an overthinking cell', async () => {
    await evaluateAndOpenCells(page, SCREENSHOTS, 'serve');
  });

  it('runs a tiny study (2 methods x 1 seed), shows its mean ± spread table, and compares three runs', async () => {
    await studyAndCompareThree(page, SCREENSHOTS, 'serve');
  });

  it('trains heads on a backbone file picked in the New run form: a network the studio trained, exported to ONNX', async () => {
    // The backbone: a small run trained and exported here, by the engine in this process.
    const backend = await initBackend('wasm');
    const scratch = await mkdtemp(join(tmpdir(), 'mw-e2e-backbone-'));
    const trainer = await openRun(
      {
        kind: 'new',
        config: {
          dataset: 'embedded',
          arch: { family: 'resnet', depth: 8, width: 0.5, exits: [1] },
          method: 'multiway',
          gamma: 2,
          epochs: 1,
          batchSize: 64,
          lr: 0.05,
          seed: 1,
          limitTrain: 256,
          limitTest: 64,
        },
        runsRoot: scratch,
      },
      { backend: summarizeBackend(backend), latency: { warmup: 1, minRepeats: 1, maxRepeats: 1 } },
    );
    await trainer.run();
    trainer.dispose();
    const { directory } = await exportExit({
      run: trainer.start.run,
      exit: 'final',
      format: 'onnx',
      destination: join(scratch, 'backbone'),
    });
    const backbone = join(directory, 'model.onnx');
    await page.goto(server.url);
    await trainOnBackbone(page, backbone, inspectBackbone(backbone).candidates.length, SCREENSHOTS, 'serve');
    await rm(scratch, { recursive: true, force: true });
  });
});
