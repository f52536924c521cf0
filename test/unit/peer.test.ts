/**
 * shared/peer.ts on its own: two peers linked back to back (as the relay and the worker are),
 * calling each other, with the link going down and up. The relay, worker, server and socket
 * client tests cover it inside its owners.
 */
import { describe, expect, it } from 'vitest';
import { Peer, type Link } from '../../shared/peer.js';
import type { PeerMessage } from '../../shared/protocol.js';

/** Links `a` and `b` through a wire that can be cut; messages are delivered on the next turn, as on a real channel. */
function link(a: Peer, b: Peer): { cut(): void } {
  const to =
    (peer: Peer): Link =>
    (message: PeerMessage) =>
      queueMicrotask(() => peer.receive(structuredClone(message)));
  a.connect(to(b));
  b.connect(to(a));
  return { cut: () => (a.disconnect((m) => `${m}: cut`), b.disconnect((m) => `${m}: cut`)) };
}

describe('Peer', () => {
  it('calls in both directions and carries errors back as ApiErrors', async () => {
    const parent = new Peer({
      remote: 'the worker',
      answer: async (method) => (method === 'chooseFolder' ? { path: '/x' } : {}),
    });
    const worker = new Peer({
      remote: 'the parent',
      answer: async (method, payload) => {
        if (method === 'fail') throw new Error('no run is active');
        return { echoed: payload };
      },
    });
    link(parent, worker);
    await expect(parent.call('echo', { a: 1 })).resolves.toEqual({ echoed: { a: 1 } });
    await expect(worker.call('chooseFolder', { purpose: 'export' })).resolves.toEqual({ path: '/x' });
    await expect(parent.call('fail', {})).rejects.toMatchObject({ name: 'ApiError', message: 'no run is active' });
  });

  it('holds calls until the link is up, fails the sent ones when it drops, and sends the held ones to the next', async () => {
    const answers: string[] = [];
    const caller = new Peer({ remote: 'the engine' });
    const callee = new Peer({ remote: 'the relay', answer: async (method) => (answers.push(method), method) });
    const held = caller.call('first', {});
    link(caller, callee);
    await expect(held).resolves.toBe('first');
    // The callee never answers "stuck": its link is cut with the call in flight.
    const stuck = new Peer({ remote: 'the engine' });
    const silent = new Peer({ remote: 'the relay', answer: () => new Promise(() => {}) });
    const silentWire = link(stuck, silent);
    const lost = stuck.call('slow', {});
    await Promise.resolve();
    silentWire.cut();
    await expect(lost).rejects.toThrow('slow: cut');
    const waiting = stuck.call('later', {});
    link(stuck, callee);
    await expect(waiting).resolves.toBe('later');
    expect(answers).toEqual(['first', 'later']);
  });

  it('gives up after the timeout or the wait for a link, ignores late replies and reports unknown ones', async () => {
    const problems: string[] = [];
    let release: () => void = () => {};
    const caller = new Peer({
      remote: 'the engine',
      timeoutMs: (method) => (method === 'slow' ? 20 : undefined),
      onProtocolError: (p) => problems.push(p),
    });
    const callee = new Peer({
      remote: 'the relay',
      answer: () => new Promise((done) => (release = () => done('late'))),
    });
    link(caller, callee);
    await expect(caller.call('slow', {})).rejects.toThrow('slow: the engine did not answer within 0 s');
    release();
    await new Promise((done) => setTimeout(done, 5));
    caller.receive({ id: 41, ok: true, result: 'forged' });
    expect(problems).toEqual(['reply to unknown call 41']);

    const unlinked = new Peer({ remote: 'the studio', connectTimeoutMs: 10 });
    await expect(unlinked.call('getInfo', {})).rejects.toThrow('getInfo: not connected to the studio');
    unlinked.close(new Error('closed'));
    await expect(unlinked.call('getInfo', {})).rejects.toThrow('closed');
  });

  it('rejects a result its check refuses', async () => {
    const caller = new Peer({ remote: 'the studio' });
    link(caller, new Peer({ remote: 'the page', answer: async () => ({ runs: 'many' }) }));
    const check = (result: unknown) => {
      if (!Array.isArray(result)) throw new Error('listRuns: invalid response');
      return result;
    };
    await expect(caller.call('listRuns', {}, check)).rejects.toThrow('listRuns: invalid response');
  });
});
