/**
 * The engine process: hosts the studio API (EngineHost) for one parent, the Electron main
 * process (as a utility process, talking over process.parentPort) or serve mode (a forked
 * child, talking over process.send). Training blocks this process' thread, never a UI's.
 *
 * The messages are shared/protocol.ts's: the parent calls the studio API, the worker replies,
 * pushes events, says once that it is ready, and calls its parent for native dialogs
 * (WORKER_CALLS); shared/peer.ts keeps the calls in both directions.
 */
import { resolve } from 'node:path';
import type { StudioEvent } from '../../shared/api.js';
import { Peer } from '../../shared/peer.js';
import { ToWorkerMessageSchema, WORKER_CALLS, type EventMessage, type ReadyMessage } from '../../shared/protocol.js';
import { initBackend } from './backend/index.js';
import { EngineHost } from './host.js';

interface ParentChannel {
  send(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
}

/** Electron's utility process exposes parentPort; a Node child process has process.send. */
function parentChannel(): ParentChannel {
  const electronPort = (
    process as unknown as {
      parentPort?: { postMessage(m: unknown): void; on(e: 'message', l: (e: { data: unknown }) => void): void };
    }
  ).parentPort;
  if (electronPort)
    return { send: (m) => electronPort.postMessage(m), onMessage: (l) => electronPort.on('message', (e) => l(e.data)) };
  if (process.send) return { send: (m) => process.send!(m), onMessage: (l) => process.on('message', l) };
  throw new Error('the engine worker must be started by Mw Studio (no parent channel)');
}

async function main(): Promise<void> {
  const parent = parentChannel();
  const backend = await initBackend();
  const { chooseFolder } = WORKER_CALLS;
  const host: EngineHost = new EngineHost({
    backend,
    runsRoot: resolve(process.env.MW_RUNS_ROOT ?? 'runs'),
    emit: (event: StudioEvent) => parent.send({ event } satisfies EventMessage),
    ...(process.env.MW_NATIVE_DIALOGS === '1'
      ? {
          chooseFolder: async (purpose): Promise<string | undefined> =>
            ((await peer.call('chooseFolder', { purpose }, (r) => chooseFolder.response.parse(r))) as { path?: string })
              .path,
        }
      : {}),
  });
  const peer: Peer = new Peer({ remote: 'the studio', answer: (method, payload) => host.handle(method, payload) });
  peer.connect((message) => parent.send(message));
  parent.onMessage((message) => {
    const parsed = ToWorkerMessageSchema.safeParse(message);
    // Nothing to reply to: the parent validates what it sends.
    if (parsed.success) peer.receive(parsed.data);
  });
  // The parent asks us to end: let an active run reach a checkpoint, then exit.
  process.on('SIGTERM', () => void host.shutdown().finally(() => process.exit(0)));
  parent.send({ ready: { backend: backend.label } } satisfies ReadyMessage);
}

await main();
