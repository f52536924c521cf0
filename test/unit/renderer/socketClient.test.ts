import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import type { Call as WireCall, ToCaller as WireMessage } from '../../../shared/protocol.js';
import {
  createSocketStudioApi,
  socketUrl,
  type ConnectionState,
  type OpenSocket,
  type SocketStudioApi,
} from '../../../renderer/src/api/socketClient.js';
import { EXPORT_DEPLOYMENT, RUN_DIR, backend, batch, start } from './fixtures.js';

/** The client on the `ws` package, as the page runs it on the browser's WebSocket. */
const openNodeSocket: OpenSocket = (url, handlers) => {
  const socket = new WebSocket(url);
  socket.on('open', () => handlers.open());
  socket.on('message', (data) => handlers.message(String(data)));
  socket.on('close', (code, reason) => handlers.close(reason.toString() || `code ${code}`));
  // An error is followed by close, which is what the client acts on.
  socket.on('error', () => {});
  return { send: (data) => socket.send(data), close: () => socket.close() };
};

const info = {
  version: '0.1.0',
  backend: { name: 'wasm', label: 'WebAssembly', device: 'CPU', gpu: false },
  backendNotes: [],
  runsRoot: '/runs',
  nativeDialogs: false,
  slurm: false,
};

type Serve = (call: WireCall, reply: (message: WireMessage | string) => void) => void;

let server: WebSocketServer;
let serve: Serve;
let requestUrls: string[];
let client: SocketStudioApi | undefined;
let protocolErrors: string[];

function connect(): SocketStudioApi {
  const { port } = server.address() as AddressInfo;
  client = createSocketStudioApi({
    url: socketUrl({ protocol: 'http:', host: `127.0.0.1:${port}`, search: '?token=s3cr%2Bt' }),
    openSocket: openNodeSocket,
    retryDelayMs: () => 20,
    connectTimeoutMs: 2000,
    onProtocolError: (message) => protocolErrors.push(message),
  });
  return client;
}

/** A port nothing listens on (until a test starts something there). */
async function freePort(): Promise<number> {
  const probe = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function whenState(api: SocketStudioApi, wanted: ConnectionState): Promise<void> {
  return new Promise((resolve) => {
    if (api.connectionState === wanted) return resolve();
    const stop = api.onConnectionChange((state) => {
      if (state !== wanted) return;
      stop();
      resolve();
    });
  });
}

beforeEach(async () => {
  requestUrls = [];
  protocolErrors = [];
  serve = (call, reply) => reply({ id: call.id, ok: true, result: info });
  server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('connection', (socket, request) => {
    requestUrls.push(request.url ?? '');
    socket.on('message', (data) =>
      serve(JSON.parse(String(data)) as WireCall, (m) => socket.send(typeof m === 'string' ? m : JSON.stringify(m))),
    );
  });
  await once(server, 'listening');
});

afterEach(async () => {
  client?.close();
  client = undefined;
  for (const socket of server.clients) socket.terminate();
  await new Promise((resolve) => server.close(resolve));
});

describe('socket StudioApi', () => {
  it('builds the address from the page location and its token', () => {
    expect(socketUrl({ protocol: 'http:', host: '127.0.0.1:5000', search: '?token=a+b%2Fc&x=1' })).toBe(
      'ws://127.0.0.1:5000/api?token=a%20b%2Fc',
    );
    expect(socketUrl({ protocol: 'https:', host: 'studio.local', search: '' })).toBe('wss://studio.local/api?token=');
  });

  it('connects with the token, queues calls until open, and validates replies', async () => {
    const api = connect();
    expect(api.connectionState).toBe('connecting');
    const result = await api.getInfo({});
    expect(result).toEqual(info);
    expect(requestUrls).toEqual(['/api?token=s3cr%2Bt']);
    expect(api.connectionState).toBe('open');
  });

  it('matches replies to calls by id, whatever their order', async () => {
    const held: Array<() => void> = [];
    serve = (call, reply) => {
      const result = call.method === 'startRun' ? { run: RUN_DIR } : { run: `${RUN_DIR}-resumed` };
      held.push(() => reply({ id: call.id, ok: true, result }));
      // Answer both once both have arrived, the second first.
      if (held.length === 2) held.reverse().forEach((send) => send());
    };
    const api = connect();
    const [started, resumed] = await Promise.all([api.startRun({ config: {} }), api.resumeRun({ run: RUN_DIR })]);
    expect(started).toEqual({ run: RUN_DIR });
    expect(resumed).toEqual({ run: `${RUN_DIR}-resumed` });
  });

  it('sends the method and payload the server expects', async () => {
    const received: WireCall[] = [];
    serve = (call, reply) => {
      received.push(call);
      reply({
        id: call.id,
        ok: true,
        result: { files: ['a/model.json'], directory: 'a', deployment: EXPORT_DEPLOYMENT },
      });
    };
    const api = connect();
    await api.exportExit({ run: RUN_DIR, exit: 1, format: 'onnx' });
    expect(received).toEqual([
      { id: expect.any(Number), method: 'exportExit', payload: { run: RUN_DIR, exit: 1, format: 'onnx' } },
    ]);
  });

  it("rejects with the server's message when a call fails", async () => {
    serve = (call, reply) => reply({ id: call.id, ok: false, error: 'arch.depth: ResNet depth must be 6n+2' });
    const api = connect();
    await expect(api.startRun({ config: {} })).rejects.toMatchObject({
      name: 'ApiError',
      message: 'arch.depth: ResNet depth must be 6n+2',
    });
  });

  it('rejects a reply that does not match the response schema', async () => {
    serve = (call, reply) => reply({ id: call.id, ok: true, result: { ...info, backend: { ...backend, gpu: 'yes' } } });
    const api = connect();
    await expect(api.getInfo({})).rejects.toThrow(/^getInfo: invalid response from the studio: backend\.gpu: /);
  });

  it('delivers valid events and reports invalid messages without delivering them', async () => {
    serve = (call, reply) => {
      reply('not json');
      reply({ event: { type: 'run', events: [{ ...batch(1), losses: 'low' }] } });
      reply({ id: 9999, ok: true, result: {} });
      reply({ event: { type: 'run', events: [{ type: 'started', start }, batch(1)] } });
      reply({ id: call.id, ok: true, result: info });
    };
    const api = connect();
    const received: unknown[] = [];
    api.onEvent((event) => received.push(event));
    await api.getInfo({});
    expect(received).toEqual([{ type: 'run', events: [{ type: 'started', start }, batch(1)] }]);
    expect(protocolErrors).toEqual([
      'unreadable message from the studio: not json',
      expect.stringMatching(/^invalid event from the studio: events\.0\.losses: /),
      expect.stringMatching(/^reply to unknown call: \{"id":9999/),
    ]);
  });

  it('fails calls in flight when the connection drops, then reconnects', async () => {
    serve = () => {
      for (const socket of server.clients) socket.terminate();
    };
    const api = connect();
    const states: ConnectionState[] = [];
    api.onConnectionChange((state) => states.push(state));
    await expect(api.listRuns({})).rejects.toThrow(/^connection to the studio lost before listRuns answered/);
    await whenState(api, 'open');
    serve = (call, reply) => reply({ id: call.id, ok: true, result: [] });
    await expect(api.listRuns({})).resolves.toEqual([]);
    expect(states).toEqual(['open', 'reconnecting', 'open']);
    expect(requestUrls).toHaveLength(2);
  });

  it('keeps a call made while the server is down until it comes up', async () => {
    const port = await freePort();
    client = createSocketStudioApi({
      url: `ws://127.0.0.1:${port}/api`,
      openSocket: openNodeSocket,
      retryDelayMs: () => 20,
      connectTimeoutMs: 5000,
    });
    const answer = client.getInfo({});
    await whenState(client, 'reconnecting');
    const late = new WebSocketServer({ host: '127.0.0.1', port });
    late.on('connection', (socket) =>
      socket.on('message', (data) =>
        socket.send(JSON.stringify({ id: (JSON.parse(String(data)) as WireCall).id, ok: true, result: info })),
      ),
    );
    await expect(answer).resolves.toEqual(info);
    client.close();
    await new Promise((resolve) => late.close(resolve));
  });

  it('fails a call that waits too long for a connection, and everything once closed', async () => {
    client = createSocketStudioApi({
      url: `ws://127.0.0.1:${await freePort()}/api`,
      openSocket: openNodeSocket,
      retryDelayMs: () => 20,
      connectTimeoutMs: 100,
    });
    await expect(client.getInfo({})).rejects.toThrow('getInfo: not connected to the studio');
    expect(client.connectionState).toBe('reconnecting');
    client.close();
    await expect(client.getInfo({})).rejects.toThrow('the studio connection is closed');
  });
});
