/**
 * The engine process as EngineRelay sees it, adapted once for both kinds of child the faces
 * start: Electron's UtilityProcess (the desktop app) and Node's ChildProcess (serve mode, the
 * tests). The child's stderr is passed through to ours, and its tail kept to say why it died.
 */
import { constants } from 'node:os';
import type { ProtocolMessage } from '../../shared/protocol.js';
import type { EngineProcess } from './engineRelay.js';

/** What both UtilityProcess and ChildProcess offer, as the adapter uses it. */
export interface EngineChild {
  readonly stderr: NodeJS.ReadableStream | null;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  /** A UtilityProcess gives only the code; a ChildProcess gives a null code and the signal when one ended it. */
  on(event: 'exit', listener: (code: number | null, signal?: NodeJS.Signals | null) => void): unknown;
  kill(signal?: NodeJS.Signals): boolean;
}

/** `send` is the child's own (UtilityProcess.postMessage, ChildProcess.send), which the two name differently. */
export function engineProcess(
  child: EngineChild,
  send: (message: ProtocolMessage) => void,
): EngineProcess & { kill(signal?: NodeJS.Signals): void } {
  const stderr = new StderrTail();
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr.add(chunk);
    process.stderr.write(chunk);
  });
  return {
    send,
    onMessage: (listener) => void child.on('message', listener),
    onExit: (listener) =>
      void child.on('exit', (code, signal) =>
        listener(code ?? 128 + (signal ? constants.signals[signal] : 0), stderr.reason),
      ),
    kill: (signal: NodeJS.Signals = 'SIGTERM') => void child.kill(signal),
  };
}

/**
 * Keeps the end of the engine's stderr, to tell the user why it died: the last line that
 * reads like an error ("Error: ...", after the stack frames Node prints), else the last line.
 */
export class StderrTail {
  private text = '';

  add(chunk: Buffer | string): void {
    this.text = (this.text + chunk.toString()).slice(-8192);
  }

  get reason(): string | undefined {
    const lines = this.text
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
    return lines.reverse().find((line) => /^[\w.]*(Error|Exception)\b/.test(line)) ?? lines[0];
  }
}
