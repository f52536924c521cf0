/**
 * The study form as data: which methods are ticked (each with or without self-distillation), how
 * many seeds, and the request they make with the New run form's settings, validated by
 * shared/study.ts's rules so the studio refuses what the engine would, in its words.
 */
import { METHODS, type RunConfig } from '../../shared/spec.js';
import {
  StudyMethodsSchema,
  StudySeedsSchema,
  parseStudyMethod,
  studyQueue,
  type StudyMethod,
} from '../../shared/study.js';
import { numberOf, type NumberEntry } from './runForm.js';

/** Every method a study can tick, in the order its rows appear: each of METHODS, then with +distill (not plain). */
export const STUDY_METHOD_CHOICES: readonly string[] = METHODS.flatMap((method) =>
  method === 'plain' ? [method] : [method, `${method}+distill`],
);

export interface StudyForm {
  /** Ticked method labels ("joint", "multiway+distill"). */
  methods: string[];
  seeds: NumberEntry;
}

export type StudyErrors = Partial<Record<'methods' | 'seeds' | 'form', string>>;

export interface StudyRequest {
  config: RunConfig;
  methods: StudyMethod[];
  seeds: number;
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
  if (!base) errors.form = 'The New run settings have problems: fix them there first.';
  if (!methods.success || !seeds.success || !base) return { errors };
  try {
    studyQueue({ base, methods: methods.data, seeds: seeds.data });
  } catch (error) {
    return { errors: { form: (error as Error).message } };
  }
  return { request: { config: base, methods: methods.data, seeds: seeds.data }, errors };
}
