/**
 * The studio's main flow, driven through its page wherever that page runs (serve mode in
 * Chromium, or the desktop app through Playwright's _electron): train a small multi-way run,
 * watch every exit live, pick an exit within a latency budget, export it, run the analyses.
 * Screenshots of every view go to `screenshotDir`, named `<prefix>-<step>.png`.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';

export async function trainPickExportAnalyse(page: Page, runsRoot: string, screenshotDir: string, prefix: string): Promise<void> {
  await mkdir(screenshotDir, { recursive: true });
  const shot = (name: string) => page.screenshot({ path: join(screenshotDir, `${prefix}-${name}.png`), fullPage: true });
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
}
