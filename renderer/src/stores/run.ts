/**
 * The run the Live and Exits views show: the engine's active run as it trains (events applied
 * as they arrive), or a past run opened from the Runs view. Pause, continue and stop act on
 * the engine's active run, so they are only offered while that is the run shown.
 */
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type { StudioEvent } from '../../../shared/api.js';
import type { RunEvent } from '../../../shared/metrics.js';
import type { RunConfig } from '../../../shared/spec.js';
import { useStudioApi } from '../api/current.js';
import { applyRunEvent, traceFromDetail, traceFromStart, type RunTrace, type TraceStatus } from '../runTrace.js';
import { useStudioStore } from './studio.js';

export const useRunStore = defineStore('run', () => {
  const api = useStudioApi();
  const studio = useStudioStore();
  /**
   * Events update the trace in place (its series can be long), then `publish` swaps in a shallow
   * copy: a new object per batch of events, so every computed and prop derived from it updates,
   * while the series arrays are shared, never copied.
   */
  const trace = shallowRef<RunTrace>();
  /** The run the engine is training (or last trained) in this session, and where it stands. */
  const activeRun = ref<string>();
  const activeStatus = ref<TraceStatus>();
  /** Whether the view follows the active run: a new run replaces what is shown. */
  const followsLive = ref(true);
  const loading = ref(false);
  const acting = ref(false);
  // Events of the active run that arrive while its folder is being read, applied after it.
  let heldBack: RunEvent[] | undefined;

  const showsActiveRun = computed(() => trace.value !== undefined && trace.value.dir === activeRun.value);
  const canPause = computed(() => showsActiveRun.value && trace.value?.status === 'running');
  const canContinue = computed(() => showsActiveRun.value && trace.value?.status === 'paused');
  const canStop = computed(() => canPause.value || canContinue.value);
  const canResume = computed(() => ['stopped', 'interrupted', 'failed'].includes(trace.value?.status ?? ''));
  /** The engine is busy with a run (it trains one at a time). */
  const engineBusy = computed(() => activeStatus.value === 'running' || activeStatus.value === 'paused');
  /** A run was started but the engine has not announced it yet. */
  const waitingForStart = computed(() => followsLive.value && activeRun.value !== undefined && !showsActiveRun.value);

  function publish(): void {
    if (trace.value) trace.value = { ...trace.value };
  }

  function applyEvents(events: readonly RunEvent[]): void {
    if (heldBack) {
      heldBack.push(...events);
      return;
    }
    let changed = false;
    for (const event of events) {
      if (event.type === 'started') {
        activeRun.value = event.start.run;
        activeStatus.value = 'running';
        if (followsLive.value) trace.value = traceFromStart(event.start, trace.value);
        continue;
      }
      if (event.type === 'status') activeStatus.value = event.state.status;
      if (event.type === 'finished') activeStatus.value = 'completed';
      if (followsLive.value && showsActiveRun.value && trace.value) {
        applyRunEvent(trace.value, event);
        changed = true;
      }
    }
    if (changed) publish();
  }

  function handleEvent(event: StudioEvent): void {
    if (event.type === 'run') {
      applyEvents(event.events);
      return;
    }
    if (event.type !== 'trainer-crashed') return;
    if ((event.run ?? activeRun.value) === activeRun.value) activeStatus.value = 'failed';
    if (trace.value && (event.run ?? activeRun.value) === trace.value.dir) {
      trace.value.status = 'failed';
      trace.value.statusMessage = event.message;
      publish();
    }
    studio.notify(`The trainer crashed: ${event.message}`, 'error');
  }

  api.onEvent(handleEvent);

  /** Shows a run read from its folder; live events for it (if it is the active run) keep it current. */
  async function open(dir: string): Promise<boolean> {
    const live = dir === activeRun.value;
    if (live) heldBack = [];
    const opened = await studio.attempt(
      'Could not open the run',
      async () => {
        trace.value = traceFromDetail(await api.openRun({ run: dir }));
        followsLive.value = live;
      },
      loading,
    );
    const missed = heldBack ?? [];
    heldBack = undefined;
    applyEvents(missed);
    return opened;
  }

  /** Shows the engine's active run, as it trains. */
  async function follow(dir: string): Promise<boolean> {
    activeRun.value = dir;
    const opened = await open(dir);
    if (opened) activeStatus.value = trace.value?.status;
    return opened;
  }

  const act = (doing: string, action: () => Promise<unknown>) => studio.attempt(doing, action, acting);

  /** Shows the next run the engine starts as it trains (a study's runs, one after another). */
  function followLive(): void {
    followsLive.value = true;
  }

  /** Starts training; the run appears when the engine announces it ('started'). */
  function start(config: RunConfig): Promise<boolean> {
    followsLive.value = true;
    return act('Could not start the run', async () => {
      activeRun.value = (await api.startRun({ config })).run;
    });
  }

  /** Continues a stopped or interrupted run from its checkpoint, keeping its history on screen. */
  async function resume(dir: string): Promise<boolean> {
    if (trace.value?.dir !== dir && !(await open(dir))) return false;
    followsLive.value = true;
    return act('Could not resume the run', async () => {
      activeRun.value = (await api.resumeRun({ run: dir })).run;
    });
  }

  const pause = () => act('Could not pause', () => api.pauseRun({}));
  const proceed = () => act('Could not continue', () => api.continueRun({}));
  const stop = () => act('Could not stop', () => api.stopRun({}));

  return {
    trace,
    activeRun,
    activeStatus,
    followsLive,
    loading,
    acting,
    showsActiveRun,
    canPause,
    canContinue,
    canStop,
    canResume,
    engineBusy,
    waitingForStart,
    applyEvents,
    open,
    follow,
    followLive,
    start,
    resume,
    pause,
    proceed,
    stop,
  };
});
