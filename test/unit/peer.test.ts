/**
 * shared/peer.ts on its own: a Caller and an Answerer linked back to back over a small contract,
 * with the link going down and up. The relay, worker, server, preload and socket client tests
 * cover both ends inside their owners.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Answerer, Caller, type Link } from '../../shared/peer.js';
import type { Contract } from '../../shared/protocol.js';

const CONTRACT = {
  requests: {
    echo: z.object({ text: z.string() }).strict(),
    fail: z.object({}).strict(),
    slow: z.object({}).strict(),
  },
  responses: { echo: z.object({ echoed: z.string() }), fail: z.object({}), slow: z.object({}) },
  events: z.object({ tick: z.number() }),
} as const satisfies Contract;
type TestContract = typeof CONTRACT;

/** Links the two ends through a wire that can be cut; messages are delivered on the next turn, as on a real channel. */
function link(caller: Caller<TestContract>, answerer: Answerer<TestContract>): { cut(): void } {
  const to =
    (receive: (data: unknown) => void): Link =>
    (message) =>
      queueMicrotask(() => receive(structuredClone(message)));
  caller.connect(to((data) => answerer.receive(data)));
  answerer.connect(to((data) => caller.receive(data)));
  return { cut: () => (caller.disconnect((m) => `${m}: cut`), answerer.disconnect()) };
}

function answerer(slow: () => Promise<Record<string, never>> = async () => ({}), problems: string[] = []) {
  return new Answerer({
    contract: CONTRACT,
    onProtocolError: (problem) => problems.push(problem),
    handlers: {
      echo: async ({ text }) => ({ echoed: text }),
      fail: async () => {
        throw new Error('no run is active');
      },
      slow,
    },
  });
}

const caller = (options: Partial<ConstructorParameters<typeof Caller<TestContract>>[0]> = {}) =>
  new Caller({ contract: CONTRACT, remote: 'the engine', checked: true, ...options });

describe('Caller and Answerer', () => {
  it('call and answer, carrying errors back as ApiErrors', async () => {
    const near = caller();
    link(near, answerer());
    await expect(near.call('echo', { text: 'hi' })).resolves.toEqual({ echoed: 'hi' });
    await expect(near.call('fail', {})).rejects.toMatchObject({ name: 'ApiError', message: 'no run is active' });
  });

  it('refuse a malformed request once, with one error naming the field, without carrying it out', async () => {
    const problems: string[] = [];
    const sent: unknown[] = [];
    const far = answerer(undefined, problems);
    far.connect((message) => sent.push(message));
    far.receive({ id: 0, method: 'echo', payload: { text: 5 } });
    far.receive({ id: 1, method: 'rmrf', payload: {} });
    far.receive('hello');
    await new Promise((done) => setTimeout(done, 5));
    expect(sent).toEqual([
      { id: 0, ok: false, error: expect.stringMatching(/^echo: text: /) },
      { id: 1, ok: false, error: expect.stringMatching(/^unknown method "rmrf"; expected one of echo, fail, slow$/) },
    ]);
    expect(problems).toEqual([expect.stringMatching(/^malformed call/)]);
  });

  it('forwards unchecked, or checked first, when it is a relay', async () => {
    const forwarded: [string, unknown][] = [];
    const relay = (validates: boolean) =>
      new Answerer({
        contract: CONTRACT,
        validates,
        forward: async (method, payload) => (forwarded.push([method, payload]), { echoed: 'x' }),
      });
    const unchecked = caller({ checked: false });
    link(unchecked, relay(false));
    await expect(unchecked.forward('echo', { text: 5 })).resolves.toEqual({ echoed: 'x' });
    const checking = caller({ checked: false });
    link(checking, relay(true));
    await expect(checking.forward('echo', { text: 5 })).rejects.toThrow(/^echo: text: /);
    await expect(checking.forward('echo', { text: 'y' })).resolves.toEqual({ echoed: 'x' });
    expect(forwarded).toEqual([
      ['echo', { text: 5 }],
      ['echo', { text: 'y' }],
    ]);
  });

  it('hold calls until the link is up, fail the sent ones when it drops, and send the held ones to the next', async () => {
    const near = caller();
    const held = near.call('echo', { text: 'first' });
    link(near, answerer());
    await expect(held).resolves.toEqual({ echoed: 'first' });
    const stuck = caller();
    const wire = link(
      stuck,
      answerer(() => new Promise(() => {})),
    );
    const lost = stuck.call('slow', {});
    await Promise.resolve();
    wire.cut();
    await expect(lost).rejects.toThrow('slow: cut');
    const waiting = stuck.call('echo', { text: 'later' });
    link(stuck, answerer());
    await expect(waiting).resolves.toEqual({ echoed: 'later' });
  });

  it('give up after the timeout or the wait for a link, ignore late replies and report unknown ones', async () => {
    const problems: string[] = [];
    let release: () => void = () => {};
    const near = caller({
      timeoutMs: (method) => (method === 'slow' ? 20 : undefined),
      onProtocolError: (p) => problems.push(p),
    });
    link(
      near,
      answerer(() => new Promise((done) => (release = () => done({})))),
    );
    await expect(near.call('slow', {})).rejects.toThrow('slow: the engine did not answer within 0 s');
    release();
    await new Promise((done) => setTimeout(done, 5));
    near.receive({ id: 41, ok: true, result: 'forged' });
    expect(problems).toEqual([expect.stringMatching(/^reply to unknown call/)]);

    const unlinked = caller({ remote: 'the studio', connectTimeoutMs: 10 });
    await expect(unlinked.call('echo', { text: '' })).rejects.toThrow('echo: not connected to the studio');
    unlinked.close(new Error('closed'));
    await expect(unlinked.call('echo', { text: '' })).rejects.toThrow('closed');
  });

  it('check results and events against the contract where the caller checks', async () => {
    const problems: string[] = [];
    const checking = caller({ remote: 'the studio', onProtocolError: (p) => problems.push(p) });
    const lying = new Answerer({
      contract: CONTRACT,
      validates: false,
      forward: async () => ({ echoed: 42 }),
    });
    link(checking, lying);
    await expect(checking.call('echo', { text: 'x' })).rejects.toThrow(
      /^echo: invalid response from the studio: echoed/,
    );
    const ticks: unknown[] = [];
    checking.onEvent((event) => ticks.push(event));
    checking.receive({ event: { tick: 1 } });
    checking.receive({ event: { tick: 'one' } });
    expect(ticks).toEqual([{ tick: 1 }]);
    expect(problems).toEqual([expect.stringMatching(/^invalid event from the studio: tick/)]);
  });
});
