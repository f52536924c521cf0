/**
 * The main process' engine relay. With a real engine: electron/engine/worker.ts in a Node child
 * process (the worker speaks process.send as well as Electron's parentPort) stands in for the
 * utility process. With a scripted fake: timeouts, crashes mid-call and restart back-off.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { WebSocket } from 'ws';
import type { StudioApi, StudioEvent } from '../../../shared/api.js';
import type { ProtocolMessage } from '../../../shared/protocol.js';
import { DEFAULT_RUN_CONFIG, parseRunConfig } from '../../../shared/spec.js';
import { createPreloadStudio } from '../../../electron/preload/studioApi.js';
import { StderrTail } from '../../../electron/relay/engineProcess.js';
import {
  defaultCallTimeoutMs,
  defaultRestartDelayMs,
  EngineRelay,
  type EngineProcess,
} from '../../../electron/relay/engineRelay.js';
import { pageChannel } from '../../../electron/relay/pageChannel.js';
import { forkEngine } from '../../../electron/serve/engineProcess.js';
import { startServer } from '../../../electron/serve/server.js';
import { asPagePort } from './pagePort.js';

type ForkedEngine = ReturnType<typeof forkEngine>;

/** Serve mode's adapter, with every child and every message sent to one remembered, and none left running after. */
function forkTracked(
  env: Record<string, string>,
  children: ForkedEngine[],
  sent: ProtocolMessage[] = [],
): EngineProcess {
  const engine = forkEngine(env);
  children.push(engine);
  return { ...engine, send: (message) => (sent.push(message), engine.send(message)) };
}

function nextEvent(events: StudioEvent[], type: StudioEvent['type']): Promise<StudioEvent> {
  return new Promise((done) => {
    const poll = setInterval(() => {
      const found = events.find((event) => event.type === type);
      if (!found) return;
      clearInterval(poll);
      done(found);
    }, 20);
  });
}

const settle = (ms = 50) => new Promise((done) => setTimeout(done, ms));

/** Two runs in a fresh runs root: one readable, one whose config is corrupt (listRuns reports both). */
async function runsRootWithTwoRuns(): Promise<string> {
  const runsRoot = await mkdtemp(join(tmpdir(), 'mw-relay-runs-'));
  const good = join(runsRoot, '2026-01-02_resnet20_multiway');
  await mkdir(good);
  await writeFile(join(good, 'config.json'), JSON.stringify(parseRunConfig(DEFAULT_RUN_CONFIG)));
  const broken = join(runsRoot, '2026-01-01_broken');
  await mkdir(broken);
  await writeFile(join(broken, 'config.json'), '{"arch": ');
  return runsRoot;
}

/**
 * The desktop app's path without Electron: the preload's window.studio, a MessageChannel, main's
 * end of the page channel (with a scripted folder dialog), the relay, and the engine worker in a
 * Node child process standing in for the utility process.
 */
describe('the desktop path to a real engine process', () => {
  const children: ForkedEngine[] = [];
  const toEngine: ProtocolMessage[] = [];
  const toMain: unknown[] = [];
  const events: StudioEvent[] = [];
  const dialogs: string[] = [];
  const remotes: unknown[] = [];
  const ports: MessagePort[] = [];
  let runsRoot: string;
  let chosen: string;
  let relay: EngineRelay;
  let studio: StudioApi;

  beforeAll(async () => {
    runsRoot = await runsRootWithTwoRuns();
    chosen = await mkdtemp(join(tmpdir(), 'mw-chosen-'));
    relay = new EngineRelay({
      start: () =>
        forkTracked({ MW_BACKEND: 'cpu', MW_RUNS_ROOT: runsRoot, MW_NATIVE_DIALOGS: '1' }, children, toEngine),
      restartDelayMs: () => 0,
    });
    const main = pageChannel(relay, {
      validates: false,
      chooseFolder: async (purpose) => (dialogs.push(purpose), purpose === 'dataset' ? chosen : undefined),
      remote: {
        connect: async (remote) => void remotes.push(remote),
        saved: async () => ({ address: 'http://127.0.0.1:5178' }),
      },
    });
    relay.onEvent((event) => main.emit(event));
    const { port1, port2 } = new MessageChannel();
    ports.push(port1, port2);
    port1.on('message', (data: unknown) => (toMain.push(data), main.receive(data)));
    main.connect((message) => port1.postMessage(message));
    const preload = createPreloadStudio();
    preload.attach(asPagePort(port2));
    studio = preload.api;
    studio.onEvent((event) => events.push(event));
  });

  afterAll(async () => {
    await relay.stop(200);
    // Whatever did not exit within the grace period is ended here.
    for (const child of children) child.kill('SIGKILL');
    for (const port of ports) port.close();
    await rm(runsRoot, { recursive: true, force: true });
    await rm(chosen, { recursive: true, force: true });
  });

  it('answers getInfo with the runs root it was given', async () => {
    const info = await studio.getInfo({});
    expect(info.runsRoot).toBe(runsRoot);
    expect(info.nativeDialogs).toBe(true);
    expect(info.backend.name).toBe('cpu');
  });

  it('lists the runs under the runs root', async () => {
    const runs = await studio.listRuns({});
    expect(runs.map((run) => run.name)).toEqual(['2026-01-02_resnet20_multiway', '2026-01-01_broken']);
    expect(runs[0]?.config?.arch).toEqual(DEFAULT_RUN_CONFIG.arch);
    expect(runs[1]?.problem).toMatch(/config\.json/);
  });

  it('refuses a malformed call once, in the preload, with one error, before it leaves the page', async () => {
    const [crossedBefore, sentBefore] = [toMain.length, toEngine.length];
    const openRun = studio.openRun as (request: unknown) => Promise<unknown>;
    await expect(openRun({ run: 5 })).rejects.toThrow(
      /^openRun: run: Invalid input: expected string, received number$/,
    );
    await settle();
    expect([toMain.length, toEngine.length]).toEqual([crossedBefore, sentBefore]);
  });

  it('has the engine refuse, once, a malformed call that skipped the preload', async () => {
    // As a compromised page would send it: main passes it on unchecked, and the engine is the boundary.
    await expect(relay.forward('openRun', { run: 5 })).rejects.toThrow(
      /^openRun: run: Invalid input: expected string, received number$/,
    );
    await expect(relay.forward('exportExit', { run: 'x', exit: 'final', format: 'exe' })).rejects.toThrow(
      /^exportExit: format: /,
    );
  });

  it("passes the engine's own errors through", async () => {
    await expect(studio.pauseRun({})).rejects.toThrow(/^no run is active$/);
    await expect(studio.openRun({ run: '../../etc' })).rejects.toThrow(/outside/);
  });

  it('shows the folder dialog in main and hands the engine the chosen path once', async () => {
    const preview = { dataset: chosen, augment: false, seed: 0 };
    await expect(studio.previewDataset(preview)).rejects.toThrow(/was not chosen in a dialog/);
    await expect(studio.chooseFolder({ purpose: 'dataset' })).resolves.toEqual({ path: chosen });
    await expect(studio.chooseFolder({ purpose: 'export' })).resolves.toEqual({});
    expect(dialogs).toEqual(['dataset', 'export']);
    const handed = toEngine.filter((message) => 'method' in message && message.method !== 'getInfo');
    expect(handed.filter((message) => 'method' in message && message.method === 'allowFolder')).toEqual([
      { id: expect.any(Number), method: 'allowFolder', payload: { path: chosen } },
    ]);
    expect(toEngine.some((message) => 'method' in message && message.method === 'chooseFolder')).toBe(false);
    // Now chosen: the path passes the boundary and fails only as a dataset (an empty folder).
    await expect(studio.previewDataset(preview)).rejects.toThrow(`${chosen}: holds no class`);
  });

  it('answers the remote-studio calls in main, never in the engine; a face without remote studios refuses them', async () => {
    await expect(studio.savedRemote({})).resolves.toEqual({ address: 'http://127.0.0.1:5178' });
    await expect(studio.connectRemote({ address: 'http://127.0.0.1:5178', token: 'abc' })).resolves.toEqual({});
    expect(remotes).toEqual([{ address: 'http://127.0.0.1:5178', token: 'abc' }]);
    expect(toEngine.some((m) => 'method' in m && /Remote$/.test(m.method))).toBe(false);
    const served = pageChannel(relay, { validates: true });
    const replies: unknown[] = [];
    served.connect((message) => replies.push(message));
    served.receive({ id: 1, method: 'connectRemote', payload: { address: 'x', token: 'y' } });
    await settle();
    expect(replies).toEqual([
      { id: 1, ok: false, error: 'connectRemote: only the desktop app connects to a remote studio' },
    ]);
  });

  it('reports a crashed engine to the page and restarts it', async () => {
    const first = children.at(-1)!;
    first.kill('SIGKILL');
    const crash = await nextEvent(events, 'trainer-crashed');
    expect(crash).toMatchObject({
      type: 'trainer-crashed',
      message: expect.stringMatching(/exited with code 137.*restarted/),
    });
    const info = await studio.getInfo({});
    expect(info.runsRoot).toBe(runsRoot);
    expect(children).toHaveLength(2);
  });
});

describe('the engine worker, spoken to directly', () => {
  it('refuses a malformed call once, with one error reply, and keeps answering', async () => {
    const runsRoot = await mkdtemp(join(tmpdir(), 'mw-worker-runs-'));
    const engine = forkEngine({ MW_BACKEND: 'cpu', MW_RUNS_ROOT: runsRoot });
    const received: unknown[] = [];
    engine.onMessage((message) => received.push(message));
    try {
      await vi.waitFor(() => expect(received).toEqual([{ ready: { backend: expect.any(String) } }]), 30_000);
      engine.send({ id: 0, method: 'openRun', payload: { run: 5 } });
      engine.send({ id: 1, method: 'rmrf', payload: {} });
      engine.send({ id: 2, method: 'chooseFolder', payload: { purpose: 'dataset' } });
      engine.send({ id: 3, method: 'listRuns', payload: {} });
      await vi.waitFor(() => expect(received).toHaveLength(5));
      await settle();
      expect(received.slice(1)).toEqual([
        { id: 0, ok: false, error: 'openRun: run: Invalid input: expected string, received number' },
        { id: 1, ok: false, error: expect.stringMatching(/^unknown method "rmrf"; expected one of getInfo, /) },
        // The dialog is the face's: the engine has no such call.
        { id: 2, ok: false, error: expect.stringMatching(/^unknown method "chooseFolder"/) },
        { id: 3, ok: true, result: [] },
      ]);
    } finally {
      engine.kill('SIGKILL');
      await rm(runsRoot, { recursive: true, force: true });
    }
  });
});

describe('serve mode, over a real WebSocket', () => {
  it('refuses a malformed call once, with one error reply, and closes on a message that is no call', async () => {
    const runsRoot = await mkdtemp(join(tmpdir(), 'mw-serve-runs-'));
    const server = await startServer({ rendererDir: runsRoot, runsRoot, engineEnv: { MW_BACKEND: 'cpu' } });
    const origin = `http://127.0.0.1:${server.port}`;
    const socket = new WebSocket(`ws://127.0.0.1:${server.port}/api?token=${server.token}`, { origin });
    const received: unknown[] = [];
    const closed = new Promise<[number, string]>((done) =>
      socket.on('close', (code, reason) => done([code, reason.toString()])),
    );
    socket.on('message', (data) => received.push(JSON.parse(String(data))));
    try {
      await new Promise((done) => socket.once('open', done));
      socket.send(JSON.stringify({ id: 0, method: 'openRun', payload: { run: 5 } }));
      socket.send(JSON.stringify({ id: 1, method: 'allowFolder', payload: { path: '/' } }));
      socket.send(JSON.stringify({ id: 2, method: 'getInfo', payload: {} }));
      await vi.waitFor(() => expect(received).toHaveLength(3), 30_000);
      await settle();
      expect(received).toEqual([
        { id: 0, ok: false, error: 'openRun: run: Invalid input: expected string, received number' },
        // The engine's own calls are not the page's to make.
        { id: 1, ok: false, error: expect.stringMatching(/^unknown method "allowFolder"/) },
        { id: 2, ok: true, result: expect.objectContaining({ runsRoot, nativeDialogs: false }) },
      ]);
      socket.send('{"hello": "there"}');
      expect(await closed).toEqual([1008, 'malformed call: expected {id, method, payload}']);
      expect(received).toHaveLength(3);
    } finally {
      socket.terminate();
      await server.close();
      await rm(runsRoot, { recursive: true, force: true });
    }
  });
});

/** A scripted engine: records what it is sent; the test plays its side. */
class FakeEngine implements EngineProcess {
  readonly sent: unknown[] = [];
  killed = false;
  private messageListeners: ((message: unknown) => void)[] = [];
  private exitListeners: ((code: number, reason?: string) => void)[] = [];

  send(message: unknown): void {
    this.sent.push(message);
  }
  onMessage(listener: (message: unknown) => void): void {
    this.messageListeners.push(listener);
  }
  onExit(listener: (code: number, reason?: string) => void): void {
    this.exitListeners.push(listener);
  }
  kill(): void {
    this.killed = true;
    this.exit(0);
  }
  reply(message: unknown): void {
    for (const listener of this.messageListeners) listener(message);
  }
  exit(code: number, reason?: string): void {
    for (const listener of this.exitListeners) listener(code, reason);
  }
}

function scriptedRelay(options: { timeoutMs?: number; restartDelayMs?: (quickCrashes: number) => number } = {}) {
  const engines: FakeEngine[] = [];
  const events: StudioEvent[] = [];
  const warnings: string[] = [];
  const relay = new EngineRelay({
    start: () => {
      const engine = new FakeEngine();
      engines.push(engine);
      return engine;
    },
    timeoutMs: () => options.timeoutMs,
    restartDelayMs: options.restartDelayMs ?? (() => 0),
    warn: (message) => warnings.push(message),
  });
  relay.onEvent((event) => events.push(event));
  const latest = () => engines.at(-1)!;
  return { relay, engines, events, warnings, latest };
}

const tick = () => new Promise((done) => setTimeout(done, 5));

describe('relay bookkeeping', () => {
  it('holds calls until the engine is ready, then sends them in order with fresh ids', async () => {
    const { relay, latest } = scriptedRelay();
    const info = relay.call('getInfo', {});
    const runs = relay.call('listRuns', {});
    await tick();
    expect(latest().sent).toEqual([]);
    latest().reply({ ready: { backend: 'cpu' } });
    expect(latest().sent).toEqual([
      { id: 0, method: 'getInfo', payload: {} },
      { id: 1, method: 'listRuns', payload: {} },
    ]);
    latest().reply({ id: 1, ok: true, result: [] });
    latest().reply({ id: 0, ok: false, error: 'backend failed' });
    await expect(runs).resolves.toEqual([]);
    await expect(info).rejects.toThrow('backend failed');
  });

  it('gives up on a call after its timeout and ignores the late reply', async () => {
    const { relay, latest, warnings } = scriptedRelay({ timeoutMs: 30 });
    latest().reply({ ready: { backend: 'cpu' } });
    await expect(relay.call('listRuns', {})).rejects.toThrow(/listRuns: the engine did not answer within 0 s/);
    latest().reply({ id: 0, ok: true, result: [] });
    expect(warnings).toEqual([]);
  });

  it('fails the calls a dying engine had, and sends the waiting ones to its successor', async () => {
    const { relay, engines, events, latest } = scriptedRelay();
    const first = latest();
    first.reply({ ready: { backend: 'cpu' } });
    const lost = relay.call('exportExit', { run: 'r', exit: 'final', format: 'tfjs' });
    first.exit(1, 'Error: out of memory');
    await expect(lost).rejects.toThrow(
      'exportExit: the engine process exited with code 1 (Error: out of memory) before answering',
    );
    expect(events).toEqual([
      { type: 'trainer-crashed', message: expect.stringContaining('code 1 (Error: out of memory)') },
    ]);
    const waiting = relay.call('getInfo', {});
    await tick();
    expect(engines).toHaveLength(2);
    latest().reply({ ready: { backend: 'cpu' } });
    latest().reply({ id: 1, ok: true, result: { fine: true } });
    await expect(waiting).resolves.toEqual({ fine: true });
    // A message from the dead engine changes nothing.
    first.reply({ id: 1, ok: true, result: 'ghost' });
  });

  it('backs off while the engine keeps dying at start-up', async () => {
    const delays: number[] = [];
    const { engines, latest } = scriptedRelay({ restartDelayMs: (quickCrashes) => (delays.push(quickCrashes), 0) });
    for (let crash = 0; crash < 3; crash++) {
      latest().exit(1);
      await tick();
    }
    expect(delays).toEqual([1, 2, 3]);
    expect(engines).toHaveLength(4);
    expect([0, 1, 2, 3, 4, 5, 6].map(defaultRestartDelayMs)).toEqual([0, 1000, 2000, 4000, 8000, 16000, 30000]);
  });

  it('forwards events as the engine sent them (the page checks them) and drops anything else with a warning', () => {
    const { latest, events, warnings } = scriptedRelay();
    latest().reply({ ready: { backend: 'cpu' } });
    latest().reply({ event: { type: 'run', events: [] } });
    latest().reply('hello');
    // The engine asks its parent nothing: a call from it is a protocol error.
    latest().reply({ id: 0, method: 'chooseFolder', payload: { purpose: 'export' } });
    expect(events).toEqual([{ type: 'run', events: [] }]);
    expect(warnings).toEqual([
      expect.stringMatching(/^unreadable message from the engine: "hello"/),
      expect.stringMatching(/^unreadable message from the engine: \{"id":0,"method":"chooseFolder"/),
    ]);
    expect(latest().sent).toEqual([]);
  });

  it('stops the engine on quit: pending calls fail, no restart, later calls refused', async () => {
    const { relay, engines, latest, events } = scriptedRelay();
    const pending = relay.call('getInfo', {});
    await relay.stop();
    expect(latest().killed).toBe(true);
    await expect(pending).rejects.toThrow(/shutting down/);
    await expect(relay.call('getInfo', {})).rejects.toThrow(/shutting down/);
    expect(engines).toHaveLength(1);
    expect(events).toEqual([]);
  });

  it('gives long operations room to finish', () => {
    expect(defaultCallTimeoutMs('startRun')).toBeGreaterThan(defaultCallTimeoutMs('getInfo')!);
  });
});

describe('StderrTail', () => {
  it('finds the error line in a Node crash, not the version footer', () => {
    const tail = new StderrTail();
    tail.add(
      'file:///app/worker.js:12\n    throw error\n    ^\n\nError: libtensorflow.so: cannot open shared object\n',
    );
    tail.add('    at Module._extensions (node:internal)\n\nNode.js v22.20.0\n');
    expect(tail.reason).toBe('Error: libtensorflow.so: cannot open shared object');
    const plain = new StderrTail();
    plain.add('Killed\n');
    expect(plain.reason).toBe('Killed');
    expect(new StderrTail().reason).toBeUndefined();
  });
});
