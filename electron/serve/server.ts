/**
 * Serve mode: the built renderer and the studio API over a WebSocket, on 127.0.0.1 only, for
 * a browser on this machine (or through an SSH tunnel to a headless GPU box). Every request
 * must carry the per-session token: in the URL the first time, then as a SameSite=Strict
 * cookie; the WebSocket also checks its Origin, so another site open in the same browser can
 * neither read the studio nor drive it.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import type { StudioEvent } from '../../shared/api.js';
import type { Answerer } from '../../shared/peer.js';
import type { StudioContract } from '../../shared/api.js';
import { confinedFile, readStaticFile } from '../base/staticFiles.js';
import { EngineRelay } from '../relay/engineRelay.js';
import { pageChannel } from '../relay/pageChannel.js';
import { forkEngine } from './engineProcess.js';

/** Largest WebSocket message accepted: API calls are small; anything bigger is hostile. */
const MAX_MESSAGE_BYTES = 256 * 1024;

export interface ServeOptions {
  /** Folder holding the built renderer (index.html). */
  rendererDir: string;
  runsRoot: string;
  port?: number;
  /** Extra environment for the engine process (e.g. MW_BACKEND). */
  engineEnv?: Record<string, string>;
}

export interface StudioServer {
  url: string;
  token: string;
  port: number;
  engine: EngineRelay;
  close(): Promise<void>;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function sameToken(given: string | null | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieToken(request: IncomingMessage): string | undefined {
  return /(?:^|;\s*)mw_token=([0-9a-f]+)/.exec(request.headers.cookie ?? '')?.[1];
}

export async function startServer(options: ServeOptions): Promise<StudioServer> {
  const token = randomBytes(24).toString('hex');
  const rendererDir = resolve(options.rendererDir);
  const sockets = new Map<WebSocket, Answerer<StudioContract>>();
  const broadcast = (event: StudioEvent) => {
    for (const page of sockets.values()) page.emit(event);
  };
  const engineEnv = { MW_RUNS_ROOT: resolve(options.runsRoot), ...options.engineEnv };
  const engine = new EngineRelay({ start: () => forkEngine(engineEnv) });
  engine.onEvent(broadcast);

  const serveFile = async (request: IncomingMessage, response: ServerResponse, url: URL) => {
    const fromQuery = url.searchParams.get('token');
    if (!sameToken(fromQuery, token) && !sameToken(cookieToken(request), token)) {
      response
        .writeHead(403, { 'content-type': 'text/plain' })
        .end('Mw Studio: this page needs the session token printed by `mw-studio serve`.\n');
      return;
    }
    const file = confinedFile(rendererDir, url.pathname);
    const served = file && (await readStaticFile(file));
    if (!served) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    response.writeHead(200, {
      ...served.headers,
      ...(fromQuery ? { 'set-cookie': `mw_token=${token}; HttpOnly; SameSite=Strict; Path=/` } : {}),
    });
    response.end(served.body);
  };

  const server: Server = createServer((request, response) => {
    if (request.method !== 'GET') {
      response.writeHead(405).end();
      return;
    }
    void serveFile(request, response, new URL(request.url ?? '/', 'http://127.0.0.1'));
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  server.on('upgrade', (request, socket, head) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const port = (server.address() as AddressInfo).port;
    const origins = [`http://127.0.0.1:${port}`, `http://localhost:${port}`];
    if (
      url.pathname !== '/api' ||
      !sameToken(url.searchParams.get('token'), token) ||
      !origins.includes(request.headers.origin ?? '')
    ) {
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      // The server is the page's trust boundary: each call is checked here before it goes on.
      // No native dialogs in a browser: the page lets the user type paths instead. A message
      // that is no call has no id to answer: the page is told once and let go.
      const page = pageChannel(engine, {
        validates: true,
        onProtocolError: () => ws.close(1008, 'malformed call: expected {id, method, payload}'),
      });
      sockets.set(ws, page);
      page.connect((message) => ws.send(JSON.stringify(message)));
      ws.on('close', () => {
        sockets.delete(ws);
        page.disconnect();
      });
      ws.on('message', (data) => page.receive(parseJson(data.toString())));
    });
  });

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolveListen());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    token,
    port,
    engine,
    close: async () => {
      await engine.stop();
      for (const ws of sockets.keys()) ws.terminate();
      wss.close();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

export function defaultRendererDir(projectRoot: string): string {
  return join(projectRoot, 'out', 'renderer');
}
