/**
 * The page is served from a custom scheme, app://studio/, rather than file://: it gets a real
 * origin (so 'self' in the CSP and the IPC sender check mean exactly the built renderer), and
 * only files inside the renderer folder can be reached through it.
 */
import { confinedFile } from '../base/staticFiles.js';

export const RENDERER_SCHEME = 'app';
const RENDERER_HOST = 'studio';
export const RENDERER_ORIGIN = `${RENDERER_SCHEME}://${RENDERER_HOST}`;
export const RENDERER_ENTRY = `${RENDERER_ORIGIN}/index.html`;

/** The URL when it is one of ours. (URL.origin is "null" for schemes Node does not know, so the parts are compared.) */
function rendererUrl(url: string | undefined): URL | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === `${RENDERER_SCHEME}:` && parsed.host === RENDERER_HOST ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** The file inside `rendererDir` that an app:// URL names, or undefined for any other URL. */
export function rendererFile(rendererDir: string, url: string): string | undefined {
  const parsed = rendererUrl(url);
  return parsed ? confinedFile(rendererDir, parsed.pathname) : undefined;
}

/** Whether an IPC message comes from our own page (not from a frame that navigated elsewhere). */
export function isRendererUrl(url: string | undefined): boolean {
  return rendererUrl(url) !== undefined;
}
