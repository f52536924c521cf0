/**
 * The object the preload exposes as `window.studio`: one named function per method of
 * shared/api.ts plus onEvent, never a generic invoke. Payloads are validated here as well as
 * in the main process, so a bad call fails in the page with the field named and never
 * crosses the process boundary. Built from an `invoke` and a `subscribe` so tests exercise it
 * without Electron.
 */
import { parseRequest, RequestSchemas, type StudioApi, type StudioEvent, type StudioMethod } from '../../shared/api.js';
import { isStudioEvent, resultOf, type CallOutcome } from '../../shared/ipc.js';

export interface StudioBridge {
  /** Sends a validated call to the main process. */
  invoke(method: StudioMethod, payload: unknown): Promise<CallOutcome>;
  /** Registers for raw messages from the engine's event port; returns the unsubscribe function. */
  subscribe(listener: (data: unknown) => void): () => void;
}

export function createStudioApi(bridge: StudioBridge): StudioApi {
  const call = async (method: StudioMethod, payload: unknown) => {
    const { request } = parseRequest(method, payload);
    return resultOf(await bridge.invoke(method, request));
  };
  const methods = Object.fromEntries(
    (Object.keys(RequestSchemas) as StudioMethod[]).map((method) => [
      method,
      (payload: unknown) => call(method, payload),
    ]),
  ) as Pick<StudioApi, StudioMethod>;
  return {
    ...methods,
    onEvent(listener: (event: StudioEvent) => void) {
      return bridge.subscribe((data) => {
        if (isStudioEvent(data)) listener(data);
      });
    },
  };
}
