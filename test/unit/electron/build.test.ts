/**
 * scripts/build-electron.ts, run as `npm run build` runs it, into a scratch folder under out/
 * (inside the package, so the bundles resolve node_modules as they do in the app). The preload
 * is then run the way a sandbox runs it, CommonJS with only `electron` to require, and the
 * engine worker is started with plain Node and asked a question.
 */
import { execFile, fork } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestSchemas, type StudioApi, type StudioInfo } from '../../../shared/api.js';
import { BUILT_FILES } from '../../../electron/main/layout.js';
import { STUDIO_PORT_CHANNEL } from '../../../shared/protocol.js';

let outRoot: string;
const built = (file: string) => join(outRoot, file);

beforeAll(async () => {
  await mkdir(resolve('out'), { recursive: true });
  outRoot = await mkdtemp(resolve('out', 'build-test-'));
  await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/build-electron.ts', '--out', outRoot]);
});

afterAll(() => rm(outRoot, { recursive: true, force: true }));

describe('build-electron', () => {
  it('writes the main process as an ES module at the path package.json names', async () => {
    const main = await readFile(built(BUILT_FILES.main), 'utf8');
    expect(main).toMatch(/^import \{[^}]*\bapp\b[^}]*\} from "electron";$/m);
    const manifest = JSON.parse(await readFile('package.json', 'utf8')) as { main: string; type: string };
    expect(manifest).toMatchObject({ main: BUILT_FILES.main, type: 'module' });
  });

  it('writes a CommonJS preload that exposes window.studio in a sandbox', async () => {
    const code = await readFile(built(BUILT_FILES.preload), 'utf8');
    expect(code).not.toMatch(/^import /m);
    const exposed = new Map<string, unknown>();
    let portListener: ((event: { ports: unknown[] }) => void) | undefined;
    const electron = {
      contextBridge: { exposeInMainWorld: (name: string, api: unknown) => exposed.set(name, api) },
      ipcRenderer: {
        on: (channel: string, listener: (event: { ports: unknown[] }) => void) => {
          if (channel === STUDIO_PORT_CHANNEL) portListener = listener;
        },
      },
    };
    const required: string[] = [];
    const sandboxRequire = (name: string) => {
      required.push(name);
      if (name !== 'electron') throw new Error(`a sandboxed preload cannot require ${name}`);
      return electron;
    };
    const module = { exports: {} };
    runInNewContext(code, { require: sandboxRequire, module, exports: module.exports, console });
    expect(required).toEqual(['electron']);

    const studio = exposed.get('studio') as StudioApi;
    expect([...exposed.keys()]).toEqual(['studio']);
    expect(Object.keys(studio).sort()).toEqual([...Object.keys(RequestSchemas), 'onEvent'].sort());
    // Main's end of the port, played here: it answers listRuns and pushes events.
    const posted: { id: number; method: string; payload: unknown }[] = [];
    const port: { onmessage?: (message: { data: unknown }) => void; postMessage(message: unknown): void } = {
      postMessage(message) {
        const call = message as (typeof posted)[number];
        posted.push(call);
        port.onmessage?.({ data: { id: call.id, ok: true, result: [] } });
      },
    };
    const runs = studio.listRuns({});
    portListener?.({ ports: [port] });
    await expect(runs).resolves.toEqual([]);
    await expect(studio.openRun({ run: 5 } as never)).rejects.toThrow(/openRun: .*run/);
    expect(posted).toEqual([{ id: 0, method: 'listRuns', payload: {} }]);

    const events: unknown[] = [];
    studio.onEvent((event) => events.push(event));
    port.onmessage?.({ data: { event: { type: 'trainer-crashed', message: 'gone' } } });
    port.onmessage?.({ data: { event: { nonsense: true } } });
    expect(events).toEqual([{ type: 'trainer-crashed', message: 'gone' }]);
  });

  it('writes an engine worker that starts with plain Node and answers calls', async () => {
    const child = fork(built(BUILT_FILES.engine), [], {
      env: { ...process.env, MW_BACKEND: 'cpu', MW_RUNS_ROOT: join(outRoot, 'runs') },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    try {
      const info = await new Promise<StudioInfo>((answered, failed) => {
        child.on('exit', (code) => failed(new Error(`the built worker exited with code ${code}`)));
        child.on('message', (message: { ready?: unknown; id?: number; result?: StudioInfo }) => {
          if (message.ready) child.send({ id: 7, method: 'getInfo', payload: {} });
          if (message.id === 7 && message.result) answered(message.result);
        });
      });
      expect(info).toMatchObject({ runsRoot: join(outRoot, 'runs'), nativeDialogs: false, backend: { name: 'cpu' } });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
