/**
 * Model-selection analyses of the shown run, each computed by the engine on request (they take
 * seconds): the early-exit policy sweep with the threshold the user picks, the lesion study and
 * the supervision shares.
 */
import { defineStore } from 'pinia';
import { computed, ref, shallowRef, watch } from 'vue';
import type { EarlyExitSweep, ExitCriterion, LesionStudy, SupervisionShares } from '../../../shared/analysis.js';
import { useStudioApi } from '../api/current.js';
import { useRunStore } from './run.js';
import { useStudioStore } from './studio.js';

export const useAnalysesStore = defineStore('analyses', () => {
  const api = useStudioApi();
  const studio = useStudioStore();
  const run = useRunStore();

  const criterion = ref<ExitCriterion>('max-softmax');
  const earlyExit = shallowRef<EarlyExitSweep>();
  /** Index into earlyExit.points of the threshold on the slider. */
  const thresholdIndex = ref(0);
  const lesion = shallowRef<LesionStudy>();
  const supervision = shallowRef<SupervisionShares>();
  const busy = { earlyExit: ref(false), lesion: ref(false), supervision: ref(false) };

  // Results belong to one run; a new run starts with none.
  watch(
    () => run.trace?.dir,
    () => {
      earlyExit.value = undefined;
      lesion.value = undefined;
      supervision.value = undefined;
    },
    { flush: 'sync' },
  );

  const thresholdPoint = computed(() => earlyExit.value?.points[thresholdIndex.value]);

  /** Another criterion: the sweep shown was computed with the old one until Compute is pressed again. */
  function chooseCriterion(next: ExitCriterion): void {
    criterion.value = next;
  }

  /** Picks a point of the sweep (the slider, or a click on the chart). */
  function chooseThreshold(index: number): void {
    thresholdIndex.value = index;
  }

  async function computeEarlyExit(): Promise<boolean> {
    const dir = run.trace?.dir;
    if (!dir) return false;
    return studio.attempt(
      'Early-exit analysis failed',
      async () => {
        const sweep = await api.earlyExit({ run: dir, criterion: criterion.value });
        // Start the slider at the cheapest threshold as accurate as the final exit, if any.
        const equal = sweep.equalAccuracy;
        thresholdIndex.value = equal
          ? sweep.points.findIndex((p) => p.threshold === equal.threshold)
          : sweep.points.length - 1;
        earlyExit.value = sweep;
      },
      busy.earlyExit,
    );
  }

  async function computeLesion(): Promise<boolean> {
    const dir = run.trace?.dir;
    if (!dir) return false;
    return studio.attempt(
      'Lesion study failed',
      async () => (lesion.value = await api.lesion({ run: dir })),
      busy.lesion,
    );
  }

  async function computeSupervision(): Promise<boolean> {
    const dir = run.trace?.dir;
    if (!dir) return false;
    return studio.attempt(
      'Supervision analysis failed',
      async () => (supervision.value = await api.supervision({ run: dir })),
      busy.supervision,
    );
  }

  return {
    criterion,
    earlyExit,
    thresholdIndex,
    thresholdPoint,
    lesion,
    supervision,
    computingEarlyExit: busy.earlyExit,
    computingLesion: busy.lesion,
    computingSupervision: busy.supervision,
    chooseCriterion,
    chooseThreshold,
    computeEarlyExit,
    computeLesion,
    computeSupervision,
  };
});
