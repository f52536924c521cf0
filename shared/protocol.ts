/**
 * The studio's request/reply protocol, declared once. Every channel speaks a Contract: the
 * calls its answering side serves (a request schema and a response schema per method) and the
 * events it pushes. The same three messages travel on each: a call ({id, method, payload}), its
 * reply ({id, ok, result|error}) and an event ({event}) that needs none. shared/peer.ts
 * implements both ends for every channel:
 *
 * - the page and its face (shared/api.ts's STUDIO_CONTRACT): Electron's preload and main
 *   process over a MessagePort, or serve mode's page and server over a WebSocket;
 * - a face and its engine process (ENGINE_CONTRACT): the relay (electron/relay/) and the worker
 *   (electron/engine/worker.ts), over Electron's utility-process port or Node's IPC channel.
 *
 * A request is validated once per trust boundary, by the side that answers it (or, for the
 * page, by the preload or the server before it goes further).
 */
import { z } from 'zod';
import { describeIssues } from './spec.js';

/** The calls one side of a channel answers, and the events it pushes. */
export interface Contract<M extends string = string> {
  readonly requests: { readonly [K in M]: z.ZodType };
  readonly responses: { readonly [K in M]: z.ZodType };
  readonly events: z.ZodType;
}

export type Method<C extends Contract> = keyof C['requests'] & string;
/** A request as its schema returns it: what callers pass and answering sides work with. */
export type ParsedRequestOf<C extends Contract, M extends Method<C>> = z.output<C['requests'][M]>;
export type ResponseOf<C extends Contract, M extends Method<C>> = z.output<C['responses'][M]>;
export type EventOf<C extends Contract> = z.output<C['events']>;

/** A refused or failed call, with a message for the user (never wrapped in "Error invoking ..."). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
}

/** `name` as one of the contract's methods; throws an error listing them if it is none. */
export function methodOf<C extends Contract>(contract: C, name: unknown): Method<C> {
  if (typeof name === 'string' && Object.hasOwn(contract.requests, name)) return name;
  throw new ApiError(
    `unknown method ${JSON.stringify(name)}; expected one of ${Object.keys(contract.requests).join(', ')}`,
  );
}

/**
 * `schema.safeParse(data)`, typed by the schema. zod types the output of a schema whose type is
 * a generic parameter (a contract's schema for a method M) as unknown; this says it is the
 * schema's output, as it is.
 */
export function safeParse<S extends z.ZodType>(schema: S, data: unknown): z.ZodSafeParseResult<z.output<S>> {
  return schema.safeParse(data) as z.ZodSafeParseResult<z.output<S>>;
}

/** Validates a request for `method`; throws an error naming the method and the field. */
export function parseRequest<C extends Contract, M extends Method<C>>(
  contract: C,
  method: M,
  payload: unknown,
): ParsedRequestOf<C, M> {
  const schemas: C['requests'] = contract.requests;
  const schema: C['requests'][M] = schemas[method];
  const parsed = safeParse(schema, payload ?? {});
  if (!parsed.success) throw new ApiError(`${method}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** Validates a call as it arrived: a method of the contract and its request. */
export function parseCall<C extends Contract>(
  contract: C,
  name: unknown,
  payload: unknown,
): { method: Method<C>; request: ParsedRequestOf<C, Method<C>> } {
  const method = methodOf(contract, name);
  return { method, request: parseRequest(contract, method, payload) };
}

const callId = z.number().int().nonnegative();

/** A call; its method and payload are checked against the contract by the side that answers it. */
export const CallSchema = z.object({ id: callId, method: z.string().max(64), payload: z.unknown() }).strict();
export type Call = z.infer<typeof CallSchema>;

export const ReplySchema = z.union([
  z.object({ id: callId, ok: z.literal(true), result: z.unknown() }).strict(),
  z.object({ id: callId, ok: z.literal(false), error: z.string() }).strict(),
]);
export type Reply = z.infer<typeof ReplySchema>;

/** An event; its content is checked against the contract by the calling side. */
export const EventMessageSchema = z.object({ event: z.unknown() }).strict();

/** What the answering side of a channel receives, and what the calling side receives. */
export const ToAnswererSchema = CallSchema;
export const ToCallerSchema = z.union([ReplySchema, EventMessageSchema]);
export type ToCaller = z.infer<typeof ToCallerSchema>;
export type ProtocolMessage = Call | ToCaller;

/** Engine worker -> parent, once its backend is up: calls sent before this wait for it. */
export const ReadyMessageSchema = z.object({ ready: z.object({ backend: z.string() }).strict() }).strict();
export type ReadyMessage = z.infer<typeof ReadyMessageSchema>;

/** Main -> preload, once per page load (Electron IPC): carries the MessagePort the page's calls and events travel on. */
export const STUDIO_PORT_CHANNEL = 'studio:port';
