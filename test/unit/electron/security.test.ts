/** The window's security policy, checked as plain values: no Electron binary is needed. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY, META_CONTENT_SECURITY_POLICY } from '../../../shared/contentSecurityPolicy.js';
import { confinedFile, readStaticFile } from '../../../electron/base/staticFiles.js';
import { applicationMenu } from '../../../electron/main/menu.js';
import { isRendererUrl, RENDERER_ENTRY, rendererFile } from '../../../electron/main/rendererProtocol.js';
import {
  denyPermission,
  denyPermissionCheck,
  denyWindowOpen,
  isAllowedNavigation,
  secureWebPreferences,
} from '../../../electron/main/security.js';

const directives = new Map(
  CONTENT_SECURITY_POLICY.split(';').map((part) => {
    const [name = '', ...sources] = part.trim().split(/\s+/);
    return [name, sources] as const;
  }),
);

describe('content security policy', () => {
  it('allows only the app itself, with no eval and nothing inline', () => {
    expect(directives.get('default-src')).toEqual(["'self'"]);
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(directives.get('style-src')).toEqual(["'self'"]);
    expect(directives.get('connect-src')).toEqual(["'self'"]);
    expect(directives.get('object-src')).toEqual(["'none'"]);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-eval|unsafe-inline|\*/);
  });

  it('is the one renderer/index.html states, less what a meta element cannot carry', () => {
    const html = readFileSync('renderer/index.html', 'utf8');
    const metas = [...html.matchAll(/<meta\s+http-equiv="Content-Security-Policy"\s+content="([^"]*)"/g)].map(
      (m) => m[1],
    );
    expect(metas).toEqual([META_CONTENT_SECURITY_POLICY]);
    expect(CONTENT_SECURITY_POLICY).toBe(`${META_CONTENT_SECURITY_POLICY}; frame-ancestors 'none'`);
  });
});

describe('static files (the shell and serve mode)', () => {
  it('names files inside the folder only', () => {
    const root = '/app/out/renderer';
    expect(confinedFile(root, '/')).toBe('/app/out/renderer/index.html');
    expect(confinedFile(root, '/assets/a%20b.js')).toBe('/app/out/renderer/assets/a b.js');
    expect(confinedFile(root, '/..%2F..%2Fetc%2Fpasswd')).toBeUndefined();
    expect(confinedFile(root, '/%2e%2e')).toBeUndefined();
    expect(confinedFile(root, '/%E0%A4%A')).toBeUndefined();
  });

  it('serves a file with the shared policy and its content type, and nothing for a missing one', async () => {
    const root = await mkdtemp(join(tmpdir(), 'mw-static-'));
    try {
      await writeFile(join(root, 'index.html'), '<!doctype html>');
      const served = await readStaticFile(confinedFile(root, '/')!);
      expect(served?.body.toString()).toBe('<!doctype html>');
      expect(served?.headers).toMatchObject({
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': CONTENT_SECURITY_POLICY,
        'x-content-type-options': 'nosniff',
      });
      expect(await readStaticFile(confinedFile(root, '/missing.js')!)).toBeUndefined();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('web preferences', () => {
  it('isolates and sandboxes the page, with no Node and web security on', () => {
    const preferences = secureWebPreferences('/app/out/electron/preload/index.cjs');
    expect(preferences).toMatchObject({
      preload: '/app/out/electron/preload/index.cjs',
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
    });
  });
});

describe('navigation and new windows', () => {
  it('allows moving within the page only', () => {
    expect(isAllowedNavigation(RENDERER_ENTRY, `${RENDERER_ENTRY}#runs`)).toBe(true);
    expect(isAllowedNavigation(`${RENDERER_ENTRY}#live`, RENDERER_ENTRY)).toBe(true);
    expect(isAllowedNavigation(RENDERER_ENTRY, 'app://studio/other.html')).toBe(false);
    expect(isAllowedNavigation(RENDERER_ENTRY, 'https://example.com/')).toBe(false);
    expect(isAllowedNavigation(RENDERER_ENTRY, 'file:///etc/passwd')).toBe(false);
    expect(isAllowedNavigation(RENDERER_ENTRY, 'not a url')).toBe(false);
  });

  it('denies every window.open and every permission', () => {
    expect(denyWindowOpen()).toEqual({ action: 'deny' });
    const answers: boolean[] = [];
    denyPermission(undefined, 'media', (granted) => answers.push(granted));
    denyPermission(undefined, 'notifications', (granted) => answers.push(granted));
    expect(answers).toEqual([false, false]);
    expect(denyPermissionCheck()).toBe(false);
  });
});

describe('the app:// scheme', () => {
  const root = '/app/out/renderer';

  it('serves files from the renderer folder only', () => {
    expect(rendererFile(root, RENDERER_ENTRY)).toBe('/app/out/renderer/index.html');
    expect(rendererFile(root, 'app://studio/')).toBe('/app/out/renderer/index.html');
    expect(rendererFile(root, 'app://studio/assets/index-1.js?v=2#x')).toBe('/app/out/renderer/assets/index-1.js');
    expect(rendererFile(root, 'app://studio/assets/../index.html')).toBe('/app/out/renderer/index.html');
    // The URL parser already folds encoded dot segments into the path, which stays inside the root.
    expect(rendererFile(root, 'app://studio/%2e%2e/%2e%2e/etc/passwd')).toBe('/app/out/renderer/etc/passwd');
    expect(rendererFile(root, 'app://studio/..%2F..%2Fetc%2Fpasswd')).toBeUndefined();
    expect(rendererFile(root, 'app://studio/%E0%A4%A')).toBeUndefined();
    expect(rendererFile(root, 'app://elsewhere/index.html')).toBeUndefined();
    expect(rendererFile(root, 'file:///app/out/renderer/index.html')).toBeUndefined();
  });

  it('accepts IPC only from the studio page', () => {
    expect(isRendererUrl(`${RENDERER_ENTRY}#exits`)).toBe(true);
    expect(isRendererUrl('https://studio/index.html')).toBe(false);
    expect(isRendererUrl('app://evil/index.html')).toBe(false);
    expect(isRendererUrl(undefined)).toBe(false);
    expect(isRendererUrl('')).toBe(false);
  });
});

describe('application menu', () => {
  const actions = { newRun() {}, connectRemote() {}, openRunsFolder() {}, about() {} };
  const labels = (isDev: boolean, isMac = false) =>
    applicationMenu({ isMac, isDev, actions }).map((item) => item.label ?? item.role);

  it('offers reload and the developer tools only in development', () => {
    expect(labels(true)).toEqual(['File', 'editMenu', 'View', 'help']);
    expect(labels(false)).toEqual(['File', 'editMenu', 'help']);
    expect(labels(false, true)).toEqual(['appMenu', 'File', 'editMenu', 'help']);
  });
});
