/**
 * What the Chromium end-to-end tests share: the built renderer (built once; test files running
 * side by side each build into their own folder and the first to finish moves its build into
 * place) and a headless Chromium on a fresh profile.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const RENDERER = resolve('out/renderer');
export const SCREENSHOTS = resolve('test-results/screenshots');

/** out/renderer, built when it is not there yet. */
export async function builtRenderer(): Promise<string> {
  if (existsSync(join(RENDERER, 'index.html'))) return RENDERER;
  const vite = await import('vite');
  const own = `${RENDERER}-${process.pid}`;
  await vite.build({ configFile: resolve('vite.config.ts'), logLevel: 'warn', build: { outDir: own } });
  try {
    await rename(own, RENDERER);
  } catch {
    // Another test file's build got there first: it is the same build.
    await rm(own, { recursive: true, force: true });
  }
  return RENDERER;
}

/** Headless Chromium on a fresh profile (playwright's persistent context is how it takes --user-data-dir), and its page. */
export async function launchChromium(executablePath: string): Promise<{ browser: BrowserContext; page: Page }> {
  const profile = await mkdtemp(join(tmpdir(), 'mw-e2e-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.on('pageerror', (error) => console.error('page error:', error.message));
  return { browser, page };
}
