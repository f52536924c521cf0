/** The studio as a whole: engine info, connection, which view is shown, and messages to the user. */
import { defineStore } from 'pinia';
import { ref, type Ref } from 'vue';
import type { StudioInfo } from '../../../shared/api.js';
import { useStudioApi } from '../api/current.js';
import { hasConnectionState, type ConnectionState } from '../api/socketClient.js';

export const VIEWS = ['new', 'live', 'exits', 'runs', 'analyses', 'evaluation', 'study'] as const;
export type ViewName = (typeof VIEWS)[number];

export interface Toast {
  id: number;
  kind: 'error' | 'info';
  text: string;
}

/** Information fades by itself; errors stay until dismissed, so none goes unread. */
const INFO_TOAST_MS = 5000;

export const useStudioStore = defineStore('studio', () => {
  const api = useStudioApi();
  const info = ref<StudioInfo>();
  // The preload bridge cannot drop; only the socket reports a connection state.
  const connection = ref<ConnectionState>(hasConnectionState(api) ? api.connectionState : 'open');
  const connectionProblem = ref<string>();
  const view = ref<ViewName>('new');
  const toasts = ref<Toast[]>([]);
  let nextToast = 1;

  // The desktop app's menu, as declared events (shared/api.ts MENU_COMMANDS).
  api.onEvent((event) => {
    if (event.type === 'menu-command' && event.command === 'new-run') show('new');
  });

  if (hasConnectionState(api)) {
    api.onConnectionChange((state, reason) => {
      connection.value = state;
      connectionProblem.value = state === 'open' ? undefined : reason;
    });
  }

  function dismiss(id: number): void {
    toasts.value = toasts.value.filter((toast) => toast.id !== id);
  }

  function notify(text: string, kind: Toast['kind'] = 'info'): void {
    const id = nextToast++;
    toasts.value.push({ id, kind, text });
    if (kind === 'info') setTimeout(() => dismiss(id), INFO_TOAST_MS);
  }

  /** Shows a failed action's error; `doing` says what was attempted ("Could not start the run"). */
  function report(error: unknown, doing: string): void {
    notify(`${doing}: ${error instanceof Error ? error.message : String(error)}`, 'error');
  }

  /**
   * Runs something the user asked for. A failure is shown as an error message rather than
   * thrown: the user, not the caller, has to act on it. `busy`, when given, is set meanwhile.
   */
  async function attempt(doing: string, action: () => Promise<unknown>, busy?: Ref<boolean>): Promise<boolean> {
    if (busy) busy.value = true;
    try {
      await action();
      return true;
    } catch (error) {
      report(error, doing);
      return false;
    } finally {
      if (busy) busy.value = false;
    }
  }

  async function refreshInfo(): Promise<StudioInfo | undefined> {
    const reached = await attempt('Could not reach the engine', async () => {
      info.value = await api.getInfo({});
    });
    return reached ? info.value : undefined;
  }

  function show(next: ViewName): void {
    view.value = next;
  }

  return { info, connection, connectionProblem, view, toasts, notify, report, attempt, dismiss, refreshInfo, show };
});
