/**
 * A study on Slurm from the studio, end to end: Debian's Chromium on serve mode, whose engine
 * submits to the one-node cluster of test/slurm/. The Study view offers the Slurm executor
 * (sbatch is on the engine's PATH), shows each array element's state as the scheduler reports
 * it (two run on the two CPUs while two wait), draws a running element's loss curves from its
 * run folder, and ends with the result. Screenshots go to test-results/screenshots/.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StudioServer } from '../../electron/serve/server.js';
import { CHROMIUM, locate, SLURM } from '../requirements.js';
import { builtRenderer, launchChromium, SCREENSHOTS } from './browser.js';
import { screenshots } from './studioFlow.js';

const chromiumPath = locate(CHROMIUM, 'the Slurm study in Chromium');
const slurm = locate(SLURM, 'the Slurm study in Chromium');

let server: StudioServer;
let browser: BrowserContext;
let page: Page;
let runsRoot: string;

beforeAll(async () => {
  if (!chromiumPath || !slurm) return;
  runsRoot = await mkdtemp(join(tmpdir(), 'mw-e2e-slurm-'));
  server = await startServer({
    rendererDir: await builtRenderer(),
    runsRoot,
    engineEnv: { MW_BACKEND: 'wasm', MW_SLURM_POLL_SECONDS: '1' },
  });
  ({ browser, page } = await launchChromium(chromiumPath));
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (runsRoot) await rm(runsRoot, { recursive: true, force: true });
});

/** The states the queue shows, in order. */
const states = async () => page.getByTestId('queue-state').evaluateAll((cells) => cells.map((c) => c.dataset.state));

describe.runIf(chromiumPath && slurm)('a study on Slurm in the studio', () => {
  it('shows PENDING, RUNNING and COMPLETED array elements, the live curve of a running one, and the result', async () => {
    const shot = await screenshots(page, SCREENSHOTS, 'slurm');
    await page.goto(server.url);
    await page.getByTestId('start').waitFor();
    await page.getByTestId('depth').fill('8');
    await page.getByTestId('epochs').fill('2');
    await page.getByTestId('batch').fill('32');
    await page.locator('details.advanced summary').click();
    await page.getByTestId('limit-train').fill('640');
    await page.getByTestId('limit-test').fill('64');

    await page.getByTestId('nav-study').click();
    await page.getByTestId('study-executor-slurm').check();
    await page.getByTestId('slurm-settings').waitFor();
    // A setting Slurm would misread is refused at its field, before anything is sent.
    await page.getByTestId('slurm-time').fill('soon');
    await page.getByTestId('error-slurm-time').waitFor();
    expect(await page.getByTestId('start-study').isEnabled()).toBe(false);
    await page.getByTestId('slurm-time').fill('30:00');
    await page.getByTestId('slurm-partition').fill('debug');
    await page.getByTestId('slurm-cpusPerRun').fill('1');
    await page.getByTestId('study-seeds').fill('2');
    await expect.poll(() => page.getByTestId('start-study').textContent()).toMatch(/Start study \(4 runs\)/);
    await shot('1-settings');
    await page.getByTestId('start-study').click();

    // Two CPUs, one per run: two elements run while two wait for resources.
    await expect
      .poll(states, { timeout: 120_000, interval: 250 })
      .toEqual(['RUNNING', 'RUNNING', 'PENDING', 'PENDING']);
    expect(await page.getByTestId('study-progress').textContent()).toMatch(
      /0 of 4 runs finished · 2 running · 2 pending/,
    );
    // The first running element's loss curves, read from its run folder as it trains.
    await page.getByTestId('slurm-element-chart').waitFor({ timeout: 60_000 });
    await expect
      .poll(async () => (await page.getByTestId('slurm-element-progress').textContent()) ?? '', { timeout: 60_000 })
      .toMatch(/step [1-9]\d* \/ \d+/);
    expect(await page.getByTestId('study-queue').textContent()).toMatch(/job \d+_0 · on \S+/);
    expect(await page.getByTestId('study-queue').textContent()).toMatch(/job \d+_3 · (Resources|Priority)/);
    await shot('2-running');

    await expect
      .poll(async () => (await states()).join(' '), { timeout: 300_000, interval: 500 })
      .toMatch(/^COMPLETED COMPLETED (RUNNING|PENDING|COMPLETED) (RUNNING|PENDING|COMPLETED)$/);
    await shot('3-half-done');
    await expect
      .poll(async () => page.getByTestId('study-status').getAttribute('data-status'), {
        timeout: 300_000,
        interval: 1000,
      })
      .toBe('completed');
    expect(await states()).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED']);
    await page.getByTestId('study-table').waitFor();
    expect(await page.getByTestId('study-row-plain').locator('td').first().textContent()).toBe('2');
    expect(await page.getByTestId('study-row-multiway').locator('td').first().textContent()).toBe('2');
    await shot('4-completed');
  });
});
