/**
 * window.studio as the preload builds it, over a real MessageChannel to a scripted main-process
 * end: no Electron needed. The full desktop path (preload, main's page channel, relay, engine)
 * runs in engineRelay.test.ts.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ApiError,
  RequestSchemas,
  STUDIO_CONTRACT,
  type StudioContract,
  type StudioEvent,
  type StudioMethod,
} from '../../../shared/api.js';
import { Answerer } from '../../../shared/peer.js';
import { createPreloadStudio, type PagePort } from '../../../electron/preload/studioApi.js';
import { asPagePort } from './pagePort.js';

const ports: MessagePort[] = [];
afterEach(() => ports.splice(0).forEach((port) => port.close()));

/** Main's end of a fresh channel, answered by `main`; returns the page's end. */
function mainEnd(main: Answerer<StudioContract>): { page: PagePort; mainPort: MessagePort } {
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  port1.on('message', (data: unknown) => main.receive(data));
  main.connect((message) => port1.postMessage(message));
  return { page: asPagePort(port2), mainPort: port1 };
}

/** The preload's API linked to a main-process end that answers with `answer`; `crossed` records what reached main. */
function linkedPreload(answer: (method: StudioMethod, payload: unknown) => Promise<unknown> = async () => ({})) {
  const crossed: { method: string; payload: unknown }[] = [];
  const warnings: string[] = [];
  const main: Answerer<StudioContract> = new Answerer({
    contract: STUDIO_CONTRACT,
    validates: false,
    forward: (method, payload) => (crossed.push({ method, payload }), answer(method, payload)),
  });
  const { page, mainPort } = mainEnd(main);
  const studio = createPreloadStudio((warning) => warnings.push(warning));
  studio.attach(page);
  return { api: studio.api, main, crossed, warnings, mainPort };
}

const settle = () => new Promise((done) => setTimeout(done, 20));

describe('the preload API object', () => {
  it('has exactly one function per studio method, plus onEvent', () => {
    const { api } = createPreloadStudio();
    expect(Object.keys(api).sort()).toEqual([...Object.keys(RequestSchemas), 'onEvent'].sort());
    for (const member of Object.values(api)) expect(typeof member).toBe('function');
  });

  it('passes each valid call across the port once, under its own method name', async () => {
    const { api, crossed } = linkedPreload(async (method) => (method === 'listRuns' ? [] : {}));
    await expect(api.listRuns({})).resolves.toEqual([]);
    await api.openRun({ run: 'runs/one' }).catch(() => undefined);
    await api.stopRun({});
    expect(crossed).toEqual([
      { method: 'listRuns', payload: {} },
      { method: 'openRun', payload: { run: 'runs/one' } },
      { method: 'stopRun', payload: {} },
    ]);
  });

  it('refuses bad payloads once, naming the field, before anything crosses the port', async () => {
    const { api, crossed } = linkedPreload();
    const call = (method: StudioMethod, payload: unknown) =>
      (api[method] as (request: unknown) => Promise<unknown>)(payload);
    await expect(call('openRun', { run: 5 })).rejects.toThrow(/^openRun: run: /);
    await expect(call('exportExit', { run: 'r', exit: 0, format: 'exe' })).rejects.toThrow(/exportExit: .*format/);
    await expect(call('exportExit', { run: 'r', exit: 'last', format: 'tfjs' })).rejects.toThrow(/exportExit: exit: /);
    await expect(call('getInfo', { extra: true })).rejects.toThrow(/getInfo: .*extra/);
    await expect(call('chooseFolder', { purpose: 'anything' })).rejects.toThrow(/chooseFolder: .*purpose/);
    await expect(call('stopRun', {})).resolves.toEqual({});
    expect(crossed).toEqual([{ method: 'stopRun', payload: {} }]);
  });

  it("turns main's error into an ApiError with the engine's message, and refuses a malformed result", async () => {
    const { api } = linkedPreload(async (method) => {
      if (method === 'stopRun') throw new ApiError('no run is active');
      return { runsRoot: 5 };
    });
    const failure = api.stopRun({});
    await expect(failure).rejects.toBeInstanceOf(ApiError);
    await expect(failure).rejects.toThrow(/^no run is active$/);
    await expect(api.getInfo({})).rejects.toThrow(/^getInfo: invalid response from the studio: /);
  });

  it('holds calls made before the port arrives', async () => {
    const studio = createPreloadStudio();
    const info = studio.api.listRuns({});
    await settle();
    studio.attach(mainEnd(new Answerer({ contract: STUDIO_CONTRACT, validates: false, forward: async () => [] })).page);
    await expect(info).resolves.toEqual([]);
  });

  it('delivers events that pass the contract, and reports the rest', async () => {
    const { api, main, mainPort, warnings } = linkedPreload();
    const received: StudioEvent[] = [];
    const unsubscribe = api.onEvent((event) => received.push(event));
    const crash: StudioEvent = { type: 'trainer-crashed', message: 'engine exited' };
    const batch: StudioEvent = { type: 'run', events: [] };
    main.emit(crash);
    main.emit(batch);
    mainPort.postMessage({ event: { type: 'run' } });
    mainPort.postMessage({ event: { type: 'evaluation-progress', run: 'r', done: '3' } });
    mainPort.postMessage({ event: { type: 'shutdown' } });
    mainPort.postMessage('trainer-crashed');
    await settle();
    unsubscribe();
    main.emit(crash);
    await settle();
    expect(received).toEqual([crash, batch]);
    expect(warnings).toHaveLength(4);
  });
});
