/**
 * A study: one network, data and recipe trained under several methods and seeds, one run after
 * another, summarized per exit as mean ± spread per method with the exit tax against plain BP.
 * Shared by the CLI's `mw-studio study` and the studio: the methods, the queue of run configs,
 * the record kept as `<id>.study.json` in the runs root, and the whole study's ETA.
 */
import { z } from 'zod';
import { methodLabel, type StudyRow } from './comparison.js';
import { ConfigError, METHODS, parseRunConfig, RunConfigSchema, type Method, type RunConfig } from './spec.js';

export const MAX_STUDY_SEEDS = 100;
export const MAX_STUDY_METHODS = 16;

/** One method of a study: a training method with self-distillation and gradient equilibrium on or off. */
export const StudyMethodSchema = z
  .object({
    method: z.enum(METHODS, { error: `method must be one of ${METHODS.join(', ')}` }),
    distill: z.boolean().default(false),
    gradientEquilibrium: z.boolean().default(false),
  })
  .strict();
export type StudyMethod = z.infer<typeof StudyMethodSchema>;

/** "multiway+distill" -> {method: 'multiway', distill: true, gradientEquilibrium: false}; the inverse of methodLabel. */
export function parseStudyMethod(label: string): StudyMethod {
  const [method, ...extras] = label.trim().split('+');
  if (!METHODS.includes(method as Method))
    throw new ConfigError(`methods: "${label}" does not start with one of ${METHODS.join(', ')}`);
  const unknown = extras.filter((e) => e !== 'distill' && e !== 'ge');
  if (unknown.length)
    throw new ConfigError(`methods: "${label}" has "+${unknown[0]}"; the options are +distill and +ge`);
  return { method: method as Method, distill: extras.includes('distill'), gradientEquilibrium: extras.includes('ge') };
}

export const StudyMethodsSchema = z
  .array(StudyMethodSchema)
  .min(1, 'a study needs at least one method')
  .max(MAX_STUDY_METHODS, `at most ${MAX_STUDY_METHODS} methods`)
  .refine((methods) => new Set(methods.map(methodLabel)).size === methods.length, 'methods must not repeat');

export const StudySeedsSchema = z
  .number({ error: 'seeds must be a number' })
  .int('seeds must be a whole number')
  .min(1, 'seeds must be at least 1')
  .max(MAX_STUDY_SEEDS, `seeds is at most ${MAX_STUDY_SEEDS}`);

/** What a study trains: `base` (any valid run config) under each method, with seeds base.seed, base.seed + 1, ... */
export interface StudyPlan {
  base: RunConfig;
  methods: StudyMethod[];
  seeds: number;
}

/**
 * Every run config of the study, methods in the order given, seeds within each, all validated
 * up front so a bad combination (plain+distill, a seed past the maximum) fails before the first
 * run. Throws ConfigError naming the method.
 */
export function studyQueue(plan: StudyPlan): RunConfig[] {
  return plan.methods.flatMap((method) =>
    Array.from({ length: plan.seeds }, (_, i) => {
      try {
        return parseRunConfig({ ...plan.base, ...method, seed: plan.base.seed + i });
      } catch (error) {
        throw new ConfigError(`${methodLabel(method)}: ${(error as Error).message}`);
      }
    }),
  );
}

/** File names of studies in the runs root: `<id>.study.json`, the id safe in a path. */
export const STUDY_FILE_SUFFIX = '.study.json';
/** A name within the runs root (a study id, a run folder): no separators, no leading dot. */
const nameInRunsRoot = (what: string) =>
  z
    .string()
    .min(1, `${what} is required`)
    .max(200)
    .regex(/^\w[\w.-]*$/, `${what} is letters, digits, "_", "-" and "." (not first)`);
export const StudyIdSchema = nameInRunsRoot('a study id');

export const STUDY_STATUSES = ['running', 'stopped', 'completed', 'interrupted', 'failed'] as const;
export type StudyStatus = (typeof STUDY_STATUSES)[number];

const isoTime = z.iso.datetime();

export const StudyRecordSchema = z
  .object({
    id: StudyIdSchema,
    createdAt: isoTime,
    base: RunConfigSchema,
    methods: StudyMethodsSchema,
    seeds: StudySeedsSchema,
    /** One entry per queued run, in order (studyQueue's); `run` names its folder in the runs root once created. */
    runs: z.array(
      z
        .object({
          method: z.string(),
          seed: z.number().int().nonnegative(),
          run: nameInRunsRoot('a run folder name').optional(),
          startedAt: isoTime.optional(),
          finishedAt: isoTime.optional(),
        })
        .strict(),
    ),
    status: z.enum(STUDY_STATUSES),
    /** The engine process running it; a running study whose process is gone was interrupted. */
    pid: z.number().int().optional(),
    /** Why the study failed. */
    message: z.string().optional(),
  })
  .strict();
export type StudyRecord = z.infer<typeof StudyRecordSchema>;

export const StudyRowSchema = z.object({
  method: z.string(),
  runs: z.number().int(),
  exits: z.array(z.object({ block: z.number().int(), final: z.boolean(), mean: z.number(), spread: z.number() })),
  exitTax: z.number().optional(),
}) satisfies z.ZodType<StudyRow>;

/** A study and its result so far: studyTable over its finished runs. */
export const StudyViewSchema = z.object({
  record: StudyRecordSchema,
  rows: z.array(StudyRowSchema),
  /** Finished runs whose folders cannot be read any more (deleted, say): left out of rows, with why. */
  missing: z.array(z.string()),
});
export type StudyView = z.infer<typeof StudyViewSchema>;

/** The studies of a runs root, and the study files there that could not be read (each message names its file). */
export const StudyListSchema = z.object({ studies: z.array(StudyViewSchema), problems: z.array(z.string()) });
export type StudyList = z.infer<typeof StudyListSchema>;

/** A new study's record: every queued run, none started. Validates the plan (studyQueue). */
export function newStudyRecord(id: string, plan: StudyPlan, now = new Date()): StudyRecord {
  const queue = studyQueue(plan);
  return {
    id,
    createdAt: now.toISOString(),
    base: plan.base,
    methods: plan.methods,
    seeds: plan.seeds,
    runs: queue.map((config) => ({ method: methodLabel(config), seed: config.seed })),
    status: 'running',
  };
}

/** Finished runs of a study (they have a finishedAt). */
export function finishedRuns(record: StudyRecord): number {
  return record.runs.filter((r) => r.finishedAt).length;
}

/**
 * Seconds left for the whole study: the live run's own ETA, plus each run not yet started at
 * the mean duration of the finished ones (or, before any finished, the live run's expected
 * duration: elapsed plus its ETA). Undefined until there is something to go on.
 */
export function studyEtaSeconds(
  record: StudyRecord,
  liveEtaSeconds: number | undefined,
  now = Date.now(),
): number | undefined {
  const seconds = (from: string, to: number) => (to - Date.parse(from)) / 1000;
  const durations = record.runs.flatMap((r) =>
    r.startedAt && r.finishedAt ? [seconds(r.startedAt, Date.parse(r.finishedAt))] : [],
  );
  const live = record.runs.find((r) => r.startedAt && !r.finishedAt);
  const notStarted = record.runs.filter((r) => !r.startedAt).length;
  const liveLeft = live ? liveEtaSeconds : 0;
  if (liveLeft === undefined) return undefined;
  const perRun = durations.length
    ? durations.reduce((a, b) => a + b, 0) / durations.length
    : live?.startedAt
      ? seconds(live.startedAt, now) + liveLeft
      : undefined;
  if (perRun === undefined) return notStarted ? undefined : liveLeft;
  return liveLeft + notStarted * perRun;
}
