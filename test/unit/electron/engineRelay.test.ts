/**
 * The main process' engine relay. With a real engine: electron/engine/worker.ts in a Node child
 * process (the worker speaks process.send as well as Electron's parentPort) stands in for the
 * utility process. With a scripted fake: timeouts, crashes mid-call and restart back-off.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunListingView, StudioEvent, StudioInfo } from '../../../shared/api.js';
import { DEFAULT_RUN_CONFIG, parseRunConfig } from '../../../shared/spec.js';
import { forkEngine } from '../../../electron/serve/engineProcess.js';
import {
  defaultCallTimeoutMs,
  defaultRestartDelayMs,
  EngineRelay,
  StderrTail,
  type EngineProcess,
} from '../../../electron/relay/engineRelay.js';

type ForkedEngine = ReturnType<typeof forkEngine>;

/** Serve mode's adapter, with every child remembered so the tests can check none is left running. */
function forkTracked(env: Record<string, string>, children: ForkedEngine[]): EngineProcess {
  const engine = forkEngine(env);
  children.push(engine);
  return engine;
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

describe('relay to a real engine process', () => {
  const children: ForkedEngine[] = [];
  const events: StudioEvent[] = [];
  const dialogs: string[] = [];
  let runsRoot: string;
  let relay: EngineRelay;

  beforeAll(async () => {
    runsRoot = await mkdtemp(join(tmpdir(), 'mw-relay-runs-'));
    // One readable run and one whose config is corrupt: listRuns reports both.
    const good = join(runsRoot, '2026-01-02_resnet20_multiway');
    await mkdir(good);
    await writeFile(join(good, 'config.json'), JSON.stringify(parseRunConfig(DEFAULT_RUN_CONFIG)));
    const broken = join(runsRoot, '2026-01-01_broken');
    await mkdir(broken);
    await writeFile(join(broken, 'config.json'), '{"arch": ');
    relay = new EngineRelay({
      start: () => forkTracked({ MW_BACKEND: 'cpu', MW_RUNS_ROOT: runsRoot, MW_NATIVE_DIALOGS: '1' }, children),
      emit: (event) => events.push(event),
      chooseFolder: async (purpose) => {
        dialogs.push(purpose);
        return purpose === 'dataset' ? '/data/fashion' : undefined;
      },
      restartDelayMs: () => 0,
    });
  });

  afterAll(async () => {
    await relay.stop(200);
    // Whatever did not exit within the grace period is ended here.
    for (const child of children) child.kill('SIGKILL');
    await rm(runsRoot, { recursive: true, force: true });
  });

  it('answers getInfo with the runs root it was given', async () => {
    const info = (await relay.call('getInfo', {})) as StudioInfo;
    expect(info.runsRoot).toBe(runsRoot);
    expect(info.nativeDialogs).toBe(true);
    expect(info.backend.name).toBe('cpu');
  });

  it('lists the runs under the runs root', async () => {
    const runs = (await relay.call('listRuns', {})) as RunListingView[];
    expect(runs.map((run) => run.name)).toEqual(['2026-01-02_resnet20_multiway', '2026-01-01_broken']);
    expect(runs[0]?.config?.arch).toEqual(DEFAULT_RUN_CONFIG.arch);
    expect(runs[1]?.problem).toMatch(/config\.json/);
  });

  it('rejects a bad request in the main process, naming the field', async () => {
    await expect(relay.call('openRun', { run: 5 })).rejects.toThrow(/^openRun: .*run/);
    await expect(relay.call('exportExit', { run: 'x', exit: 0, format: 'exe' })).rejects.toThrow(/format/);
    await expect(relay.call('deleteEverything', {})).rejects.toThrow(/unknown method "deleteEverything"/);
  });

  it("passes the engine's own errors through", async () => {
    await expect(relay.call('pauseRun', {})).rejects.toThrow(/^no run is active$/);
    await expect(relay.call('openRun', { run: '../../etc' })).rejects.toThrow(/outside/);
  });

  it("answers the engine's folder question with the native dialog", async () => {
    await expect(relay.call('chooseFolder', { purpose: 'dataset' })).resolves.toEqual({ path: '/data/fashion' });
    await expect(relay.call('chooseFolder', { purpose: 'export' })).resolves.toEqual({});
    expect(dialogs).toEqual(['dataset', 'export']);
  });

  it('reports a crashed engine to the renderer and restarts it', async () => {
    const first = children.at(-1)!;
    first.kill('SIGKILL');
    const crash = await nextEvent(events, 'trainer-crashed');
    expect(crash).toMatchObject({
      type: 'trainer-crashed',
      message: expect.stringMatching(/exited with code 137.*restarted/),
    });
    const info = (await relay.call('getInfo', {})) as StudioInfo;
    expect(info.runsRoot).toBe(runsRoot);
    expect(children).toHaveLength(2);
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
    emit: (event) => events.push(event),
    chooseFolder: async () => '/picked',
    timeoutMs: () => options.timeoutMs,
    restartDelayMs: options.restartDelayMs ?? (() => 0),
    warn: (message) => warnings.push(message),
  });
  const latest = () => engines.at(-1)!;
  return { relay, engines, events, warnings, latest };
}

const tick = () => new Promise((done) => setTimeout(done, 5));

describe('relay bookkeeping', () => {
  it('holds calls until the engine is ready, then sends them in order with fresh ids', async () => {
    const { relay, latest } = scriptedRelay();
    const info = relay.call('getInfo', {});
    const runs = relay.call('listRuns', undefined);
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

  it('never sends a call that fails validation', async () => {
    const { relay, latest } = scriptedRelay();
    latest().reply({ ready: { backend: 'cpu' } });
    await expect(relay.call('startRun', { config: {}, extra: 1 })).rejects.toThrow(/startRun: .*extra/);
    expect(latest().sent).toEqual([]);
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

  it('answers every call from the engine, even one it cannot serve', async () => {
    const { latest, warnings } = scriptedRelay();
    latest().reply({ ready: { backend: 'cpu' } });
    latest().reply({ id: 0, method: 'chooseFolder', payload: { purpose: 'export' } });
    latest().reply({ id: 1, method: 'formatDisk', payload: {} });
    latest().reply({ id: 2, method: 'chooseFolder', payload: { purpose: 'root' } });
    await tick();
    const answers = (latest().sent as { id: number }[]).sort((a, b) => a.id - b.id);
    expect(answers).toEqual([
      { id: 0, ok: true, result: { path: '/picked' } },
      { id: 1, ok: false, error: expect.stringMatching(/^unanswerable call from the engine: formatDisk/) },
      { id: 2, ok: false, error: expect.stringMatching(/^unanswerable call from the engine: chooseFolder/) },
    ]);
    expect(warnings).toHaveLength(2);
  });

  it('forwards events and drops malformed messages with a warning', () => {
    const { latest, events, warnings } = scriptedRelay();
    latest().reply({ event: { type: 'run', events: [] } });
    latest().reply({ event: { type: 'explode' } });
    latest().reply('hello');
    expect(events).toEqual([{ type: 'run', events: [] }]);
    expect(warnings).toHaveLength(2);
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

  it('gives long operations and dialogs room to finish', () => {
    expect(defaultCallTimeoutMs('chooseFolder')).toBeUndefined();
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
