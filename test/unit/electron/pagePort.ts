/** Node's MessagePort (worker_threads) as the page's DOM MessagePort looks to the preload. */
import type { MessagePort } from 'node:worker_threads';
import type { PagePort } from '../../../electron/preload/studioApi.js';

export function asPagePort(port: MessagePort): PagePort {
  const page: PagePort = { postMessage: (message) => port.postMessage(message), onmessage: null };
  port.on('message', (data: unknown) => page.onmessage?.({ data }));
  return page;
}
