/**
 * The demo page of an export folder, end to end: the folder served by a plain static server on
 * 127.0.0.1, opened in Debian's Chromium, fed a held-out image through its file input; its top
 * class (and for a multi-exit model, the exit that answered) must be what `mw-studio predict`
 * says for the same file. ONNX int8 runs in onnxruntime-web, the multi-exit tfjs model in
 * TensorFlow.js.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { PNG } from 'pngjs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunConfigInput } from '../../shared/spec.js';
import { initBackend, summarizeBackend } from '../../electron/engine/backend/index.js';
import { loadDataset } from '../../electron/engine/data/index.js';
import { promisify } from 'node:util';
import { exportExit, type Prediction } from '../../electron/engine/export/index.js';
import type { ExportFormat } from '../../shared/deployment.js';
import { openRun } from '../../electron/engine/session.js';
import { CHROMIUM, locate } from '../requirements.js';

const chromiumPath = locate(CHROMIUM, 'the export demo page in Chromium');

const CONFIG: RunConfigInput = {
  dataset: 'embedded',
  arch: { family: 'resnet', depth: 8, width: 0.5, exits: [1, 2] },
  method: 'multiway',
  gamma: 2,
  epochs: 1,
  batchSize: 64,
  lr: 0.05,
  seed: 3,
  limitTrain: 256,
  limitTest: 32,
};
const IMAGES_TRIED = 3;

/** `mw-studio predict --json` as a user runs it: one JSON prediction per line. */
async function cliPredict(model: string, files: string[]): Promise<Prediction[]> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['bin/mw-studio.js', 'predict', '--model', model, '--json', ...files],
    { maxBuffer: 1 << 20 },
  );
  return stdout
    .trim()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Prediction);
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

/** Any static server: files of one folder by name, nothing else. */
function serveFolder(dir: string): Promise<Server> {
  const server = createServer(async (request, response) => {
    const name =
      normalize(decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname)).replace(/^\/+/, '') ||
      'index.html';
    const path = join(dir, name);
    if (name.includes('..') || !(await stat(path).catch(() => undefined))?.isFile()) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': MIME[extname(name)] ?? 'application/octet-stream' });
    response.end(await readFile(path));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

let runDir: string;
let images: string[];
let browser: Browser;

beforeAll(async () => {
  if (!chromiumPath) return;
  const backend = await initBackend('wasm');
  const root = await mkdtemp(join(tmpdir(), 'mw-demo-'));
  const trainer = await openRun(
    { kind: 'new', config: CONFIG, runsRoot: root },
    { backend: summarizeBackend(backend), latency: { warmup: 1, minRepeats: 2, maxRepeats: 2 } },
  );
  await trainer.run();
  runDir = trainer.start.run;
  trainer.dispose();
  // Held-out images as the PNG files a user would pick.
  const dataset = await loadDataset('embedded', {
    limitTrain: CONFIG.limitTrain,
    limitTest: CONFIG.limitTest,
    seed: CONFIG.seed,
  });
  const { height, width } = dataset.shape;
  images = [];
  for (let i = 0; i < IMAGES_TRIED; i++) {
    const png = new PNG({ width, height, colorType: 0 });
    for (let p = 0; p < width * height; p++) {
      const v = dataset.test.images[i * width * height + p]!;
      png.data.set([v, v, v, 255], p * 4);
    }
    const file = join(root, `held-out-${i}.png`);
    await writeFile(file, PNG.sync.write(png, { colorType: 0 }));
    images.push(file);
  }
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
});

describe.runIf(chromiumPath)('export demo page', () => {
  for (const [format, exit] of [
    ['onnx-int8', 2],
    ['multi', 2],
  ] as [ExportFormat, number][]) {
    it(`shows the top class mw-studio predict gives (${format})`, async () => {
      const { directory } = await exportExit({ run: runDir, exit, format });
      const expected = await cliPredict(directory, images);
      expect(expected).toHaveLength(images.length);
      const server = await serveFolder(directory);
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      try {
        await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
        await page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
        for (const [i, file] of images.entries()) {
          await page.evaluate('delete document.body.dataset.state');
          await page.setInputFiles('#image', file);
          await page.waitForSelector('body[data-state="predicted"]', { timeout: 30_000 });
          const top = await page.getAttribute('#predictions li:first-child', 'data-label');
          expect(top, `${format}, image ${i}`).toBe(expected[i]!.top[0]!.label);
          if (format === 'multi') expect(await page.getAttribute('#exit', 'data-exit')).toBe(expected[i]!.exit!.label);
        }
        expect(errors).toEqual([]);
      } finally {
        await page.close();
        server.close();
      }
    });
  }
});
