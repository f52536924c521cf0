/**
 * The studio end to end in Debian's Chromium against serve mode: a real server, a real engine
 * process training a small multi-way run on the embedded data, the built renderer. Screenshots
 * of every view are kept under test-results/screenshots/.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startServer, type StudioServer } from '../../electron/serve/server.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = resolve('test-results/screenshots');
const RENDERER = resolve('out/renderer');

let server: StudioServer;
let browser: BrowserContext;
let page: Page;
let runsRoot: string;

async function buildRenderer(): Promise<void> {
  if (existsSync(join(RENDERER, 'index.html'))) return;
  const vite = await import('vite');
  await vite.build({ configFile: resolve('vite.config.ts'), logLevel: 'warn' });
}

beforeAll(async () => {
  await buildRenderer();
  await mkdir(SCREENSHOTS, { recursive: true });
  runsRoot = await mkdtemp(join(tmpdir(), 'mw-e2e-runs-'));
  server = await startServer({ rendererDir: RENDERER, runsRoot, engineEnv: { MW_BACKEND: 'wasm' } });
  const profile = await mkdtemp(join(tmpdir(), 'mw-e2e-chromium-'));
  // A fresh profile per run (playwright's persistent context is how it takes --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = browser.pages()[0] ?? (await browser.newPage());
  page.on('pageerror', (error) => console.error('page error:', error.message));
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (runsRoot) await rm(runsRoot, { recursive: true, force: true });
});

const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

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
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api?token=${server.token}`, { origin: `http://127.0.0.1:${server.port}` });
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

describe('the studio in Chromium', () => {
  it('trains a multi-way run, shows every exit live, recommends an exit within a latency budget and exports it', async () => {
    await page.goto(server.url);
    await page.getByTestId('start').waitFor();
    // Embedded data is preselected; a small ResNet-8 with exits after blocks 1 and 2.
    await page.getByTestId('depth').fill('8');
    for (const block of [1, 2]) {
      const cell = page.getByTestId(`block-${block}`);
      if ((await cell.getAttribute('aria-checked')) !== 'true' && (await cell.getAttribute('aria-pressed')) !== 'true') await cell.click();
    }
    await page.getByTestId('epochs').fill('2');
    await page.getByTestId('batch').fill('32');
    await page.locator('details.advanced summary').click();
    await page.getByTestId('limit-train').fill('320');
    await page.getByTestId('limit-test').fill('128');
    await shot('1-new-run');
    await expect.poll(() => page.getByTestId('start').isEnabled()).toBe(true);
    await page.getByTestId('start').click();

    // Live view: per-exit metrics arrive while it trains.
    await page.getByTestId('exit-metric-2').waitFor({ timeout: 60_000 });
    await expect.poll(async () => (await page.getByTestId('progress-text').textContent()) ?? '', { timeout: 120_000 }).toMatch(/\d/);
    await expect.poll(async () => (await page.getByTestId('exit-metric-0').textContent()) ?? '', { timeout: 120_000 }).toMatch(/\d\.\d{2,}/);
    await shot('2-live-run');

    // Wait for the run to finish (status badge), then look at the exits.
    await expect.poll(async () => page.getByTestId('run-status').getAttribute('data-status'), { timeout: 240_000, interval: 1000 }).toBe('completed');
    await shot('3-live-finished');
    await page.getByTestId('nav-exits').click();
    for (const index of [0, 1, 2]) await page.getByTestId(`exit-row-${index}`).waitFor();
    await page.getByTestId('pareto-latency').waitFor();

    // A latency budget between the middle exit's and the final exit's batch-1 latency: the
    // recommendation must be the most accurate exit that fits, by the table's own figures.
    const rows = await Promise.all([0, 1, 2].map(async (index) => {
      const cells = await page.getByTestId(`exit-row-${index}`).locator('td').allTextContents();
      return { index, top1: parseFloat(cells[4]!), latency: parseFloat(cells[5]!) };
    }));
    const budget = (rows[1]!.latency + rows[2]!.latency) / 2;
    const fitting = rows.filter((r) => r.latency <= budget);
    const bestTop1 = Math.max(...fitting.map((r) => r.top1));
    const acceptable = fitting.filter((r) => r.top1 === bestTop1).map((r) => `exit-row-${r.index}`);
    await page.getByTestId('budget-mode').selectOption({ index: 0 });
    await page.getByTestId('budget-input').fill(budget.toFixed(3));
    const recommendedRow = page.locator('[data-testid^="exit-row-"]', { has: page.getByTestId('recommended-marker') });
    await recommendedRow.waitFor();
    expect(acceptable).toContain(await recommendedRow.getAttribute('data-testid'));
    await recommendedRow.click();
    await shot('4-exits-budget');

    await page.getByTestId('export').click();
    await page.getByTestId('export-files').locator('li').first().waitFor({ timeout: 120_000 });
    const listed = await page.getByTestId('export-files').locator('li').allTextContents();
    expect(listed.some((f) => f.includes('model.json'))).toBe(true);
    // The exported file's own accuracy, re-scored on the held-out images, and every format's size.
    await expect.poll(() => page.getByTestId('export-accuracy').textContent()).toMatch(/The exported file scores \d+\.\d+% top-1 \(float32\)/);
    expect(await page.getByTestId('export-sizes').locator('tbody tr').count()).toBe(4);
    await shot('5-exported');

    // The exported files exist on disk, inside the run folder.
    const [runName] = await readdir(runsRoot);
    const exportsDir = join(runsRoot, runName!, 'exports');
    const exported = await readdir(exportsDir, { recursive: true });
    expect(exported.some((f) => f.endsWith('model.json'))).toBe(true);
    expect(exported.some((f) => f.endsWith('.bin'))).toBe(true);

    // Analyses of the finished run: early-exit curve, lesion heat map, supervision shares.
    await page.getByTestId('nav-analyses').click();
    await page.getByTestId('compute-early-exit').click();
    await page.getByTestId('early-exit-curve').waitFor({ timeout: 120_000 });
    await page.getByTestId('threshold-verdict').waitFor();
    await page.getByTestId('compute-lesion').click();
    await page.getByTestId('lesion-block-3').waitFor({ timeout: 120_000 });
    await page.getByTestId('compute-supervision').click();
    await page.locator('[data-testid^="supervision-"]').nth(3).waitFor({ timeout: 120_000 });
    await shot('6-analyses');

    await page.getByTestId('nav-runs').click();
    await page.getByTestId('run-item').first().waitFor();
    await shot('7-runs');
  });
});
