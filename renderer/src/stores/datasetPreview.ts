/** The New-run page's preview of the dataset the form names, fetched on request (loading a dataset takes seconds). */
import { defineStore } from 'pinia';
import { ref, shallowRef, watch } from 'vue';
import type { DatasetPreview } from '../../../shared/preview.js';
import { useStudioApi } from '../api/current.js';
import { EMBEDDED_DATASET } from '../runForm.js';
import { useRunFormStore } from './runForm.js';
import { useStudioStore } from './studio.js';

export const useDatasetPreviewStore = defineStore('datasetPreview', () => {
  const api = useStudioApi();
  const studio = useStudioStore();
  const runForm = useRunFormStore();
  const preview = shallowRef<DatasetPreview>();
  const loading = ref(false);

  /** What the preview depends on; a change makes the shown one stale. */
  const request = () => {
    const { form } = runForm;
    const imageSize = typeof form.imageSize === 'number' ? form.imageSize : Number(form.imageSize) || undefined;
    const seed = typeof form.seed === 'number' ? form.seed : Number(form.seed) || 0;
    return {
      dataset: form.datasetSource === 'embedded' ? EMBEDDED_DATASET : form.datasetPath.trim(),
      ...(imageSize ? { imageSize } : {}),
      augment: form.augment,
      seed,
    };
  };
  watch(
    () => JSON.stringify(request()),
    () => (preview.value = undefined),
  );

  async function load(): Promise<boolean> {
    const asked = request();
    if (!asked.dataset) return false;
    return studio.attempt(
      'Could not preview the dataset',
      async () => {
        const result = await api.previewDataset(asked);
        if (JSON.stringify(request()) === JSON.stringify(asked)) preview.value = result;
      },
      loading,
    );
  }

  return { preview, loading, load };
});
