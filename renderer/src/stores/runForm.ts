/** The new-run form: its fields, their validation, and starting the run it describes. */
import { defineStore } from 'pinia';
import { computed, reactive, ref, watch } from 'vue';
import type { BackboneInspection, BackboneListing } from '../../../shared/backbones.js';
import { DEFAULT_RUN_CONFIG, blockCount, defaultExits, type RunConfig } from '../../../shared/spec.js';
import { useStudioApi } from '../api/current.js';
import { candidateStages, networkStages } from '../network.js';
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
  /** The backbone file's candidates (family 'imported'), once inspected, and the file they belong to. */
  const inspection = ref<{ path: string; result: BackboneInspection }>();
  const inspecting = ref(false);
  /** Why the backbone file could not be read, in the engine's words. */
  const backboneProblem = ref<string>();
  /** The pinned ImageNet backbones the engine can fetch, and whether each is cached. */
  const pinned = ref<BackboneListing[]>([]);
  const candidates = computed(() =>
    form.family === 'imported' && inspection.value?.path === form.backbonePath.trim()
      ? inspection.value.result.candidates
      : undefined,
  );
  const blocks = computed(() =>
    form.family === 'imported' ? candidates.value?.length : network.value ? blockCount(network.value) : undefined,
  );
  const stages = computed(() =>
    candidates.value ? candidateStages(candidates.value) : network.value ? networkStages(network.value) : [],
  );
  /** MACs up to each block, to draw the strip to scale (imported backbones). */
  const macs = computed(() => candidates.value?.map((c) => c.macs));

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
    if (candidates.value) form.exits = [...inspection.value!.result.defaultExits];
    else if (blocks.value !== undefined) form.exits = defaultExits(blocks.value);
  }

  /** Reads the backbone file's exit candidates and places the default exits on them. */
  async function inspectBackbone(): Promise<void> {
    const path = form.backbonePath.trim();
    if (!path) return;
    inspecting.value = true;
    backboneProblem.value = undefined;
    try {
      inspection.value = { path, result: await api.inspectBackbone({ path }) };
      useDefaultExits();
    } catch (error) {
      inspection.value = undefined;
      backboneProblem.value = (error as Error).message;
    } finally {
      inspecting.value = false;
    }
  }

  const listPinned = () =>
    studio.attempt('Could not list the pretrained backbones', async () => {
      pinned.value = await api.listBackbones({});
    });

  /** Downloads a pinned backbone (or finds it cached) and uses its file. */
  const usePinned = (name: string) =>
    studio.attempt(`Could not fetch ${name}`, async () => {
      const { path } = await api.fetchBackbone({ name });
      form.backbonePath = path;
      await inspectBackbone();
      await listPinned();
    });

  const chooseBackbone = () =>
    studio.attempt('Could not choose a file', async () => {
      const { path } = await api.chooseFolder({ purpose: 'backbone' });
      if (!path) return;
      form.backbonePath = path;
      await inspectBackbone();
    });

  watch(
    () => form.family,
    (family) => {
      if (family === 'imported' && !pinned.value.length) void listPinned();
    },
  );

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
    macs,
    inspecting,
    backboneProblem,
    pinned,
    inspectBackbone,
    usePinned,
    chooseBackbone,
    setField,
    toggleExit,
    useDefaultExits,
    clearExits,
    load,
    chooseDataset,
    submit,
  };
});
