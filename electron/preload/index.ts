/**
 * The preload: exposes `window.studio` (shared/api.ts's StudioApi) through contextBridge and
 * nothing else; ipcRenderer itself never reaches the page. Calls, replies and events travel on
 * a MessagePort the main process sends once the page has loaded. Built as CommonJS, because a
 * sandboxed preload cannot be an ES module.
 */
import './zodJitless.js';
import { contextBridge, ipcRenderer } from 'electron';
import { STUDIO_PORT_CHANNEL } from '../../shared/protocol.js';
import { createPreloadStudio } from './studioApi.js';

const studio = createPreloadStudio();

ipcRenderer.on(STUDIO_PORT_CHANNEL, (event) => {
  const [port] = event.ports;
  if (port) studio.attach(port);
});

contextBridge.exposeInMainWorld('studio', studio.api);
