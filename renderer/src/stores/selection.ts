/**
 * Choosing a depth: the Pareto fronts of the shown run's exits, the best exit within the user's
 * budget, the exit selected, and exporting it.
 */
import { defineStore } from 'pinia';
import { computed, ref, shallowRef, watch } from 'vue';
import type { ExportFormat, ExportResult } from '../../../shared/api.js';
import { EXPORT_FORMAT_KINDS } from '../../../shared/deployment.js';
import type { ExitReport } from '../../../shared/metrics.js';
import { exitRefOf } from '../../../shared/exitRef.js';
import { useStudioApi } from '../api/current.js';
import { exitRows } from '../runTrace.js';
import { bestWithinBudget, paretoFront, parseBudget, type BudgetMetric } from '../selection.js';
import { useAnalysesStore } from './analyses.js';
import { useRunStore } from './run.js';
import { useStudioStore } from './studio.js';

export const latencyOf = (exit: ExitReport) => exit.latencyMs.batch1.median;
export const paramsOf = (exit: ExitReport) => exit.params;
const top1Of = (exit: ExitReport) => exit.top1;

export const useSelectionStore = defineStore('selection', () => {
  const api = useStudioApi();
  const studio = useStudioStore();
  const run = useRunStore();

  const budgetMetric = ref<BudgetMetric>('latency');
  /** The budget as typed: "2.5" (ms) or "250k" (parameters). */
  const budgetText = ref('');
  /** The exit the user picked; until then the recommended one, else the final output. */
  const pickedIndex = ref<number>();
  const exportFormat = ref<ExportFormat>('tfjs');
  /** Folder to export into; empty = the run folder's exports/. */
  const exportDestination = ref('');
  const exporting = ref(false);
  const exportResult = shallowRef<ExportResult>();

  const rows = computed(() => (run.trace ? exitRows(run.trace) : []));
  const reports = computed(() => run.trace?.reports ?? []);
  const latencyFront = computed(() => paretoFront(reports.value, latencyOf, top1Of));
  const paramsFront = computed(() => paretoFront(reports.value, paramsOf, top1Of));
  const budget = computed(() => parseBudget(budgetMetric.value, budgetText.value));
  const budgetInvalid = computed(() => budgetText.value.trim() !== '' && !budget.value);
  const recommended = computed(() => (budget.value ? bestWithinBudget(reports.value, budget.value) : undefined));
  const selectedIndex = computed(
    () => pickedIndex.value ?? recommended.value?.index ?? rows.value.find((row) => row.final)?.index,
  );
  const selected = computed(() => rows.value.find((row) => row.index === selectedIndex.value));

  // A new run, or an edited budget, starts the choice afresh. Synchronously: a click that
  // follows must not be undone by a reset still queued.
  watch(
    () => run.trace?.dir,
    () => {
      pickedIndex.value = undefined;
      exportResult.value = undefined;
    },
    { flush: 'sync' },
  );
  watch([budgetMetric, budgetText], () => (pickedIndex.value = undefined), { flush: 'sync' });

  function chooseBudgetMetric(metric: BudgetMetric): void {
    budgetMetric.value = metric;
  }

  function typeBudget(text: string): void {
    budgetText.value = text;
  }

  function chooseExportFormat(format: ExportFormat): void {
    exportFormat.value = format;
  }

  function typeExportDestination(path: string): void {
    exportDestination.value = path;
  }

  function select(index: number): void {
    pickedIndex.value = index;
    exportResult.value = undefined;
  }

  /** A multi-exit export carries the threshold picked in the early-exit analysis (a max-softmax one; the model applies that rule). */
  function multiExitThreshold(): number | undefined {
    const analyses = useAnalysesStore();
    if (!EXPORT_FORMAT_KINDS[exportFormat.value].multiExit || analyses.earlyExit?.criterion !== 'max-softmax')
      return undefined;
    const threshold = analyses.thresholdPoint?.threshold;
    return threshold !== undefined && threshold > 0 ? threshold : undefined;
  }

  async function exportSelected(): Promise<boolean> {
    const trace = run.trace;
    const exit = selected.value;
    if (!trace || exit === undefined) return false;
    exportResult.value = undefined;
    const destination = exportDestination.value.trim();
    return studio.attempt(
      'Export failed',
      async () => {
        exportResult.value = await api.exportExit({
          run: trace.dir,
          exit: exitRefOf(exit),
          format: exportFormat.value,
          ...(destination ? { destination } : {}),
          ...(multiExitThreshold() !== undefined ? { threshold: multiExitThreshold() } : {}),
        });
      },
      exporting,
    );
  }

  const chooseDestination = () =>
    studio.attempt('Could not choose a folder', async () => {
      const { path } = await api.chooseFolder({ purpose: 'export' });
      if (path) exportDestination.value = path;
    });

  return {
    budgetMetric,
    budgetText,
    budget,
    budgetInvalid,
    exportFormat,
    exportDestination,
    exporting,
    exportResult,
    rows,
    reports,
    latencyFront,
    paramsFront,
    recommended,
    selectedIndex,
    selected,
    chooseBudgetMetric,
    typeBudget,
    chooseExportFormat,
    typeExportDestination,
    select,
    exportSelected,
    chooseDestination,
  };
});
