/**
 * Every message of the studio's request/reply protocol, declared once. The same three shapes
 * travel on each channel: a call ({id, method, payload}), its reply ({id, ok, result|error}),
 * and an event ({event}) that needs none. shared/peer.ts implements the calls and replies for
 * all sides:
 *
 * - serve mode's WebSocket: the page calls the server; the server replies and pushes events;
 * - the engine worker's channel (electron/engine/worker.ts <-> electron/relay/): the parent
 *   calls the studio API; the worker replies, pushes events, says once that it is ready, and
 *   calls its parent for what only the parent can do (WORKER_CALLS: native dialogs).
 *
 * Each direction numbers its own calls; a reply answers a call of the side receiving it.
 */
import { z } from 'zod';
import { RequestSchemas, ResponseSchemas, StudioEventSchema } from './api.js';

const callId = z.number().int().nonnegative();

/** A call; the method and payload are validated by the side that answers it. */
export const CallSchema = z.object({ id: callId, method: z.string().max(64), payload: z.unknown() }).strict();
export type Call = z.infer<typeof CallSchema>;

export const ReplySchema = z.union([
  z.object({ id: callId, ok: z.literal(true), result: z.unknown() }).strict(),
  z.object({ id: callId, ok: z.literal(false), error: z.string() }).strict(),
]);
export type Reply = z.infer<typeof ReplySchema>;

/** What a peer sends and receives itself; events and the worker's ready message are its owner's. */
export type PeerMessage = Call | Reply;

export const EventMessageSchema = z.object({ event: StudioEventSchema }).strict();
export type EventMessage = z.infer<typeof EventMessageSchema>;

/** Worker -> parent, once its backend is up: calls sent before this wait for it. */
export const ReadyMessageSchema = z.object({ ready: z.object({ backend: z.string() }).strict() }).strict();
export type ReadyMessage = z.infer<typeof ReadyMessageSchema>;

/** Serve mode, page -> server. */
export const PageMessageSchema = CallSchema;
/** Serve mode, server -> page: validated in the page, which trusts whatever holds the port no more than it must. */
export const ServerMessageSchema = z.union([ReplySchema, EventMessageSchema]);
export type ServerMessage = z.infer<typeof ServerMessageSchema>;

/** Parent -> engine worker: calls of the studio API, and replies to the worker's calls. */
export const ToWorkerMessageSchema = z.union([CallSchema, ReplySchema]);
/** Engine worker -> parent. */
export const FromWorkerMessageSchema = z.union([CallSchema, ReplySchema, EventMessageSchema, ReadyMessageSchema]);
export type FromWorkerMessage = z.infer<typeof FromWorkerMessageSchema>;

/** What the engine worker may ask its parent: the native folder dialog (no answer: cancelled, or none here). */
export const WORKER_CALLS = {
  chooseFolder: { request: RequestSchemas.chooseFolder, response: ResponseSchemas.chooseFolder },
} as const;
export type WorkerCall = keyof typeof WORKER_CALLS;
