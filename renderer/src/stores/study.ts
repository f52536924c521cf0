/**
 * Studies in the studio: the study form (methods and seeds on top of the New run form's
 * settings), starting, stopping and continuing a study, and the studies in the runs root with
 * their results. The engine trains a study's runs one after another; each is the active run in
 * turn, so the Live view follows them, and 'study' events carry the record and result as each
 * run starts and ends.
 */
import { defineStore } from 'pinia';
import { computed, reactive, ref, shallowRef } from 'vue';
import type { StudyView } from '../../../shared/study.js';
import { finishedRuns, studyEtaSeconds } from '../../../shared/study.js';
import { useStudioApi } from '../api/current.js';
import { validateStudyForm, type StudyForm } from '../studyPlan.js';
import { useRunStore } from './run.js';
import { useRunFormStore } from './runForm.js';
import { useStudioStore } from './studio.js';

export const useStudyStore = defineStore('study', () => {
  const api = useStudioApi();
  const studio = useStudioStore();
  const run = useRunStore();
  const runForm = useRunFormStore();

  const form = reactive<StudyForm>({ methods: ['plain', 'multiway'], seeds: 2 });
  const validation = computed(() => validateStudyForm(form, runForm.validConfig));
  const errors = computed(() => validation.value.errors);

  /** Studies in the runs root, newest first. */
  const studies = ref<StudyView[]>([]);
  /** Study files in the runs root that could not be read, each message naming its file. */
  const problems = ref<string[]>([]);
  /** The study shown: the one training, or one picked from the list. */
  const shown = shallowRef<StudyView>();
  const loading = ref(false);
  const acting = ref(false);
  /** The live run's own ETA, from its latest batch. */
  const liveEta = ref<number>();

  const training = computed(() => shown.value?.record.status === 'running');
  const finished = computed(() => (shown.value ? finishedRuns(shown.value.record) : 0));
  const etaSeconds = computed(() =>
    shown.value && training.value ? studyEtaSeconds(shown.value.record, liveEta.value) : undefined,
  );
  /** The run training now: the one started and not finished. */
  const liveEntry = computed(() => shown.value?.record.runs.find((r) => r.startedAt && !r.finishedAt));

  function update(view: StudyView): void {
    // A run that could not even start (its dataset gone, say) fails the study without a trainer crash.
    const before = studies.value.find((s) => s.record.id === view.record.id)?.record.status;
    if (view.record.status === 'failed' && before !== 'failed')
      studio.notify(`The study stopped: ${view.record.message ?? 'a run failed'}`, 'error');
    const known = studies.value.some((s) => s.record.id === view.record.id);
    studies.value = known
      ? studies.value.map((s) => (s.record.id === view.record.id ? view : s))
      : [view, ...studies.value];
    if (!shown.value || shown.value.record.id === view.record.id || view.record.status === 'running')
      shown.value = view;
  }

  api.onEvent((event) => {
    if (event.type === 'study') update(event.study);
    if (event.type !== 'run') return;
    for (const e of event.events) {
      if (e.type === 'started') liveEta.value = undefined;
      if (e.type === 'batch') liveEta.value = e.etaSeconds;
    }
  });

  const refresh = () =>
    studio.attempt(
      'Could not list the studies',
      async () => {
        const listed = await api.listStudies({});
        studies.value = listed.studies;
        problems.value = listed.problems;
        const id = shown.value?.record.id;
        shown.value =
          studies.value.find((s) => s.record.id === id) ??
          studies.value.find((s) => s.record.status === 'running') ??
          studies.value[0];
      },
      loading,
    );

  function show(id: string): void {
    shown.value = studies.value.find((s) => s.record.id === id);
  }

  function toggleMethod(label: string): void {
    form.methods = form.methods.includes(label) ? form.methods.filter((m) => m !== label) : [...form.methods, label];
  }

  /** Starts the study the form describes; the Live view follows its runs. True when the engine accepted it. */
  async function start(): Promise<boolean> {
    const { request } = validation.value;
    if (!request) return false;
    run.followLive();
    return studio.attempt(
      'Could not start the study',
      async () => {
        await api.startStudy(request);
      },
      acting,
    );
  }

  /** Continues a stopped or interrupted study: its cut-short run from the checkpoint, then the rest. */
  function resume(id: string): Promise<boolean> {
    run.followLive();
    return studio.attempt('Could not continue the study', () => api.resumeStudy({ study: id }), acting);
  }

  const stop = () => studio.attempt('Could not stop the study', () => api.stopStudy({}), acting);

  return {
    form,
    errors,
    valid: computed(() => validation.value.request !== undefined),
    studies,
    problems,
    shown,
    loading,
    acting,
    training,
    finished,
    etaSeconds,
    liveEntry,
    refresh,
    show,
    toggleMethod,
    start,
    resume,
    stop,
  };
});
