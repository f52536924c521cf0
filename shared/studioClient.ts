/**
 * `window.studio` on top of the page's end of its channel, one implementation for both
 * transports: the preload's MessagePort and serve mode's WebSocket. One named function per
 * method of the studio API plus onEvent, never a generic invoke.
 */
import {
  RequestSchemas,
  STUDIO_CONTRACT,
  type StudioApi,
  type StudioContract,
  type StudioMethod,
  type StudioRequest,
} from './api.js';
import type { Caller } from './peer.js';
import { parseRequest } from './protocol.js';

/**
 * `validates`: whether this side is the page's trust boundary (the preload, which refuses a bad
 * call with the field named before it leaves the page), or the far side is (serve mode's server).
 */
export function studioClient(caller: Caller<StudioContract>, { validates }: { validates: boolean }): StudioApi {
  const call = async <M extends StudioMethod>(method: M, request: StudioRequest<M>) =>
    caller.call(method, validates ? parseRequest(STUDIO_CONTRACT, method, request) : request);
  const methods = Object.fromEntries(
    (Object.keys(RequestSchemas) as StudioMethod[]).map((method) => [
      method,
      (request: StudioRequest<typeof method>) => call(method, request),
    ]),
  ) as Pick<StudioApi, StudioMethod>;
  return { ...methods, onEvent: (listener) => caller.onEvent(listener) };
}
