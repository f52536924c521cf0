/**
 * The parent's side of the engine process (electron/engine/worker.ts), shared by the Electron
 * main process (a utility process) and serve mode (a Node child process): starts the engine,
 * relays the page's calls to it, forwards its events, and restarts it when it dies, so a crash
 * in training never takes the app down.
 *
 * - The engine validates every call it gets (it is a trust boundary of its own); the calling
 *   peer (shared/peer.ts) matches calls to replies, holds them until the engine reports ready,
 *   and gives up after a per-method timeout.
 * - If the engine dies, the calls it had been sent fail; calls not yet sent wait for the new
 *   one. The renderer hears `trainer-crashed`. Restarts back off when the engine keeps dying
 *   at start-up (a broken backend), instead of spinning.
 *
 * No Electron import: the process is reached through EngineProcess, so serve mode and the
 * tests run the relay on a plain Node child process.
 */
import {
  ApiError,
  ENGINE_CONTRACT,
  type EngineContract,
  type EngineMethod,
  type EngineRequest,
  type EngineResponse,
  type StudioEvent,
} from '../../shared/api.js';
import { Caller } from '../../shared/peer.js';
import { ReadyMessageSchema, type ProtocolMessage } from '../../shared/protocol.js';

/** The engine process as the relay needs it: Electron's UtilityProcess or a Node ChildProcess behind engineProcess(). */
export interface EngineProcess {
  send(message: ProtocolMessage): void;
  onMessage(listener: (message: unknown) => void): void;
  /** `reason`: what the process said last on stderr (StderrTail), usually why it died. */
  onExit(listener: (code: number, reason?: string) => void): void;
  /** Asks the process to end: SIGTERM, on which the engine stops an active run at a checkpoint. */
  kill(): void;
}

export interface EngineRelayOptions {
  start(): EngineProcess;
  timeoutMs?: (method: EngineMethod) => number | undefined;
  restartDelayMs?: (quickCrashes: number) => number;
  /** Where protocol problems are reported (they are bugs, not user errors). */
  warn?: (message: string) => void;
}

const MINUTE = 60_000;

/**
 * How long each call may wait for its reply (including the wait for a starting engine).
 * Undefined: no limit.
 */
export function defaultCallTimeoutMs(method: EngineMethod): number | undefined {
  switch (method) {
    // Load and index a whole dataset (CIFAR from its archive), build the network, write an export.
    case 'startRun':
    case 'resumeRun':
    case 'exportExit':
      return 10 * MINUTE;
    default:
      return MINUTE;
  }
}

/** An engine that lived this long was working; dying later is not a start-up crash loop. */
const STABLE_AFTER_MS = 30_000;

/** Immediately after a crash in normal use; 1 s, 2 s, 4 s ... at most 30 s while it keeps failing at start. */
export function defaultRestartDelayMs(quickCrashes: number): number {
  return quickCrashes === 0 ? 0 : Math.min(30_000, 1000 * 2 ** (quickCrashes - 1));
}

export class EngineRelay {
  private engine: EngineProcess | undefined;
  private startedAt = 0;
  private quickCrashes = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  /** Outlives each engine process: calls not yet sent wait for the next one to be ready. */
  private readonly peer: Caller<EngineContract>;
  private readonly listeners = new Set<(event: StudioEvent) => void>();
  private readonly restartDelayMs: (quickCrashes: number) => number;
  private readonly warn: (message: string) => void;

  constructor(private readonly options: EngineRelayOptions) {
    this.restartDelayMs = options.restartDelayMs ?? defaultRestartDelayMs;
    this.warn = options.warn ?? ((message) => console.warn(`[engine relay] ${message}`));
    const timeoutMs = options.timeoutMs ?? defaultCallTimeoutMs;
    // The engine is the studio's own process: its results and events are taken as the contract types them.
    this.peer = new Caller({
      contract: ENGINE_CONTRACT,
      remote: 'the engine',
      checked: false,
      timeoutMs,
      onProtocolError: this.warn,
    });
    this.peer.onEvent((event) => this.emit(event));
    this.launch();
  }

  /** Subscribes to the engine's events and the relay's own (trainer-crashed); returns the unsubscribe function. */
  onEvent(listener: (event: StudioEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls the engine; rejects with the engine's own error (an ApiError naming a bad field, say). */
  call<M extends EngineMethod>(method: M, request: EngineRequest<M>): Promise<EngineResponse<M>> {
    return this.peer.call(method, request);
  }

  /** Passes on a call the page made, unchecked: the engine validates it. */
  forward(method: EngineMethod, payload: unknown): Promise<unknown> {
    return this.peer.forward(method, payload);
  }

  /**
   * Asks the engine to end (it checkpoints an active run) and waits for it, at most `graceMs`;
   * calls still pending fail. Used when the app quits.
   */
  stop(graceMs = 5000): Promise<void> {
    if (this.stopping) return this.stopping;
    const engine = this.engine;
    this.stopping = new Promise<void>((done) => {
      if (!engine) return done();
      const grace = setTimeout(done, graceMs);
      engine.onExit(() => {
        clearTimeout(grace);
        done();
      });
    });
    clearTimeout(this.restartTimer);
    this.peer.close(new ApiError('the studio is shutting down'));
    engine?.kill();
    return this.stopping;
  }

  private launch(): void {
    const engine = this.options.start();
    this.engine = engine;
    this.startedAt = Date.now();
    engine.onMessage((message) => {
      if (this.engine === engine) this.receive(engine, message);
    });
    engine.onExit((code, reason) => {
      if (this.engine === engine) this.exited(code, reason);
    });
  }

  private receive(engine: EngineProcess, message: unknown): void {
    if (ReadyMessageSchema.safeParse(message).success) this.peer.connect((out) => engine.send(out));
    else this.peer.receive(message);
  }

  private emit(event: StudioEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private exited(code: number, reason: string | undefined): void {
    this.engine = undefined;
    const what = `the engine process exited with code ${code}${reason ? ` (${reason})` : ''}`;
    this.peer.disconnect((method) => `${method}: ${what} before answering`);
    if (this.stopping) return;
    this.quickCrashes = Date.now() - this.startedAt < STABLE_AFTER_MS ? this.quickCrashes + 1 : 0;
    this.emit({
      type: 'trainer-crashed',
      message: `${what}; it is being restarted, and an interrupted run can be resumed from its last checkpoint`,
    });
    this.restartTimer = setTimeout(() => this.launch(), this.restartDelayMs(this.quickCrashes));
  }
}
