/**
 * Studies in the studio: the study form (methods, seeds and where the runs train, on top of the
 * New run form's settings), starting, stopping and continuing a study, and the studies in the
 * runs root with their results. Locally the engine trains a study's runs one after another, each
 * the active run in turn, so the Live view follows them; on Slurm the runs train as array
 * elements elsewhere and the run shown live here is read from its folder every few seconds.
 * 'study' events carry the record and result at every change.
 */
import { defineStore } from 'pinia';
import { computed, reactive, ref, shallowRef, watch } from 'vue';
import type { StudyView } from '../../../shared/study.js';
import { formatDuration } from '../../../shared/format.js';
import { finishedRuns, studyEtaSeconds } from '../../../shared/study.js';
import { useStudioApi } from '../api/current.js';
import type { NumberEntry } from '../runForm.js';
import { progressFraction, traceFromDetail, type RunTrace } from '../runTrace.js';
import { EMPTY_SLURM_FORM, validateStudyForm, type SlurmField, type StudyForm } from '../studyPlan.js';
import { useRunStore } from './run.js';
import { useRunFormStore } from './runForm.js';
import { useStudioStore } from './studio.js';

/** How often the live Slurm element's folder is read: its metrics log grows at every step. */
export const ELEMENT_POLL_MS = 2000;

export const useStudyStore = defineStore('study', () => {
  const api = useStudioApi();
  const studio = useStudioStore();
  const run = useRunStore();
  const runForm = useRunFormStore();

  const form = reactive<StudyForm>({
    methods: ['plain', 'multiway'],
    seeds: 2,
    executor: 'local',
    slurm: { ...EMPTY_SLURM_FORM },
  });
  const validation = computed(() => validateStudyForm(form, runForm.validConfig));
  const errors = computed(() => validation.value.errors);
  /** Whether the engine's machine has Slurm's sbatch: the Slurm settings are offered then. */
  const slurmAvailable = computed(() => studio.info?.slurm === true);

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
  const onSlurm = computed(() => shown.value?.record.executor?.kind === 'slurm');
  const finished = computed(() => (shown.value ? finishedRuns(shown.value.record) : 0));
  /** The runs training now: started and not finished (on Slurm, several at once). */
  const liveEntries = computed(() => shown.value?.record.runs.filter((r) => r.startedAt && !r.finishedAt) ?? []);
  const liveEntry = computed(() => liveEntries.value[0]);

  /** Slurm: the index of the array element whose curves are shown (one picked, else the first running). */
  const picked = ref<number>();
  const watchedIndex = computed(() => {
    if (!onSlurm.value || !training.value) return undefined;
    const runs = shown.value!.record.runs;
    const running = (i: number | undefined) => i !== undefined && runs[i]?.run && runs[i]?.slurm?.state === 'RUNNING';
    if (running(picked.value)) return picked.value;
    const first = runs.findIndex((r) => r.run && r.slurm?.state === 'RUNNING');
    return first >= 0 ? first : undefined;
  });
  /** That element's run, read from its folder. */
  const element = shallowRef<RunTrace>();

  const etaSeconds = computed(() => {
    if (!shown.value || !training.value) return undefined;
    const eta = onSlurm.value ? element.value?.progress.etaSeconds : liveEta.value;
    return studyEtaSeconds(shown.value.record, eta);
  });

  /** The whole study's progress: finished runs plus the live run's share (on Slurm, the shown element's). */
  const fraction = computed(() => {
    const total = shown.value?.record.runs.length;
    if (!total) return undefined;
    const live = onSlurm.value ? element.value : liveEntry.value && run.showsActiveRun ? run.trace : undefined;
    return (finished.value + (live ? (progressFraction(live) ?? 0) : 0)) / total;
  });

  /** "run 2 of 4: multiway, seed 8 · ETA 3m for the study"; on Slurm, how many run and wait. */
  const progressLine = computed(() => {
    const record = shown.value?.record;
    if (!record) return '';
    const total = record.runs.length;
    const parts: string[] = [];
    if (onSlurm.value) {
      const count = (state: string) => record.runs.filter((r) => !r.finishedAt && r.slurm?.state === state).length;
      parts.push(
        `${finished.value} of ${total} runs finished`,
        `${count('RUNNING')} running`,
        `${count('PENDING')} pending`,
      );
    } else {
      const entry = liveEntry.value;
      parts.push(
        entry
          ? `run ${finished.value + 1} of ${total}: ${entry.method}, seed ${entry.seed}`
          : `${finished.value} of ${total} runs finished`,
      );
    }
    if (etaSeconds.value !== undefined) parts.push(`ETA ${formatDuration(etaSeconds.value)} for the study`);
    return parts.join(' · ');
  });

  let elementTimer: ReturnType<typeof setInterval> | undefined;
  async function readElement(): Promise<void> {
    const index = watchedIndex.value;
    const dir = index === undefined ? undefined : shown.value?.record.runs[index]?.run;
    if (!dir) return;
    try {
      const trace = traceFromDetail(await api.openRun({ run: dir }));
      // The watched element may have changed while its folder was read.
      if (shown.value?.record.runs[watchedIndex.value ?? -1]?.run === dir) element.value = trace;
    } catch {
      // The next read tries again; a run folder is briefly unreadable only while being created.
    }
  }
  watch(watchedIndex, (index, before) => {
    if (index === before) return;
    clearInterval(elementTimer);
    elementTimer = undefined;
    if (index === undefined) return;
    element.value = undefined;
    void readElement();
    elementTimer = setInterval(() => void readElement(), ELEMENT_POLL_MS);
  });

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

  function setSeeds(seeds: NumberEntry): void {
    form.seeds = seeds;
  }

  function setExecutor(kind: StudyForm['executor']): void {
    form.executor = kind;
  }

  function setSlurmField<F extends SlurmField>(field: F, value: StudyForm['slurm'][F]): void {
    form.slurm[field] = value;
  }

  /** Slurm: shows this array element's curves while it runs. */
  function watchElement(index: number): void {
    picked.value = index;
  }

  /** Starts the study the form describes; the Live view follows its local runs. True when the engine accepted it. */
  async function start(): Promise<boolean> {
    const { request } = validation.value;
    if (!request) return false;
    if (request.executor.kind === 'local') run.followLive();
    return studio.attempt(
      'Could not start the study',
      async () => {
        await api.startStudy(request);
      },
      acting,
    );
  }

  /** Continues a stopped or interrupted study: cut-short runs from their checkpoints, then the rest. */
  function resume(id: string): Promise<boolean> {
    if (studies.value.find((s) => s.record.id === id)?.record.executor?.kind !== 'slurm') run.followLive();
    return studio.attempt('Could not continue the study', () => api.resumeStudy({ study: id }), acting);
  }

  const stop = () => studio.attempt('Could not stop the study', () => api.stopStudy({}), acting);

  return {
    form,
    errors,
    valid: computed(() => validation.value.request !== undefined),
    slurmAvailable,
    studies,
    problems,
    shown,
    loading,
    acting,
    training,
    onSlurm,
    finished,
    etaSeconds,
    fraction,
    progressLine,
    liveEntries,
    liveEntry,
    watchedIndex,
    element,
    refresh,
    show,
    toggleMethod,
    setSeeds,
    setExecutor,
    setSlurmField,
    watchElement,
    start,
    resume,
    stop,
  };
});
