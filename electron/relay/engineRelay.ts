/**
 * The parent's side of the engine process (electron/engine/worker.ts), shared by the Electron
 * main process (a utility process) and serve mode (a Node child process): starts the engine,
 * relays the renderer's calls to it, forwards its events, answers its questions, and restarts
 * it when it dies, so a crash in training never takes the app down.
 *
 * - Calls are validated (parseRequest) before they cross into the engine; the protocol's peer
 *   (shared/peer.ts) matches them to replies, holds them until the engine reports ready, and
 *   gives up after a per-method timeout.
 * - If the engine dies, the calls it had been sent fail; calls not yet sent wait for the new
 *   one. The renderer hears `trainer-crashed`. Restarts back off when the engine keeps dying
 *   at start-up (a broken backend), instead of spinning.
 *
 * No Electron import: the process is reached through EngineProcess, so serve mode and the
 * tests run the relay on a plain Node child process.
 */
import { ApiError, parseRequest, type StudioEvent, type StudioMethod, type StudioRequest } from '../../shared/api.js';
import { Peer } from '../../shared/peer.js';
import { FromWorkerMessageSchema, WORKER_CALLS } from '../../shared/protocol.js';

/** The engine process as the relay needs it: Electron's UtilityProcess or a Node ChildProcess behind an adapter. */
export interface EngineProcess {
  send(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  /** `reason`: what the process said last on stderr (StderrTail), usually why it died. */
  onExit(listener: (code: number, reason?: string) => void): void;
  /** Asks the process to end: SIGTERM, on which the engine stops an active run at a checkpoint. */
  kill(): void;
}

export type FolderPurpose = StudioRequest<'chooseFolder'>['purpose'];

export interface EngineRelayOptions {
  start(): EngineProcess;
  /** Delivers an event to the renderer. */
  emit(event: StudioEvent): void;
  /** The native folder dialog; undefined when cancelled. */
  chooseFolder(purpose: FolderPurpose): Promise<string | undefined>;
  timeoutMs?: (method: StudioMethod) => number | undefined;
  restartDelayMs?: (quickCrashes: number) => number;
  /** Where protocol problems and failed dialogs are reported (they are bugs, not user errors). */
  warn?: (message: string) => void;
}

const MINUTE = 60_000;

/**
 * How long each call may wait for its reply (including the wait for a starting engine).
 * Undefined: no limit.
 */
export function defaultCallTimeoutMs(method: StudioMethod): number | undefined {
  switch (method) {
    // Waits on the user, who may take as long as they like in the dialog.
    case 'chooseFolder':
      return undefined;
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

export class EngineRelay {
  private engine: EngineProcess | undefined;
  private startedAt = 0;
  private quickCrashes = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  /** Outlives each engine process: calls not yet sent wait for the next one to be ready. */
  private readonly peer: Peer;
  private readonly restartDelayMs: (quickCrashes: number) => number;
  private readonly warn: (message: string) => void;

  constructor(private readonly options: EngineRelayOptions) {
    this.restartDelayMs = options.restartDelayMs ?? defaultRestartDelayMs;
    this.warn = options.warn ?? ((message) => console.warn(`[engine relay] ${message}`));
    const timeoutMs = options.timeoutMs ?? defaultCallTimeoutMs;
    this.peer = new Peer({
      remote: 'the engine',
      timeoutMs: (method) => timeoutMs(method as StudioMethod),
      answer: (method, payload) => this.answerWorker(method, payload),
      onProtocolError: this.warn,
    });
    this.launch();
  }

  /** Validates a call from the renderer and resolves with the engine's result; rejects with an ApiError naming the bad field. */
  async call(method: unknown, payload: unknown): Promise<unknown> {
    if (this.stopping) throw new ApiError('the studio is shutting down');
    const { method: name, request } = parseRequest(method, payload);
    return this.peer.call(name, request);
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
    const parsed = FromWorkerMessageSchema.safeParse(message);
    if (!parsed.success) {
      this.warn(`unreadable message from the engine: ${JSON.stringify(message)?.slice(0, 200)}`);
      return;
    }
    const data = parsed.data;
    if ('ready' in data) this.peer.connect((out) => engine.send(out));
    else if ('event' in data) this.options.emit(data.event);
    else this.peer.receive(data);
  }

  /**
   * The engine's calls are for native dialogs, which only the main process can show. A dialog
   * that fails is reported and answered as cancelled; anything else is a bug in the engine.
   */
  private async answerWorker(method: string, payload: unknown): Promise<unknown> {
    const request = method === 'chooseFolder' ? WORKER_CALLS.chooseFolder.request.safeParse(payload) : undefined;
    if (!request?.success) {
      const problem = `unanswerable call from the engine: ${method} ${JSON.stringify(payload)?.slice(0, 200)}`;
      this.warn(problem);
      throw new ApiError(problem);
    }
    try {
      const path = await this.options.chooseFolder(request.data.purpose);
      return path ? { path } : {};
    } catch (error) {
      this.warn(`the folder dialog failed: ${(error as Error).message}`);
      return {};
    }
  }

  private exited(code: number, reason: string | undefined): void {
    this.engine = undefined;
    const what = `the engine process exited with code ${code}${reason ? ` (${reason})` : ''}`;
    this.peer.disconnect((method) => `${method}: ${what} before answering`);
    if (this.stopping) return;
    this.quickCrashes = Date.now() - this.startedAt < STABLE_AFTER_MS ? this.quickCrashes + 1 : 0;
    this.options.emit({
      type: 'trainer-crashed',
      message: `${what}; it is being restarted, and an interrupted run can be resumed from its last checkpoint`,
    });
    this.restartTimer = setTimeout(() => this.launch(), this.restartDelayMs(this.quickCrashes));
  }
}
