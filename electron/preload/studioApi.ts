/**
 * The object the preload exposes as `window.studio`, and the port it speaks over. The preload is
 * the page's trust boundary on the desktop: a call is checked here, once, and a bad one fails in
 * the page with the field named, without leaving it. Replies and events are checked against
 * the same contract as serve mode's socket client checks them. No Electron import, so tests
 * exercise it over a plain MessageChannel.
 */
import { STUDIO_CONTRACT, type StudioApi } from '../../shared/api.js';
import { Caller } from '../../shared/peer.js';
import { studioClient } from '../../shared/studioClient.js';

/** The page's end of the MessageChannel main sends on every page load (a DOM MessagePort). */
export interface PagePort {
  postMessage(message: unknown): void;
  onmessage: ((message: { data: unknown }) => void) | null;
}

export interface PreloadStudio {
  api: StudioApi;
  /** Calls made before the port arrives wait for it. */
  attach(port: PagePort): void;
}

export function createPreloadStudio(warn: (message: string) => void = console.warn): PreloadStudio {
  const caller = new Caller({ contract: STUDIO_CONTRACT, remote: 'the studio', checked: true, onProtocolError: warn });
  return {
    api: studioClient(caller, { validates: true }),
    attach(port) {
      // Assigning onmessage (unlike addEventListener) also starts the port.
      port.onmessage = (message) => caller.receive(message.data);
      caller.connect((message) => port.postMessage(message));
    },
  };
}
