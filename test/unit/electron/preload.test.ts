/** window.studio as the preload builds it, over a fake invoke and event source: no Electron needed. */
import { describe, expect, it } from 'vitest';
import { ApiError, RequestSchemas, type StudioEvent, type StudioMethod } from '../../../shared/api.js';
import { isStudioEvent, outcomeOf, resultOf, type CallOutcome } from '../../../shared/ipc.js';
import { createStudioApi } from '../../../electron/preload/studioApi.js';

function fakeBridge(
  answer: (method: StudioMethod, payload: unknown) => CallOutcome = () => ({ ok: true, result: {} }),
) {
  const invoked: { method: StudioMethod; payload: unknown }[] = [];
  const listeners = new Set<(data: unknown) => void>();
  const api = createStudioApi({
    invoke: async (method, payload) => {
      invoked.push({ method, payload });
      return answer(method, payload);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  });
  const push = (data: unknown) => listeners.forEach((listener) => listener(data));
  return { api, invoked, push };
}

describe('the preload API object', () => {
  it('has exactly one function per studio method, plus onEvent', () => {
    const { api } = fakeBridge();
    expect(Object.keys(api).sort()).toEqual([...Object.keys(RequestSchemas), 'onEvent'].sort());
    for (const member of Object.values(api)) expect(typeof member).toBe('function');
  });

  it('passes each valid call to invoke once, under its own method name', async () => {
    const { api, invoked } = fakeBridge((method) => ({ ok: true, result: { echoed: method } }));
    await expect(api.listRuns({})).resolves.toEqual({ echoed: 'listRuns' });
    await api.openRun({ run: 'runs/one' });
    await api.exportExit({ run: 'runs/one', exit: 1, format: 'onnx' });
    expect(invoked).toEqual([
      { method: 'listRuns', payload: {} },
      { method: 'openRun', payload: { run: 'runs/one' } },
      { method: 'exportExit', payload: { run: 'runs/one', exit: 1, format: 'onnx' } },
    ]);
  });

  it('rejects bad payloads, naming the field, before anything is invoked', async () => {
    const { api, invoked } = fakeBridge();
    const call = (method: StudioMethod, payload: unknown) =>
      (api[method] as (request: unknown) => Promise<unknown>)(payload);
    await expect(call('openRun', { run: 5 })).rejects.toThrow(/openRun: .*run/);
    await expect(call('exportExit', { run: 'r', exit: 0, format: 'exe' })).rejects.toThrow(/exportExit: .*format/);
    await expect(call('exportExit', { run: 'r', exit: 'last', format: 'tfjs' })).rejects.toThrow(/exportExit: exit: /);
    await expect(call('getInfo', { extra: true })).rejects.toThrow(/getInfo: .*extra/);
    await expect(call('pauseRun', { run: 'r' })).rejects.toThrow(/pauseRun: .*run/);
    await expect(call('chooseFolder', { purpose: 'anything' })).rejects.toThrow(/chooseFolder: .*purpose/);
    await expect(call('openRun', { run: 'r' })).resolves.toEqual({});
    expect(invoked).toHaveLength(1);
  });

  it("turns the main process' error into an ApiError with the engine's message", async () => {
    const { api } = fakeBridge(() => ({ ok: false, error: 'no run is active' }));
    const failure = api.stopRun({});
    await expect(failure).rejects.toBeInstanceOf(ApiError);
    await expect(failure).rejects.toThrow(/^no run is active$/);
  });

  it('delivers well-formed events only, until unsubscribed', () => {
    const { api, push } = fakeBridge();
    const received: StudioEvent[] = [];
    const unsubscribe = api.onEvent((event) => received.push(event));
    const crash: StudioEvent = { type: 'trainer-crashed', message: 'engine exited' };
    const batch: StudioEvent = { type: 'run', events: [] };
    push(crash);
    push(batch);
    push({ type: 'run' });
    push({ type: 'shutdown' });
    push('trainer-crashed');
    push(null);
    unsubscribe();
    push(crash);
    expect(received).toEqual([crash, batch]);
  });
});

describe('call outcomes between main and preload', () => {
  it('carry a result, or an error message without a wrapper', async () => {
    const fine = await outcomeOf(async () => 42);
    const failed = await outcomeOf(async () => {
      throw new ApiError('openRun: run: expected string, received number');
    });
    expect(fine).toEqual({ ok: true, result: 42 });
    expect(failed).toEqual({ ok: false, error: 'openRun: run: expected string, received number' });
    expect(resultOf(fine)).toBe(42);
    expect(() => resultOf(failed)).toThrow(ApiError);
  });

  it('events are checked by shape', () => {
    expect(isStudioEvent({ type: 'trainer-crashed', message: 'x', run: 'r' })).toBe(true);
    expect(isStudioEvent({ type: 'trainer-crashed' })).toBe(false);
    expect(isStudioEvent({ type: 'run', events: 'many' })).toBe(false);
    expect(isStudioEvent({ type: 'menu-command', command: 'new-run' })).toBe(true);
    expect(isStudioEvent({ type: 'menu-command', command: 'connect-remote' })).toBe(true);
    // Study progress reaches the desktop app's page too.
    expect(isStudioEvent({ type: 'study', study: { record: {}, rows: [], missing: [] } })).toBe(true);
    expect(isStudioEvent({ type: 'study' })).toBe(false);
    expect(isStudioEvent({ type: 'menu-command', command: 'format-disk' })).toBe(false);
    expect(isStudioEvent({ type: 'evaluation-progress', run: 'r', split: 'test', done: 3, total: 9 })).toBe(true);
    expect(isStudioEvent({ type: 'evaluation-progress', run: 'r', done: '3' })).toBe(false);
  });
});
