/**
 * The two ends of a channel speaking a Contract (shared/protocol.ts), used on every hop the
 * studio has: the page's client (the preload, serve mode's socket client), the faces (the
 * Electron main process, serve mode's server) and the engine relay and worker.
 *
 * - A Caller numbers calls and matches replies to them, holds calls while its link is down and
 *   sends them when it comes up, gives up after a per-method timeout, fails the calls a lost
 *   link had in flight, and hands the events it receives, checked, to its listeners.
 * - An Answerer answers calls through the link they arrived on and pushes events.
 *
 * The owner keeps the transport: it hands each incoming message as it arrived to `receive`,
 * which checks its shape, and says when the link is up (`connect`) or down (`disconnect`). No
 * timers or ids live anywhere else.
 */
import {
  ApiError,
  methodOf,
  parseCall,
  safeParse,
  ToAnswererSchema,
  ToCallerSchema,
  type Call,
  type Contract,
  type EventOf,
  type Method,
  type ParsedRequestOf,
  type ProtocolMessage,
  type Reply,
  type ResponseOf,
} from './protocol.js';
import { describeIssues } from './spec.js';

export type Link = (message: ProtocolMessage) => void;

export interface CallerOptions<C extends Contract> {
  contract: C;
  /** The other side as error messages name it: "the engine", "the studio". */
  remote: string;
  /**
   * Whether results and events are checked against the contract before anyone sees them: where
   * the answering side is not trusted blindly (the page's clients). Unchecked, they are taken as
   * the contract types them (the engine's relay: the engine is the studio's own process).
   */
  checked: boolean;
  /** How long a call may wait for its reply, counted from the call; undefined: no limit. */
  timeoutMs?(method: Method<C>): number | undefined;
  /** How long a call may wait for the link to come up before it is sent; undefined: no limit. */
  connectTimeoutMs?: number;
  /** Messages that break the protocol (a reply to no call, a malformed message or event); they are dropped. */
  onProtocolError?(message: string): void;
}

interface PendingCall {
  call: Call;
  sent: boolean;
  resolve(result: unknown): void;
  reject(error: Error): void;
  timers: ReturnType<typeof setTimeout>[];
}

/** The calling end of a channel: the page towards its face, a face towards its engine. */
export class Caller<C extends Contract> {
  private link: Link | undefined;
  private closed: Error | undefined;
  private nextId = 0;
  /** Insertion-ordered, so calls held while the link was down go out in the order they were made. */
  private readonly pending = new Map<number, PendingCall>();
  private readonly listeners = new Set<(event: EventOf<C>) => void>();

  constructor(private readonly options: CallerOptions<C>) {}

  get connected(): boolean {
    return this.link !== undefined;
  }

  /** Calls `method` on the other side; resolves with its result, checked if this caller checks. */
  async call<M extends Method<C>>(method: M, request: ParsedRequestOf<C, M>): Promise<ResponseOf<C, M>> {
    const result = await this.send(method, request);
    if (!this.options.checked) return result as ResponseOf<C, M>;
    const schemas: C['responses'] = this.options.contract.responses;
    const schema: C['responses'][M] = schemas[method];
    const parsed = safeParse(schema, result);
    if (!parsed.success)
      throw new ApiError(`${method}: invalid response from ${this.options.remote}: ${describeIssues(parsed.error)}`);
    return parsed.data;
  }

  /**
   * Passes on a call this side did not make and does not check (a relay's): the answering side
   * validates the payload, and the result goes back to whoever asked, as it came.
   */
  forward(method: Method<C>, payload: unknown): Promise<unknown> {
    return this.send(method, payload);
  }

  /** Subscribes to the other side's events; returns the unsubscribe function. */
  onEvent(listener: (event: EventOf<C>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The link is up: calls held while it was down go out now, in order. */
  connect(link: Link): void {
    this.link = link;
    for (const pending of this.pending.values()) if (!pending.sent) this.transmit(pending, link);
  }

  /** The link is down: the calls sent over it fail with `why(method)`; calls not yet sent wait for the next link. */
  disconnect(why: (method: string) => string): void {
    this.link = undefined;
    for (const [id, pending] of this.pending) if (pending.sent) this.settle(id, new ApiError(why(pending.call.method)));
  }

  /** For good: every pending call and every later one fails with `error`. */
  close(error: Error): void {
    this.closed = error;
    this.link = undefined;
    for (const id of [...this.pending.keys()]) this.settle(id, error);
  }

  /** A message from the other side as it arrived: a reply or an event. */
  receive(data: unknown): void {
    const message = ToCallerSchema.safeParse(data);
    if (!message.success) return this.protocolError(`unreadable message from ${this.options.remote}`, data);
    if ('event' in message.data) this.deliver(message.data.event);
    else this.replied(message.data);
  }

  private send(method: string, payload: unknown): Promise<unknown> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const pending: PendingCall = { call: { id, method, payload }, sent: false, resolve, reject, timers: [] };
      this.pending.set(id, pending);
      const limit = this.options.timeoutMs?.(method);
      if (limit !== undefined) {
        const late = () => `${method}: ${this.options.remote} did not answer within ${Math.round(limit / 1000)} s`;
        pending.timers.push(setTimeout(() => this.settle(id, new ApiError(late())), limit));
      }
      if (this.link) this.transmit(pending, this.link);
      else if (this.options.connectTimeoutMs !== undefined) {
        const unsent = () =>
          !pending.sent && this.settle(id, new ApiError(`${method}: not connected to ${this.options.remote}`));
        pending.timers.push(setTimeout(unsent, this.options.connectTimeoutMs));
      }
    });
  }

  private deliver(data: unknown): void {
    let event = data as EventOf<C>;
    if (this.options.checked) {
      const schema: C['events'] = this.options.contract.events;
      const parsed = safeParse(schema, data);
      if (!parsed.success)
        return this.protocolError(`invalid event from ${this.options.remote}: ${describeIssues(parsed.error)}`, data);
      event = parsed.data;
    }
    for (const listener of this.listeners) listener(event);
  }

  private protocolError(problem: string, data: unknown): void {
    this.options.onProtocolError?.(`${problem}: ${JSON.stringify(data)?.slice(0, 200)}`);
  }

  private transmit(pending: PendingCall, link: Link): void {
    pending.sent = true;
    link(pending.call);
  }

  private replied(reply: Reply): void {
    // A reply to an earlier call that timed out or failed has nobody to go to; any other is a protocol error.
    if (!this.pending.has(reply.id)) {
      if (reply.id >= this.nextId) this.protocolError('reply to unknown call', reply);
      return;
    }
    if (reply.ok) this.settle(reply.id, undefined, reply.result);
    else this.settle(reply.id, new ApiError(reply.error));
  }

  private settle(id: number, error: Error | undefined, result?: unknown): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    for (const timer of pending.timers) clearTimeout(timer);
    if (error) pending.reject(error);
    else pending.resolve(result);
  }
}

/** One handler per method of the contract, for the side that carries calls out: each gets its request checked. */
export type Handlers<C extends Contract> = {
  [M in Method<C>]: (request: ParsedRequestOf<C, M>) => Promise<ResponseOf<C, M>>;
};

/** Carries out a checked call with its method's handler. */
export function carryOut<C extends Contract, M extends Method<C>>(
  handlers: Handlers<C>,
  method: M,
  request: ParsedRequestOf<C, M>,
): Promise<ResponseOf<C, M>> {
  const handler: Handlers<C>[M] = handlers[method];
  return handler(request);
}

/** Passes a call on, for a relay; `payload` was checked only if the answerer validates. */
export type Forward<C extends Contract> = (method: Method<C>, payload: unknown) => Promise<unknown>;

export type AnswererOptions<C extends Contract> = {
  contract: C;
  /** Malformed messages, which have no call id to reply to; they are dropped. */
  onProtocolError?(message: string): void;
} & (
  | { handlers: Handlers<C> }
  /** `validates`: this side is the trust boundary for the caller (serve mode's server); else the next side is. */
  | { forward: Forward<C>; validates: boolean }
);

/** The answering end of a channel: a face towards the page, the engine towards its face. */
export class Answerer<C extends Contract> {
  private link: Link | undefined;

  constructor(private readonly options: AnswererOptions<C>) {}

  /** The link calls arrive on and replies and events go out on. */
  connect(link: Link): void {
    this.link = link;
  }

  /** Replies to calls that came over the old link are dropped: their asker is gone. */
  disconnect(): void {
    this.link = undefined;
  }

  /** Pushes an event to the other side, if it is there. */
  emit(event: EventOf<C>): void {
    this.link?.({ event });
  }

  /** A message from the other side as it arrived: a call, answered on the link it came by. */
  receive(data: unknown): void {
    const call = ToAnswererSchema.safeParse(data);
    if (call.success) void this.answer(call.data);
    else
      this.options.onProtocolError?.(`malformed call: expected {id, method, payload}: ${describeIssues(call.error)}`);
  }

  private async answer(call: Call): Promise<void> {
    const link = this.link;
    let reply: Reply;
    try {
      reply = { id: call.id, ok: true, result: await this.resultOf(call) };
    } catch (error) {
      reply = { id: call.id, ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    if (link && this.link === link) link(reply);
  }

  private resultOf({ method, payload }: Call): Promise<unknown> {
    const { options } = this;
    if ('handlers' in options) {
      const { method: name, request } = parseCall(options.contract, method, payload);
      return carryOut(options.handlers, name, request);
    }
    if (!options.validates) return options.forward(methodOf(options.contract, method), payload);
    const { method: name, request } = parseCall(options.contract, method, payload);
    return options.forward(name, request);
  }
}
