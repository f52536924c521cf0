/** The new-run form: its fields, their validation, and starting the run it describes. */
import { defineStore } from 'pinia';
import { computed, reactive, watch } from 'vue';
import { DEFAULT_RUN_CONFIG, blockCount, defaultExits, type RunConfig } from '../../../shared/spec.js';
import { useStudioApi } from '../api/current.js';
import { networkStages } from '../network.js';
import { formFromConfig, formNetwork, validateRunForm, type RunForm } from '../runForm.js';
import { useRunStore } from './run.js';
import { useStudioStore } from './studio.js';

export const useRunFormStore = defineStore('runForm', () => {
  const api = useStudioApi();
  const studio = useStudioStore();
  const run = useRunStore();
  const form = reactive(formFromConfig(DEFAULT_RUN_CONFIG));

  const validation = computed(() => validateRunForm(form));
  const errors = computed(() => validation.value.errors);
  /** The run config the form describes, undefined while a field has a problem (a study starts from it). */
  const validConfig = computed(() => validation.value.config);
  const valid = computed(() => validConfig.value !== undefined);
  const network = computed(() => formNetwork(form));
  const blocks = computed(() => (network.value ? blockCount(network.value) : undefined));
  const stages = computed(() => (network.value ? networkStages(network.value) : []));

  // A shallower network drops the exits it no longer has (the last block is the final output).
  watch(blocks, (count) => {
    if (count !== undefined) form.exits = form.exits.filter((block) => block < count);
  });

  /** Sets one field as the user edits it (the form's inputs write through this, never into `form`). */
  function setField<K extends keyof RunForm>(key: K, value: RunForm[K]): void {
    form[key] = value;
  }

  function toggleExit(block: number): void {
    form.exits = form.exits.includes(block)
      ? form.exits.filter((b) => b !== block)
      : [...form.exits, block].sort((a, b) => a - b);
  }

  function useDefaultExits(): void {
    if (blocks.value !== undefined) form.exits = defaultExits(blocks.value);
  }

  function clearExits(): void {
    form.exits = [];
  }

  /** Fills the form from a run's settings ("run again with changes"). */
  function load(config: RunConfig): void {
    Object.assign(form, formFromConfig(config));
  }

  const chooseDataset = () =>
    studio.attempt('Could not choose a folder', async () => {
      const { path } = await api.chooseFolder({ purpose: 'dataset' });
      if (!path) return;
      form.datasetSource = 'path';
      form.datasetPath = path;
    });

  /** Starts the run when the form is valid; true when the engine accepted it. */
  async function submit(): Promise<boolean> {
    const { config } = validation.value;
    if (!config) return false;
    const started = await run.start(config);
    if (started) studio.show('live');
    return started;
  }

  return {
    form,
    errors,
    valid,
    validConfig,
    blocks,
    stages,
    setField,
    toggleExit,
    useDefaultExits,
    clearExits,
    load,
    chooseDataset,
    submit,
  };
});
