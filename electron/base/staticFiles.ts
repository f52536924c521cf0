/**
 * The built renderer as files to serve, for both places that serve it: the desktop shell's
 * app:// handler and serve mode's HTTP server. One confinement rule (a URL path names a file
 * inside the folder, or nothing) and one set of response headers (content type, the shared
 * Content-Security-Policy, no sniffing), so the two cannot drift.
 */
import { readFile } from 'node:fs/promises';
import { extname, resolve, sep } from 'node:path';
import { CONTENT_SECURITY_POLICY } from '../../shared/contentSecurityPolicy.js';

/** What vite's build of the renderer contains; anything else is served as bytes the page cannot run. */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/**
 * The file inside `root` that a URL's (still %-encoded) path names; `/` is index.html.
 * Undefined for a malformed escape or a path that leads outside the folder.
 */
export function confinedFile(root: string, urlPath: string): string | undefined {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return undefined; // a malformed %-escape names no file
  }
  const folder = resolve(root);
  const file = resolve(folder, `.${path === '/' || path === '' ? '/index.html' : path}`);
  return file.startsWith(folder + sep) ? file : undefined;
}

export interface StaticFile {
  body: Buffer;
  headers: Record<string, string>;
}

/** A confined file (from confinedFile) with its response headers; undefined when it cannot be read. */
export async function readStaticFile(file: string): Promise<StaticFile | undefined> {
  const body = await readFile(file).catch(() => undefined);
  if (!body) return undefined;
  return {
    body,
    headers: {
      'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
    },
  };
}
