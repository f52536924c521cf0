/**
 * The StudioApi the page talks to: Electron's preload bridge when there is one, else serve
 * mode's WebSocket at the page's own host, authenticated by the page's `?token=`.
 */
import type { StudioApi } from '../../../shared/api.js';
import { createSocketStudioApi, socketUrl, type OpenSocket } from './socketClient.js';

declare global {
  interface Window {
    /** Set by the Electron preload (contextBridge); absent in a browser. */
    studio?: StudioApi;
  }
}

const openBrowserSocket: OpenSocket = (url, handlers) => {
  const socket = new WebSocket(url);
  socket.onopen = () => handlers.open();
  socket.onmessage = (event) => handlers.message(typeof event.data === 'string' ? event.data : '');
  // An error is always followed by close, which carries the reason.
  socket.onclose = (event) => handlers.close(event.reason || `code ${event.code}`);
  return { send: (data) => socket.send(data), close: () => socket.close() };
};

export function studioApi(onProtocolError?: (message: string) => void): StudioApi {
  return (
    window.studio ?? createSocketStudioApi({ url: socketUrl(location), openSocket: openBrowserSocket, onProtocolError })
  );
}
