/** Past runs: the list, opening one into the Live and Exits views, and comparing finished ones. */
import { defineStore } from 'pinia';
import { ref, shallowRef } from 'vue';
import type { RunListingView } from '../../../shared/api.js';
import { useStudioApi } from '../api/current.js';
import { compareRuns, type RunComparison } from '../compare.js';
import { useRunStore } from './run.js';
import { useStudioStore } from './studio.js';

export const useRunsStore = defineStore('runs', () => {
  const api = useStudioApi();
  const studio = useStudioStore();
  const run = useRunStore();

  const runs = ref<RunListingView[]>([]);
  const loading = ref(false);
  /** Finished run folders ticked for comparison, in the order ticked. */
  const compareDirs = ref<string[]>([]);
  const comparison = shallowRef<RunComparison>();

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

  /** Ticks or unticks a run for comparison. */
  function toggleCompare(dir: string): void {
    const ticked = compareDirs.value;
    compareDirs.value = ticked.includes(dir) ? ticked.filter((d) => d !== dir) : [...ticked, dir];
    comparison.value = undefined;
  }

  /** Compares the ticked runs that have finished (a summary), from the listing already loaded. */
  function compare(): boolean {
    const ticked = compareDirs.value.flatMap((dir) => runs.value.filter((l) => l.dir === dir && l.summary));
    if (ticked.length < 2) return false;
    comparison.value = compareRuns(ticked);
    return true;
  }

  return { runs, loading, compareDirs, comparison, refresh, open, resume, toggleCompare, compare };
});
