/**
 * The preload: exposes `window.studio` (shared/api.ts's StudioApi) and `window.studioShell`
 * (remote studios, shared/remote.ts) through contextBridge and nothing else; ipcRenderer itself
 * never reaches the page. Built as CommonJS, because a
 * sandboxed preload cannot be an ES module.
 */
import './zodJitless.js';
import { contextBridge, ipcRenderer } from 'electron';
import {
  REMOTE_CONNECT,
  REMOTE_SAVED,
  resultOf,
  STUDIO_CALL,
  STUDIO_EVENTS,
  type CallOutcome,
} from '../../shared/ipc.js';
import type { StudioShell } from '../../shared/remote.js';
import { createStudioApi } from './studioApi.js';

const listeners = new Set<(data: unknown) => void>();

// The main process sends a fresh port on every page load; listeners registered before it
// arrives are served by it as soon as it does.
ipcRenderer.on(STUDIO_EVENTS, (event) => {
  const [port] = event.ports;
  if (!port) return;
  // Assigning onmessage (unlike addEventListener) also starts the port.
  port.onmessage = (message: { data: unknown }) => {
    for (const listener of listeners) listener(message.data);
  };
});

const api = createStudioApi({
  invoke: (method, payload) => ipcRenderer.invoke(STUDIO_CALL, method, payload) as Promise<CallOutcome>,
  subscribe(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
});

contextBridge.exposeInMainWorld('studio', api);

/** The desktop app's own offers to the page: remote studios (shared/remote.ts); checked again in the main process. */
const shell: StudioShell = {
  connectRemote: async (remote) => {
    resultOf(
      (await ipcRenderer.invoke(REMOTE_CONNECT, {
        address: String(remote.address),
        token: String(remote.token),
      })) as CallOutcome,
    );
  },
  savedRemote: async () => resultOf((await ipcRenderer.invoke(REMOTE_SAVED)) as CallOutcome) as { address?: string },
};
contextBridge.exposeInMainWorld('studioShell', shell);
