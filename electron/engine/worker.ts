/**
 * The engine process: hosts the engine's API (EngineHost) for one parent, the Electron main
 * process (as a utility process, talking over process.parentPort) or serve mode (a forked
 * child, talking over process.send). Training blocks this process' thread, never a UI's.
 *
 * The channel speaks shared/api.ts's ENGINE_CONTRACT through shared/peer.ts: the parent calls,
 * the worker checks each call against the contract (it is its own process' trust boundary),
 * answers, pushes events, and says once that it is ready.
 */
import { resolve } from 'node:path';
import { ENGINE_CONTRACT } from '../../shared/api.js';
import { Answerer } from '../../shared/peer.js';
import type { ProtocolMessage, ReadyMessage } from '../../shared/protocol.js';
import { initBackend } from './backend/index.js';
import { EngineHost } from './host.js';

interface ParentChannel {
  send(message: ProtocolMessage | ReadyMessage): void;
  onMessage(listener: (message: unknown) => void): void;
}

/** Electron's utility process gives the worker `process.parentPort`, which Node's types do not declare. */
interface ElectronParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (event: { data: unknown }) => void): void;
}

function isElectronParentPort(port: unknown): port is ElectronParentPort {
  return typeof port === 'object' && port !== null && 'postMessage' in port && 'on' in port;
}

/** Electron's utility process exposes parentPort; a Node child process has process.send. */
function parentChannel(): ParentChannel {
  const electronPort: unknown = Reflect.get(process, 'parentPort');
  if (isElectronParentPort(electronPort))
    return { send: (m) => electronPort.postMessage(m), onMessage: (l) => electronPort.on('message', (e) => l(e.data)) };
  if (process.send) return { send: (m) => void process.send?.(m), onMessage: (l) => process.on('message', l) };
  throw new Error('the engine worker must be started by Mw Studio (no parent channel)');
}

async function main(): Promise<void> {
  const parent = parentChannel();
  const backend = await initBackend();
  const host = new EngineHost({
    backend,
    runsRoot: resolve(process.env.MW_RUNS_ROOT ?? 'runs'),
    nativeDialogs: process.env.MW_NATIVE_DIALOGS === '1',
    emit: (event) => parent.send({ event }),
  });
  const parentSide = new Answerer({
    contract: ENGINE_CONTRACT,
    handlers: host.handlers,
    // A message that is no call has no id to reply to; the parent's log shows it (it is a bug there).
    onProtocolError: (problem) => console.error(`[engine] ${problem}`),
  });
  parentSide.connect((message) => parent.send(message));
  parent.onMessage((message) => parentSide.receive(message));
  // The parent asks us to end: let an active run reach a checkpoint, then exit.
  process.on('SIGTERM', () => void host.shutdown().finally(() => process.exit(0)));
  parent.send({ ready: { backend: backend.label } });
}

await main();
