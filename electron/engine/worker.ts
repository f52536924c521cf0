/**
 * The engine process: hosts the studio API (EngineHost) for one parent, the Electron main
 * process (as a utility process, talking over process.parentPort) or serve mode (a forked
 * child, talking over process.send). Training blocks this process' thread, never a UI's.
 *
 * Parent -> worker: WireCall {id, method, payload}, or {answer, result} to a question.
 * Worker -> parent: {id, ok, result|error}, {event}, {ready}, or {ask, method, payload}.
 */
import { resolve } from 'node:path';
import { WireCallSchema, type StudioEvent } from '../../shared/api.js';
import { initBackend } from './backend/index.js';
import { EngineHost } from './host.js';

interface ParentChannel {
  send(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
}

/** Electron's utility process exposes parentPort; a Node child process has process.send. */
function parentChannel(): ParentChannel {
  const electronPort = (process as unknown as { parentPort?: { postMessage(m: unknown): void; on(e: 'message', l: (e: { data: unknown }) => void): void } }).parentPort;
  if (electronPort) return { send: (m) => electronPort.postMessage(m), onMessage: (l) => electronPort.on('message', (e) => l(e.data)) };
  if (process.send) return { send: (m) => process.send!(m), onMessage: (l) => process.on('message', l) };
  throw new Error('the engine worker must be started by Mw Studio (no parent channel)');
}

async function main(): Promise<void> {
  const parent = parentChannel();
  const questions = new Map<number, (result: unknown) => void>();
  let nextQuestion = 0;
  const ask = (method: string, payload: unknown) =>
    new Promise<unknown>((resolveAnswer) => {
      const id = nextQuestion++;
      questions.set(id, resolveAnswer);
      parent.send({ ask: id, method, payload });
    });

  const backend = await initBackend();
  const host = new EngineHost({
    backend,
    runsRoot: resolve(process.env.MW_RUNS_ROOT ?? 'runs'),
    emit: (event: StudioEvent) => parent.send({ event }),
    ...(process.env.MW_NATIVE_DIALOGS === '1'
      ? { chooseFolder: async (purpose) => ((await ask('chooseFolder', { purpose })) as { path?: string } | undefined)?.path }
      : {}),
  });

  parent.onMessage((message) => {
    const answer = message as { answer?: unknown; result?: unknown };
    if (typeof answer?.answer === 'number') {
      questions.get(answer.answer)?.(answer.result);
      questions.delete(answer.answer);
      return;
    }
    const call = WireCallSchema.safeParse(message);
    if (!call.success) return; // Not a call: nothing to reply to; the parent validates what it sends.
    const { id, method, payload } = call.data;
    host.handle(method, payload).then(
      (result) => parent.send({ id, ok: true, result }),
      (error: Error) => parent.send({ id, ok: false, error: error.message }),
    );
  });
  // The parent asks us to end: let an active run reach a checkpoint, then exit.
  process.on('SIGTERM', () => void host.shutdown().finally(() => process.exit(0)));
  parent.send({ ready: { backend: backend.label } });
}

await main();
