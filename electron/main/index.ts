/**
 * The Electron main process: one window, the menu, native dialogs, and the relay between the
 * page and the engine. The engine (training, evaluation, export) runs in a utility process,
 * never here: a tfjs step blocks its thread, and a blocked main process freezes the window.
 *
 * The policies themselves (CSP, webPreferences, navigation, window state, call relay) live in
 * modules without an Electron import, where tests check them; this file wires them to Electron.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  app,
  BrowserWindow,
  dialog,
  Menu,
  MessageChannelMain,
  protocol,
  safeStorage,
  screen,
  session,
  shell,
  utilityProcess,
  type MessageBoxOptions,
  type MessagePortMain,
  type OpenDialogOptions,
  type WebContents,
} from 'electron';
import type { StudioContract } from '../../shared/api.js';
import { CONTENT_SECURITY_POLICY } from '../../shared/contentSecurityPolicy.js';
import type { Answerer } from '../../shared/peer.js';
import { STUDIO_PORT_CHANNEL } from '../../shared/protocol.js';
import { remoteStudioUrl, type RemoteStudio } from '../../shared/remote.js';
import { readStaticFile } from '../base/staticFiles.js';
import { engineProcess } from '../relay/engineProcess.js';
import { EngineRelay, type EngineProcess } from '../relay/engineRelay.js';
import { pageChannel, type FolderPurpose } from '../relay/pageChannel.js';
import { BUILT_FILES } from './layout.js';
import { applicationMenu } from './menu.js';
import { isRemoteNavigation, RemoteStudioStore, remoteToConnect } from './remoteStudio.js';
import { isRendererUrl, RENDERER_ENTRY, RENDERER_SCHEME, rendererFile } from './rendererProtocol.js';
import {
  denyPermission,
  denyPermissionCheck,
  denyWindowOpen,
  isAllowedNavigation,
  secureWebPreferences,
} from './security.js';
import { loadWindowState, MIN_WINDOW_SIZE, saveWindowState } from './windowState.js';

// Must happen before 'ready': a standard, secure scheme gets an origin of its own.
protocol.registerSchemesAsPrivileged([
  { scheme: RENDERER_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
]);

const fromApp = (path: string) => join(app.getAppPath(), path);

let mainWindow: BrowserWindow | undefined;
/** Main's end of the port the page's calls and events travel on; replaced on every page load. */
let pagePort: MessagePortMain | undefined;
/** The window-state write started when the window closed; quitting waits for it. */
let savingWindowState: Promise<void> = Promise.resolve();

function runsRoot(): string {
  // Set by whoever starts the app for a scratch folder of runs (the desktop end-to-end test).
  if (process.env.MW_RUNS_ROOT) return process.env.MW_RUNS_ROOT;
  try {
    return join(app.getPath('documents'), 'Mw Studio', 'runs');
  } catch {
    return join(app.getPath('userData'), 'runs'); // no Documents folder (some minimal Linux setups)
  }
}

function startEngine(): EngineProcess {
  // process.env's values are all strings; its type allows undefined only for absent keys.
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    MW_RUNS_ROOT: runsRoot(),
    MW_NATIVE_DIALOGS: '1',
    MW_VERSION: app.getVersion(),
  };
  // Packaged, the embedded dataset is in resources/ next to app.asar (extraResources), not in it.
  if (app.isPackaged) env.MW_RESOURCES = join(process.resourcesPath, 'resources');
  const child = utilityProcess.fork(fromApp(BUILT_FILES.engine), [], {
    serviceName: 'Mw Studio engine',
    env,
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  return engineProcess(child, (message) => child.postMessage(message));
}

async function chooseFolder(purpose: FolderPurpose): Promise<string | undefined> {
  const options: OpenDialogOptions =
    purpose === 'backbone'
      ? {
          title: 'Choose a pretrained backbone (ONNX)',
          properties: ['openFile'],
          filters: [{ name: 'ONNX model', extensions: ['onnx'] }],
        }
      : {
          title: purpose === 'dataset' ? 'Choose the dataset folder' : 'Choose where to export',
          properties: ['openDirectory', 'createDirectory'],
        };
  const result = mainWindow ? await dialog.showOpenDialog(mainWindow, options) : await dialog.showOpenDialog(options);
  return result.canceled ? undefined : result.filePaths[0];
}

/**
 * A fresh MessageChannel per page load, and only for our own page (not a frame that somehow
 * navigated elsewhere): the preload of the new page takes its end.
 */
function connectPage(contents: WebContents, page: Answerer<StudioContract>): void {
  pagePort?.close();
  page.disconnect();
  if (!isRendererUrl(contents.getURL())) return;
  const { port1, port2 } = new MessageChannelMain();
  pagePort = port1;
  port1.on('message', (message) => page.receive(message.data));
  port1.start();
  page.connect((message) => port1.postMessage(message));
  contents.postMessage(STUDIO_PORT_CHANNEL, null, [port2]);
}

function serveRenderer(): void {
  const rendererDir = fromApp(BUILT_FILES.renderer);
  protocol.handle(RENDERER_SCHEME, async (request) => {
    // Header events of session.webRequest do not fire for custom schemes, so the policy comes with the file.
    const file = rendererFile(rendererDir, request.url);
    const served = file && (await readStaticFile(file));
    if (!served) return new Response('not found', { status: 404 });
    return new Response(new Uint8Array(served.body), { headers: served.headers });
  });
}

function secureSession(): void {
  const { webRequest } = session.defaultSession;
  // Any http(s) response that reaches a page in this session (none should) carries the policy as well.
  webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] } });
  });
  session.defaultSession.setPermissionRequestHandler(denyPermission);
  session.defaultSession.setPermissionCheckHandler(denyPermissionCheck);
}

async function openRunsFolder(): Promise<void> {
  const folder = runsRoot();
  await mkdir(folder, { recursive: true });
  const problem = await shell.openPath(folder);
  if (problem) dialog.showErrorBox('Could not open the runs folder', `${folder}: ${problem}`);
}

/**
 * A remote studio (serve mode on a cluster's login node, through an SSH tunnel) in a window of
 * its own: its page is the same renderer, served by that engine, talking to it over its socket.
 * No preload (the page needs no bridge there), sandboxed, and kept on that studio's origin.
 */
function openRemoteWindow(remote: RemoteStudio): void {
  const window = new BrowserWindow({
    width: 1400,
    height: 900,
    minWidth: MIN_WINDOW_SIZE.width,
    minHeight: MIN_WINDOW_SIZE.height,
    title: `Mw Studio: ${remote.address}`,
    webPreferences: { sandbox: true, contextIsolation: true, nodeIntegration: false, webSecurity: true },
  });
  const contents = window.webContents;
  contents.on('will-navigate', (event) => {
    if (!isRemoteNavigation(remote, event.url)) event.preventDefault();
  });
  contents.setWindowOpenHandler(denyWindowOpen);
  void window.loadURL(remoteStudioUrl(remote)).catch((error: Error) => {
    window.close();
    dialog.showErrorBox(
      'Could not reach the remote studio',
      `${remote.address}: ${error.message}\n\nIs the SSH tunnel open and mw-studio serve running on the login node?`,
    );
  });
}

/** The page's remote-studio form: checked here, kept through the OS keychain (safeStorage), opened. */
function remoteStudios() {
  const store = new RemoteStudioStore(join(app.getPath('userData'), 'remote-studio.bin'), safeStorage);
  return {
    async connect(given: unknown): Promise<void> {
      const remote = remoteToConnect(given, await store.load());
      openRemoteWindow(remote);
      await store.save(remote);
    },
    async saved(): Promise<{ address?: string }> {
      const kept = await store.load();
      return kept ? { address: kept.address } : {};
    },
  };
}

function showAbout(): void {
  const options: MessageBoxOptions = {
    type: 'info',
    title: 'About Mw Studio',
    message: `Mw Studio ${app.getVersion()}`,
    detail: [
      'Train multi-exit Mw-networks with multi-way backpropagation (Guo et al., arXiv 1611.01773) and pick the depth you need.',
      `Electron ${process.versions.electron} · Chromium ${process.versions.chrome} · Node ${process.versions.node}`,
      `Runs: ${runsRoot()}`,
    ].join('\n\n'),
  };
  void (mainWindow ? dialog.showMessageBox(mainWindow, options) : dialog.showMessageBox(options));
}

async function createWindow(page: Answerer<StudioContract>): Promise<void> {
  const stateFile = join(app.getPath('userData'), 'window-state.json');
  const workAreas = [screen.getPrimaryDisplay(), ...screen.getAllDisplays()].map((display) => display.workArea);
  const state = await loadWindowState(stateFile, workAreas);
  const window = new BrowserWindow({
    ...state.bounds,
    minWidth: MIN_WINDOW_SIZE.width,
    minHeight: MIN_WINDOW_SIZE.height,
    title: 'Mw Studio',
    // Shown once painted, so the user never sees an empty frame.
    show: false,
    webPreferences: secureWebPreferences(fromApp(BUILT_FILES.preload)),
  });
  mainWindow = window;
  if (state.maximized) window.maximize();
  window.once('ready-to-show', () => window.show());
  window.on('close', () => {
    savingWindowState = saveWindowState(stateFile, {
      bounds: window.getNormalBounds(),
      maximized: window.isMaximized(),
    }).catch((error: Error) => console.warn(`[window state] ${error.message}`));
  });
  window.on('closed', () => {
    if (mainWindow === window) mainWindow = undefined;
    pagePort?.close();
    pagePort = undefined;
    page.disconnect();
  });

  const contents = window.webContents;
  contents.on('will-navigate', (event) => {
    if (!isAllowedNavigation(contents.getURL(), event.url)) event.preventDefault();
  });
  contents.setWindowOpenHandler(denyWindowOpen);
  contents.on('did-finish-load', () => connectPage(contents, page));
  await window.loadURL(RENDERER_ENTRY);
}

function focusWindow(): void {
  if (!mainWindow) return;
  if (mainWindow.isMinimized()) mainWindow.restore();
  mainWindow.focus();
}

/** Quitting waits for the window state to be written and the engine to checkpoint an active run. */
function shutDownBeforeQuit(engine: EngineRelay): void {
  let finished = false;
  app.on('will-quit', (event) => {
    if (finished) return;
    event.preventDefault();
    void Promise.all([savingWindowState, engine.stop()]).finally(() => {
      finished = true;
      app.quit();
    });
  });
}

async function main(): Promise<void> {
  await app.whenReady();
  secureSession();
  serveRenderer();
  const engine = new EngineRelay({ start: startEngine });
  // The preload has checked the page's calls; the engine checks them again for its own process.
  const page = pageChannel(engine, { validates: false, chooseFolder, remote: remoteStudios() });
  engine.onEvent((event) => page.emit(event));
  shutDownBeforeQuit(engine);
  const isMac = process.platform === 'darwin';
  Menu.setApplicationMenu(
    Menu.buildFromTemplate(
      applicationMenu({
        isMac,
        isDev: !app.isPackaged,
        // Menu commands reach the page as declared events on the same port as the engine's (shared/api.ts).
        actions: {
          newRun: () => page.emit({ type: 'menu-command', command: 'new-run' }),
          connectRemote: () => page.emit({ type: 'menu-command', command: 'connect-remote' }),
          openRunsFolder: () => void openRunsFolder(),
          about: showAbout,
        },
      }),
    ),
  );
  // macOS keeps the app (and a run in training) alive without windows; the Dock icon reopens one.
  app.on('window-all-closed', () => {
    if (!isMac) app.quit();
  });
  app.on('activate', () => {
    if (!mainWindow) void createWindow(page);
  });
  await createWindow(page);
}

// A second start hands over to the running studio (which focuses its window) and leaves.
if (app.requestSingleInstanceLock()) {
  app.on('second-instance', focusWindow);
  main().catch((error: Error) => {
    dialog.showErrorBox('Mw Studio could not start', error.stack ?? error.message);
    app.exit(1);
  });
} else {
  app.quit();
}
