/**
 * The study form as data: which methods are ticked (each with or without self-distillation and
 * gradient equilibrium), how many seeds, where the runs train (here, or on Slurm with its
 * settings), and the request they make with the New run form's settings, validated by
 * shared/study.ts's rules so the studio refuses what the engine would, in its words.
 */
import { METHODS, type Method, type RunConfig } from '../../shared/spec.js';
import {
  ExecutorSchema,
  StudyMethodsSchema,
  StudySeedsSchema,
  parseStudyMethod,
  studyQueue,
  type Executor,
  type StudyMethod,
} from '../../shared/study.js';
import { numberOf, type NumberEntry } from './runForm.js';

/** What can be added to a method: self-distillation, gradient equilibrium, both (never to plain BP). */
export const METHOD_VARIANTS = ['', '+distill', '+ge', '+distill+ge'] as const;
export type MethodVariant = (typeof METHOD_VARIANTS)[number];

/** The label of `method` with `variant` ("multiway+distill+ge"), or undefined for plain BP with extras. */
export function methodChoice(method: Method, variant: MethodVariant): string | undefined {
  return method === 'plain' && variant ? undefined : `${method}${variant}`;
}

/** Every method a study can tick, in the order its rows appear: each of METHODS with each variant (plain alone). */
export const STUDY_METHOD_CHOICES: readonly string[] = METHODS.flatMap((method) =>
  METHOD_VARIANTS.flatMap((variant) => methodChoice(method, variant) ?? []),
);

/** The Slurm settings as typed: text and numbers as entered, free sbatch options one per line. */
export interface SlurmForm {
  partition: string;
  account: string;
  time: string;
  gpusPerRun: NumberEntry;
  cpusPerRun: NumberEntry;
  sbatchArgs: string;
}
export type SlurmField = keyof SlurmForm;

export const EMPTY_SLURM_FORM: SlurmForm = {
  partition: '',
  account: '',
  time: '',
  gpusPerRun: '',
  cpusPerRun: 1,
  sbatchArgs: '',
};

export interface StudyForm {
  /** Ticked method labels ("joint", "multiway+distill"). */
  methods: string[];
  seeds: NumberEntry;
  executor: Executor['kind'];
  slurm: SlurmForm;
}

export type StudyErrors = Partial<Record<'methods' | 'seeds' | 'form' | SlurmField, string>>;

export interface StudyRequest {
  config: RunConfig;
  methods: StudyMethod[];
  seeds: number;
  executor: Executor;
}

/** The schema's field names are the form's; an empty field is left out (Slurm's default). */
function executorOf(form: StudyForm): ReturnType<typeof ExecutorSchema.safeParse> {
  if (form.executor === 'local') return ExecutorSchema.safeParse({ kind: 'local' });
  const { partition, account, time, gpusPerRun, cpusPerRun, sbatchArgs } = form.slurm;
  const text = (value: string, key: string) => (value.trim() ? { [key]: value.trim() } : {});
  const count = (value: NumberEntry, key: string) => (String(value).trim() === '' ? {} : { [key]: numberOf(value) });
  return ExecutorSchema.safeParse({
    kind: 'slurm',
    ...text(partition, 'partition'),
    ...text(account, 'account'),
    ...text(time, 'time'),
    ...count(gpusPerRun, 'gpusPerRun'),
    ...count(cpusPerRun, 'cpusPerRun'),
    sbatchArgs: sbatchArgs
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean),
  });
}

/** The study request, or the problems per field; `base` is the New run form's config (undefined while it is invalid). */
export function validateStudyForm(
  form: StudyForm,
  base: RunConfig | undefined,
): { request?: StudyRequest; errors: StudyErrors } {
  const errors: StudyErrors = {};
  const ordered = STUDY_METHOD_CHOICES.filter((label) => form.methods.includes(label));
  const methods = StudyMethodsSchema.safeParse(ordered.map(parseStudyMethod));
  if (!methods.success) errors.methods = methods.error.issues.map((i) => i.message).join('; ');
  const seeds = StudySeedsSchema.safeParse(numberOf(form.seeds));
  if (!seeds.success) errors.seeds = seeds.error.issues.map((i) => i.message).join('; ');
  const executor = executorOf(form);
  if (!executor.success)
    for (const issue of executor.error.issues) errors[issue.path[0] as SlurmField] ??= issue.message;
  if (!base) errors.form = 'The New run settings have problems: fix them there first.';
  if (!methods.success || !seeds.success || !executor.success || !base) return { errors };
  try {
    studyQueue({ base, methods: methods.data, seeds: seeds.data });
  } catch (error) {
    return { errors: { form: (error as Error).message } };
  }
  return { request: { config: base, methods: methods.data, seeds: seeds.data, executor: executor.data }, errors };
}

/** "1 seed", "3 runs". */
export const plural = (count: number, noun: string) => `${count} ${noun}${count === 1 ? '' : 's'}`;
