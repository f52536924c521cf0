/**
 * What the preload, the main process and the engine relay say to each other, declared once: the
 * IPC channel names, the shape of a call's outcome, and the check an event passes before it
 * reaches the page. No Electron import, so it bundles into the sandboxed preload and tests
 * import it with no Electron binary.
 */
import { ApiError, MENU_COMMANDS, type StudioEvent } from './api.js';

/** ipcRenderer.invoke(STUDIO_CALL, method, payload) -> CallOutcome. */
export const STUDIO_CALL = 'studio:call';

/** ipcRenderer.invoke(REMOTE_CONNECT, {address, token}) -> CallOutcome: keep and open a remote studio (shared/remote.ts). */
export const REMOTE_CONNECT = 'studio:remote-connect';
/** ipcRenderer.invoke(REMOTE_SAVED) -> CallOutcome with {address?}: the remote studio kept, without its token. */
export const REMOTE_SAVED = 'studio:remote-saved';

/** Main -> preload, once per page load: carries the MessagePort that engine events arrive on. */
export const STUDIO_EVENTS = 'studio:events';

/**
 * A call's result or its error as plain data. ipcMain.handle would wrap a thrown error's
 * message in "Error invoking remote method ...", which the user would then read in a toast.
 */
export type CallOutcome = { ok: true; result: unknown } | { ok: false; error: string };

export async function outcomeOf(work: () => Promise<unknown>): Promise<CallOutcome> {
  try {
    return { ok: true, result: await work() };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/** The result of a call, or its error thrown as an ApiError with the engine's own message. */
export function resultOf(outcome: CallOutcome): unknown {
  if (outcome.ok) return outcome.result;
  throw new ApiError(outcome.error);
}

/**
 * A shallow check of a pushed event: the engine is trusted, so this only keeps anything
 * malformed (a stray message on the port) away from the page's listeners.
 */
export function isStudioEvent(data: unknown): data is StudioEvent {
  if (typeof data !== 'object' || data === null) return false;
  const event = data as Record<string, unknown>;
  if (event.type === 'run') return Array.isArray(event.events);
  if (event.type === 'menu-command') return (MENU_COMMANDS as readonly unknown[]).includes(event.command);
  if (event.type === 'evaluation-progress')
    return typeof event.run === 'string' && typeof event.done === 'number' && typeof event.total === 'number';
  if (event.type === 'study') return typeof event.study === 'object' && event.study !== null;
  return event.type === 'trainer-crashed' && typeof event.message === 'string';
}
