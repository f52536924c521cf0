/**
 * The window's security policy as plain values and functions: the page is trusted with
 * nothing but `window.studio`. Electron's defaults are spelled out rather than relied on,
 * because they have changed between versions and a test pins these.
 */
import type { WebPreferences, WindowOpenHandlerResponse } from 'electron';
import { isRendererUrl } from './rendererProtocol.js';

export function secureWebPreferences(preload: string): WebPreferences {
  return {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    webviewTag: false,
    // The spellchecker downloads dictionaries from Google's servers; the studio makes no requests.
    spellcheck: false,
  };
}

/** The page may move within itself (a #fragment), never to another document. */
export function isAllowedNavigation(currentUrl: string, targetUrl: string): boolean {
  const withoutFragment = (url: string) => url.split('#', 1)[0];
  return isRendererUrl(targetUrl) && withoutFragment(currentUrl) === withoutFragment(targetUrl);
}

/** The studio is one window; links never open new ones. */
export function denyWindowOpen(): WindowOpenHandlerResponse {
  return { action: 'deny' };
}

/** Camera, notifications, clipboard reads...: the studio needs none, so every request is refused. */
export function denyPermission(_webContents: unknown, _permission: string, callback: (granted: boolean) => void): void {
  callback(false);
}

/** Permission checks (asked without a prompt) get the same answer as requests. */
export function denyPermissionCheck(): boolean {
  return false;
}
