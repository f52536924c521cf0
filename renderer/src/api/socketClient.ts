/**
 * StudioApi over serve mode's WebSocket. Each call gets an id that its reply echoes; replies
 * are validated against shared/api.ts's response schemas before a caller sees them, because
 * whatever listens on the port is not trusted blindly. The socket reconnects with backoff;
 * calls made while it is down wait for it (up to a limit), calls in flight when it drops fail.
 *
 * The socket itself is reached through `OpenSocket`, so the same client runs on the browser's
 * WebSocket and, in tests, on the `ws` package.
 */
import { ApiError, RequestSchemas, ResponseSchemas, WireMessageSchema, type StudioApi, type StudioEvent, type StudioMethod, type StudioResponse } from '../../../shared/api.js';
import { describeIssues } from '../../../shared/spec.js';

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

interface PendingCall {
  method: StudioMethod;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/** A call made while disconnected: sent when the socket opens, failed if that takes too long. */
interface QueuedCall {
  id: number;
  data: string;
  call: PendingCall;
  timer: ReturnType<typeof setTimeout>;
}

const closedError = () => new Error('the studio connection is closed');

export function createSocketStudioApi(options: SocketClientOptions): SocketStudioApi {
  const retryDelay = options.retryDelayMs ?? defaultRetryDelay;
  const connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
  const reportProtocolError = options.onProtocolError ?? (() => {});
  /** Calls sent, awaiting their reply, by id. */
  const pending = new Map<number, PendingCall>();
  const queued: QueuedCall[] = [];
  const eventListeners = new Set<(event: StudioEvent) => void>();
  const stateListeners = new Set<(state: ConnectionState, reason?: string) => void>();
  let state: ConnectionState = 'connecting';
  let socket: SocketConnection | undefined;
  let nextId = 1;
  let attempt = 0;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  function setState(next: ConnectionState, reason?: string): void {
    state = next;
    for (const listener of stateListeners) listener(next, reason);
  }

  function send(connection: SocketConnection, id: number, data: string, call: PendingCall): void {
    pending.set(id, call);
    connection.send(data);
  }

  function failPending(error: (call: PendingCall) => Error): void {
    const calls = [...pending.values()];
    pending.clear();
    for (const call of calls) call.reject(error(call));
  }

  function connect(): void {
    // Each socket's handlers check they still belong to the current socket: a late event from
    // a replaced one must not touch the state.
    const current = options.openSocket(options.url, {
      open() {
        if (socket !== current) return;
        attempt = 0;
        setState('open');
        for (const waiting of queued.splice(0)) {
          clearTimeout(waiting.timer);
          send(current, waiting.id, waiting.data, waiting.call);
        }
      },
      message(data) {
        if (socket === current) receive(data);
      },
      close(reason) {
        if (socket !== current) return;
        socket = undefined;
        failPending((call) => new Error(`connection to the studio lost before ${call.method} answered (${reason})`));
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
    const parsed = WireMessageSchema.safeParse(json);
    if (!parsed.success) {
      reportProtocolError(`invalid message from the studio: ${describeIssues(parsed.error)}`);
      return;
    }
    const message = parsed.data;
    if ('event' in message) {
      for (const listener of eventListeners) listener(message.event);
      return;
    }
    const call = pending.get(message.id);
    if (!call) {
      reportProtocolError(`reply to unknown call ${message.id}`);
      return;
    }
    pending.delete(message.id);
    if (!message.ok) {
      call.reject(new ApiError(message.error));
      return;
    }
    const result = ResponseSchemas[call.method].safeParse(message.result);
    if (result.success) call.resolve(result.data);
    else call.reject(new ApiError(`${call.method}: invalid response from the studio: ${describeIssues(result.error)}`));
  }

  function call<M extends StudioMethod>(method: M, payload: unknown): Promise<StudioResponse<M>> {
    if (state === 'closed') return Promise.reject(closedError());
    const id = nextId++;
    const data = JSON.stringify({ id, method, payload });
    return new Promise<StudioResponse<M>>((resolve, reject) => {
      const waiting: PendingCall = { method, resolve: resolve as (result: unknown) => void, reject };
      if (state === 'open' && socket) {
        send(socket, id, data, waiting);
        return;
      }
      const timer = setTimeout(() => {
        queued.splice(queued.findIndex((q) => q.id === id), 1);
        reject(new Error(`${method}: not connected to the studio`));
      }, connectTimeoutMs);
      queued.push({ id, data, call: waiting, timer });
    });
  }

  const methods = Object.fromEntries(
    (Object.keys(RequestSchemas) as StudioMethod[]).map((method) => [method, (request: unknown) => call(method, request)]),
  ) as Pick<StudioApi, StudioMethod>;

  connect();

  return {
    ...methods,
    onEvent(listener) {
      eventListeners.add(listener);
      return () => eventListeners.delete(listener);
    },
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
      for (const waiting of queued.splice(0)) {
        clearTimeout(waiting.timer);
        waiting.call.reject(closedError());
      }
      failPending(closedError);
      const closing = socket;
      socket = undefined;
      closing?.close();
    },
  };
}
