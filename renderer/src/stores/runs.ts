/** Past runs: the list, opening one into the Live and Exits views, and comparing two. */
import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type { RunDetail, RunListingView } from '../../../shared/api.js';
import { useStudioApi } from '../api/current.js';
import { compareExits, comparedExits } from '../compare.js';
import { useRunStore } from './run.js';
import { useStudioStore } from './studio.js';

export interface Comparison {
  a: RunDetail;
  b: RunDetail;
}

export const useRunsStore = defineStore('runs', () => {
  const api = useStudioApi();
  const studio = useStudioStore();
  const run = useRunStore();

  const runs = ref<RunListingView[]>([]);
  const loading = ref(false);
  /** Run folders ticked for comparison, oldest tick first; at most two. */
  const compareDirs = ref<string[]>([]);
  const comparison = shallowRef<Comparison>();
  const comparing = ref(false);

  const comparisonRows = computed(() =>
    comparison.value ? compareExits(comparedExits(comparison.value.a), comparedExits(comparison.value.b)) : [],
  );

  const refresh = () =>
    studio.attempt(
      'Could not list the runs',
      async () => {
        runs.value = await api.listRuns({});
      },
      loading,
    );

  /** Opens a run: its exits when it was evaluated, else its training curves. */
  async function open(dir: string): Promise<void> {
    if (!(await run.open(dir))) return;
    studio.show(run.trace?.reports ? 'exits' : 'live');
  }

  async function resume(dir: string): Promise<void> {
    if (await run.resume(dir)) studio.show('live');
  }

  /** Ticks or unticks a run for comparison; a third tick replaces the oldest. */
  function toggleCompare(dir: string): void {
    const ticked = compareDirs.value;
    compareDirs.value = ticked.includes(dir) ? ticked.filter((d) => d !== dir) : [...ticked, dir].slice(-2);
    comparison.value = undefined;
  }

  async function compare(): Promise<boolean> {
    const [a, b] = compareDirs.value;
    if (!a || !b) return false;
    return studio.attempt(
      'Could not compare the runs',
      async () => {
        const [detailA, detailB] = await Promise.all([api.openRun({ run: a }), api.openRun({ run: b })]);
        comparison.value = { a: detailA, b: detailB };
      },
      comparing,
    );
  }

  return {
    runs,
    loading,
    compareDirs,
    comparison,
    comparisonRows,
    comparing,
    refresh,
    open,
    resume,
    toggleCompare,
    compare,
  };
});
