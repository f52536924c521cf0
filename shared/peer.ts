/**
 * One side of a request/reply channel (shared/protocol.ts), used by every side the studio has:
 * the engine relay, the engine worker, serve mode's server and the page's socket client. It
 * numbers calls and matches replies to them, holds calls while its link is down and sends them
 * when it comes up, gives up after a per-method timeout, fails the calls a lost link had in
 * flight, and answers the other side's calls through the link they arrived on.
 *
 * The owner keeps the transport: it parses each incoming message with its channel's schema,
 * hands calls and replies to `receive`, and says when the link is up (`connect`) or down
 * (`disconnect`). No timers or ids live anywhere else.
 */
import { ApiError } from './api.js';
import type { Call, PeerMessage, Reply } from './protocol.js';

export type Link = (message: PeerMessage) => void;

export interface PeerOptions {
  /** The other side as error messages name it: "the engine", "the studio". */
  remote: string;
  /** Answers the other side's calls; a rejection becomes an error reply with its message. */
  answer?(method: string, payload: unknown): Promise<unknown>;
  /** How long a call may wait for its reply, counted from the call; undefined: no limit. */
  timeoutMs?(method: string): number | undefined;
  /** How long a call may wait for the link to come up before it is sent; undefined: no limit. */
  connectTimeoutMs?: number;
  /** Replies that match no call ever made; they are dropped. */
  onProtocolError?(message: string): void;
}

interface PendingCall {
  call: Call;
  /** Checks the result before the caller sees it; throws to reject the call instead. */
  check: (result: unknown) => unknown;
  sent: boolean;
  resolve(result: unknown): void;
  reject(error: Error): void;
  timers: ReturnType<typeof setTimeout>[];
}

export class Peer {
  private link: Link | undefined;
  private closed: Error | undefined;
  private nextId = 0;
  /** Insertion-ordered, so calls held while the link was down go out in the order they were made. */
  private readonly pending = new Map<number, PendingCall>();

  constructor(private readonly options: PeerOptions) {}

  get connected(): boolean {
    return this.link !== undefined;
  }

  /** Calls `method` on the other side; `check` validates the result (default: taken as it is). */
  call(method: string, payload: unknown, check: (result: unknown) => unknown = (result) => result): Promise<unknown> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const pending: PendingCall = { call: { id, method, payload }, check, sent: false, resolve, reject, timers: [] };
      this.pending.set(id, pending);
      const limit = this.options.timeoutMs?.(method);
      if (limit !== undefined) {
        pending.timers.push(
          setTimeout(
            () =>
              this.settle(
                id,
                new ApiError(`${method}: ${this.options.remote} did not answer within ${Math.round(limit / 1000)} s`),
              ),
            limit,
          ),
        );
      }
      if (this.link) this.transmit(pending, this.link);
      else if (this.options.connectTimeoutMs !== undefined) {
        pending.timers.push(
          setTimeout(
            () => !pending.sent && this.settle(id, new ApiError(`${method}: not connected to ${this.options.remote}`)),
            this.options.connectTimeoutMs,
          ),
        );
      }
    });
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

  /** A call or a reply from the other side, already checked against the channel's schema. */
  receive(message: PeerMessage): void {
    if ('method' in message) void this.answer(message);
    else this.replied(message);
  }

  private transmit(pending: PendingCall, link: Link): void {
    pending.sent = true;
    link(pending.call);
  }

  private replied(reply: Reply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) {
      // A reply to an earlier call that timed out or failed has nobody to go to; any other is a protocol error.
      if (reply.id >= this.nextId) this.options.onProtocolError?.(`reply to unknown call ${reply.id}`);
      return;
    }
    if (!reply.ok) return this.settle(reply.id, new ApiError(reply.error));
    let result: unknown;
    try {
      result = pending.check(reply.result);
    } catch (error) {
      return this.settle(reply.id, error as Error);
    }
    this.settle(reply.id, undefined, result);
  }

  private settle(id: number, error: Error | undefined, result?: unknown): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    for (const timer of pending.timers) clearTimeout(timer);
    if (error) pending.reject(error);
    else pending.resolve(result);
  }

  /** Every call gets a reply, on the link it came by; if that link went down meanwhile, the asker is gone. */
  private async answer(call: Call): Promise<void> {
    const link = this.link;
    let reply: Reply;
    try {
      if (!this.options.answer) throw new ApiError(`${call.method}: this side answers no calls`);
      reply = { id: call.id, ok: true, result: await this.options.answer(call.method, call.payload) };
    } catch (error) {
      reply = { id: call.id, ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    if (link && this.link === link) link(reply);
  }
}
