/**
 * Serve mode's engine: electron/engine/worker.ts in a forked Node process (the same relay the
 * desktop app uses with a utility process), so a training step never blocks the server.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { engineProcess } from '../relay/engineProcess.js';

const WORKER = fileURLToPath(new URL('../engine/worker.ts', import.meta.url));

/** A Node child process running the TypeScript worker under tsx. */
export function forkEngine(env: Record<string, string>): ReturnType<typeof engineProcess> {
  const child = fork(WORKER, [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  // Between the child's end and its 'exit' event the channel is already closed.
  return engineProcess(child, (message) => void (child.connected && child.send(message)));
}
