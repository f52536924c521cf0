/**
 * StudioApi over serve mode's WebSocket, speaking shared/protocol.ts through shared/peer.ts.
 * Replies and events are checked against the studio contract before a caller sees them, as the
 * preload checks them on the desktop, because whatever listens on the port is not trusted
 * blindly; the server checks the calls. The socket reconnects with backoff; calls made while it is down wait for it (up to
 * a limit), calls in flight when it drops fail.
 *
 * The socket itself is reached through `OpenSocket`, so the same client runs on the browser's
 * WebSocket and, in tests, on the `ws` package.
 */
import { STUDIO_CONTRACT, type StudioApi } from '../../../shared/api.js';
import { Caller } from '../../../shared/peer.js';
import { studioClient } from '../../../shared/studioClient.js';

export interface SocketHandlers {
  open(): void;
  message(data: string): void;
  close(reason: string): void;
}

export interface SocketConnection {
  send(data: string): void;
  close(): void;
}

export type OpenSocket = (url: string, handlers: SocketHandlers) => SocketConnection;

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What a transport that can drop tells the studio about its connection. */
export interface ConnectionSource {
  readonly connectionState: ConnectionState;
  onConnectionChange(listener: (state: ConnectionState, reason?: string) => void): () => void;
}

export interface SocketStudioApi extends StudioApi, ConnectionSource {
  /** Closes the socket for good: no reconnection, pending calls fail. */
  close(): void;
}

export interface SocketClientOptions {
  url: string;
  openSocket: OpenSocket;
  /** Wait before reconnection attempt n (0-based). */
  retryDelayMs?: (attempt: number) => number;
  /** How long a call made while disconnected waits for the connection before failing. */
  connectTimeoutMs?: number;
  /** Messages that break the protocol (unreadable, unknown id, invalid event) are dropped and reported here. */
  onProtocolError?: (message: string) => void;
}

export function hasConnectionState(api: StudioApi): api is StudioApi & ConnectionSource {
  return 'onConnectionChange' in api;
}

/** Serve mode's socket address for a page at `location`, with the page's `?token=`. */
export function socketUrl(location: { protocol: string; host: string; search: string }): string {
  const token = new URLSearchParams(location.search).get('token') ?? '';
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/api?token=${encodeURIComponent(token)}`;
}

/** 250 ms, doubling, at most 10 s: quick after a blip, gentle on a server that is gone. */
export const defaultRetryDelay = (attempt: number) => Math.min(10_000, 250 * 2 ** attempt);

const closedError = () => new Error('the studio connection is closed');

export function createSocketStudioApi(options: SocketClientOptions): SocketStudioApi {
  const retryDelay = options.retryDelayMs ?? defaultRetryDelay;
  const reportProtocolError = options.onProtocolError ?? (() => {});
  const peer = new Caller({
    contract: STUDIO_CONTRACT,
    remote: 'the studio',
    checked: true,
    connectTimeoutMs: options.connectTimeoutMs ?? 15_000,
    onProtocolError: reportProtocolError,
  });
  const stateListeners = new Set<(state: ConnectionState, reason?: string) => void>();
  let state: ConnectionState = 'connecting';
  let socket: SocketConnection | undefined;
  let attempt = 0;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  function setState(next: ConnectionState, reason?: string): void {
    state = next;
    for (const listener of stateListeners) listener(next, reason);
  }

  function connect(): void {
    // Each socket's handlers check they still belong to the current socket: a late event from
    // a replaced one must not touch the state.
    const current = options.openSocket(options.url, {
      open() {
        if (socket !== current) return;
        attempt = 0;
        setState('open');
        peer.connect((message) => current.send(JSON.stringify(message)));
      },
      message(data) {
        if (socket === current) receive(data);
      },
      close(reason) {
        if (socket !== current) return;
        socket = undefined;
        peer.disconnect((method) => `connection to the studio lost before ${method} answered (${reason})`);
        if (state === 'closed') return;
        setState('reconnecting', reason);
        retryTimer = setTimeout(connect, retryDelay(attempt++));
      },
    });
    socket = current;
  }

  function receive(data: string): void {
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      reportProtocolError(`unreadable message from the studio: ${data.slice(0, 80)}`);
      return;
    }
    peer.receive(json);
  }

  connect();

  return {
    ...studioClient(peer, { validates: false }),
    get connectionState() {
      return state;
    },
    onConnectionChange(listener) {
      stateListeners.add(listener);
      return () => stateListeners.delete(listener);
    },
    close() {
      setState('closed');
      clearTimeout(retryTimer);
      peer.close(closedError());
      const closing = socket;
      socket = undefined;
      closing?.close();
    },
  };
}
