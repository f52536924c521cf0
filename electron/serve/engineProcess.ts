/**
 * Serve mode's engine: electron/engine/worker.ts in a forked Node process (the same relay the
 * desktop app uses with a utility process), so a training step never blocks the server.
 */
import { fork } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { StderrTail, type EngineProcess } from '../relay/engineRelay.js';

const WORKER = fileURLToPath(new URL('../engine/worker.ts', import.meta.url));

/** The EngineProcess adapter for a Node child process running the TypeScript worker under tsx. */
export function forkEngine(env: Record<string, string>): EngineProcess & { kill(signal?: NodeJS.Signals): void } {
  const child = fork(WORKER, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  const stderr = new StderrTail();
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr.add(chunk);
    process.stderr.write(chunk);
  });
  return {
    // Between the child's end and its 'exit' event the channel is already closed.
    send: (message) => void (child.connected && child.send(message as object)),
    onMessage: (listener) => child.on('message', listener),
    onExit: (listener) =>
      child.on('exit', (code, signal) =>
        listener(code ?? 128 + (signal ? constants.signals[signal] : 0), stderr.reason),
      ),
    kill: (signal: NodeJS.Signals = 'SIGTERM') => void child.kill(signal),
  };
}
