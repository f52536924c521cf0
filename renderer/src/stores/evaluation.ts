/**
 * The evaluation of the shown run: computed by the engine on request (with progress, cached in
 * the run folder), one exit picked for the per-class table and confusion matrix, and the images
 * of the cell the user opened, a page at a time.
 */
import { defineStore } from 'pinia';
import { computed, ref, shallowRef, watch } from 'vue';
import {
  MAX_THUMBNAILS,
  type Evaluation,
  type EvaluationImages,
  type EvaluationSplit,
  type ImageSelection,
} from '../../../shared/evaluation.js';
import { useStudioApi } from '../api/current.js';
import { useRunStore } from './run.js';
import { useStudioStore } from './studio.js';

export const useEvaluationStore = defineStore('evaluation', () => {
  const api = useStudioApi();
  const studio = useStudioStore();
  const run = useRunStore();

  const split = ref<EvaluationSplit>('validation');
  const evaluation = shallowRef<Evaluation>();
  const exitIndex = ref(0);
  const progress = ref<{ done: number; total: number }>();
  const computing = ref(false);
  const selection = shallowRef<ImageSelection>();
  const images = shallowRef<EvaluationImages>();
  const loadingImages = ref(false);

  /** A run that held out nothing can only be evaluated on its test set. */
  const hasValidation = computed(() => (run.trace?.dataset?.validation ?? 0) > 0);

  function clear(): void {
    evaluation.value = undefined;
    selection.value = undefined;
    images.value = undefined;
    progress.value = undefined;
  }

  // Results belong to one run and split; another starts with none, on validation where it has one.
  watch(split, clear, { flush: 'sync' });
  watch(
    () => run.trace?.dir,
    () => {
      clear();
      split.value = hasValidation.value ? 'validation' : 'test';
    },
    { flush: 'sync', immediate: true },
  );

  api.onEvent((event) => {
    if (event.type === 'evaluation-progress' && event.run === run.trace?.dir && event.split === split.value) {
      progress.value = { done: event.done, total: event.total };
    }
  });

  const exit = computed(() => evaluation.value?.exits[exitIndex.value]);

  async function compute(): Promise<boolean> {
    const dir = run.trace?.dir;
    if (!dir) return false;
    const asked = split.value;
    return studio.attempt(
      'Evaluation failed',
      async () => {
        const result = await api.evaluate({ run: dir, split: asked });
        if (run.trace?.dir !== dir || split.value !== asked) return;
        evaluation.value = result;
        // The final exit first: the one every other is compared with.
        exitIndex.value = result.exits.length - 1;
      },
      computing,
    );
  }

  /** Another split: the results shown belong to the old one and are cleared (the watch above). */
  function chooseSplit(next: EvaluationSplit): void {
    split.value = next;
  }

  /** The exit whose per-class table and confusion matrix are shown. */
  function chooseExit(index: number): void {
    exitIndex.value = index;
  }

  /** Opens the images of a cell (from its first page), or another page of the open one. */
  async function openImages(next: ImageSelection, offset = 0): Promise<boolean> {
    const dir = run.trace?.dir;
    if (!dir || !evaluation.value) return false;
    selection.value = next;
    return studio.attempt(
      'Could not load the images',
      async () => {
        const page = await api.evaluationImages({
          run: dir,
          split: split.value,
          selection: next,
          offset,
          limit: MAX_THUMBNAILS,
        });
        if (selection.value === next) images.value = page;
      },
      loadingImages,
    );
  }

  function closeImages(): void {
    selection.value = undefined;
    images.value = undefined;
  }

  return {
    split,
    evaluation,
    exitIndex,
    exit,
    progress,
    computing,
    hasValidation,
    selection,
    images,
    loadingImages,
    chooseSplit,
    chooseExit,
    compute,
    openImages,
    closeImages,
  };
});
