/**
 * Fetching pinned backbones, against a real HTTP server on the loopback interface: a file whose
 * SHA-256 matches is kept in the cache and not downloaded twice; a file that does not match, a
 * refused connection and an error status are refused in one line and leave nothing in the cache;
 * the CLI does the same as a user runs it.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackboneFetchError } from '../../electron/engine/errors.js';
import {
  backboneCacheDir,
  fetchBackbone,
  listBackbones,
  MIRROR_VARIABLE,
  type PretrainedBackbone,
} from '../../electron/engine/onnx/zoo.js';

const FILE = randomBytes(300_000);
let server: Server;
let base: string;
const requests: string[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    requests.push(request.url ?? '');
    if (request.url === '/tiny.onnx' || request.url?.endsWith('resnet18-v1-7.onnx')) {
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      response.end(FILE);
    } else {
      response.writeHead(404);
      response.end();
    }
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((done) => server.close(() => done())));

const entry = (overrides: Partial<PretrainedBackbone> = {}): PretrainedBackbone => ({
  name: 'tiny',
  description: 'a test file',
  file: 'tiny.onnx',
  url: `${base}/tiny.onnx`,
  sha256: createHash('sha256').update(FILE).digest('hex'),
  bytes: FILE.length,
  ...overrides,
});

const cacheDir = () => mkdtemp(join(tmpdir(), 'mw-backbones-'));
const noMirror = { ...process.env, [MIRROR_VARIABLE]: '' };

describe('pinned backbones', () => {
  it('downloads a file whose SHA-256 matches into the cache, lists it as cached, and does not download it again', async () => {
    const dir = await cacheDir();
    const backbones = [entry()];
    expect((await listBackbones({ cacheDir: dir, backbones }))[0]!.cached).toBe(false);
    const before = requests.length;
    const first = await fetchBackbone('tiny', { cacheDir: dir, backbones, env: noMirror });
    expect(first).toEqual({ path: join(dir, 'tiny.onnx'), downloaded: true });
    expect((await readFile(first.path)).equals(FILE)).toBe(true);
    expect(await readdir(dir)).toEqual(['tiny.onnx']);
    const second = await fetchBackbone('tiny', { cacheDir: dir, backbones, env: noMirror });
    expect(second.downloaded).toBe(false);
    expect(requests.length).toBe(before + 1);
    expect(await listBackbones({ cacheDir: dir, backbones })).toEqual([
      { name: 'tiny', description: 'a test file', bytes: FILE.length, cached: true, path: first.path },
    ]);
  });

  it('refuses a file whose SHA-256 is not the pinned one, keeping nothing', async () => {
    const dir = await cacheDir();
    const wrong = entry({ sha256: createHash('sha256').update('something else').digest('hex') });
    const error = await fetchBackbone('tiny', { cacheDir: dir, backbones: [wrong], env: noMirror }).catch((e) => e);
    expect(error).toBeInstanceOf(BackboneFetchError);
    expect(error.message).toMatch(
      /is not the pinned tiny \(SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}\); nothing was kept$/,
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('without a network or with a missing file: one line that says so and how to bring a file instead', async () => {
    const dir = await cacheDir();
    // A port nothing listens on: one that was just open and is closed again.
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((done) => closed.close(() => done()));
    const offline = entry({ url: `http://127.0.0.1:${port}/tiny.onnx` });
    const error = await fetchBackbone('tiny', { cacheDir: dir, backbones: [offline], env: noMirror }).catch((e) => e);
    expect(error).toBeInstanceOf(BackboneFetchError);
    expect(error.message).toMatch(
      /^could not download tiny from http:\/\/127\.0\.0\.1:\d+\/tiny\.onnx \(.*ECONNREFUSED.*\): no network here\? bring a file instead: .*--backbone FILE\.onnx$/,
    );
    expect(error.message).not.toMatch(/\n/);
    const missing = entry({ url: `${base}/missing.onnx` });
    await expect(fetchBackbone('tiny', { cacheDir: dir, backbones: [missing], env: noMirror })).rejects.toThrow(
      /answered 404/,
    );
    await expect(fetchBackbone('vgg', { cacheDir: dir, backbones: [missing] })).rejects.toThrow(
      /unknown backbone "vgg"; the pinned ones are tiny/,
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it("keeps files in the platform's user cache folder", () => {
    expect(backboneCacheDir({ XDG_CACHE_HOME: '/x/cache' }, 'linux')).toBe('/x/cache/mw-studio/backbones');
    expect(backboneCacheDir({ LOCALAPPDATA: 'C:\\Users\\u\\AppData\\Local' }, 'win32')).toMatch(
      /mw-studio.Cache.backbones$/,
    );
    expect(backboneCacheDir({}, 'darwin')).toMatch(/Library\/Caches\/mw-studio\/backbones$/);
  });

  it('the CLI: fetch from a mirror serving another file refuses in one line and leaves the cache empty; list shows the pins', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'mw-xdg-'));
    const cli = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
        execFile(
          process.execPath,
          ['bin/mw-studio.js', 'backbone', ...args],
          { env: { ...process.env, XDG_CACHE_HOME: cache, [MIRROR_VARIABLE]: base }, timeout: 120_000 },
          (error, stdout, stderr) => done({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr }),
        ),
      );
    const fetched = await cli(['fetch', 'resnet18']);
    expect(fetched.code).toBe(1);
    const lines = fetched.stderr.split('\n').filter((l) => l.trim());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^mw-studio backbone: .*resnet18-v1-7\.onnx is not the pinned resnet18 \(SHA-256/);
    expect(await readdir(join(cache, 'mw-studio', 'backbones'))).toEqual([]);
    const listed = await cli(['list', '--json']);
    const { backbones } = JSON.parse(listed.stdout.trim().split('\n').at(-1)!);
    expect(backbones.map((b: { name: string; cached: boolean }) => [b.name, b.cached])).toEqual([
      ['resnet18', false],
      ['mobilenetv2', false],
      ['resnet50', false],
    ]);
  });
});
