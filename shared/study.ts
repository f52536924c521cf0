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
  /** Where the runs train (default: locally, one after another). */
  executor?: Executor;
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

/** Options the studio sets on every Slurm submission itself; an --sbatch-arg may not set them again. */
export const STUDIO_SBATCH_OPTIONS = [
  'array',
  'output',
  'error',
  'wrap',
  'signal',
  'requeue',
  'no-requeue',
  'parsable',
  'chdir',
  'job-name',
  'partition',
  'gres',
  'cpus-per-task',
  'time',
  'account',
  'wait',
] as const;

const slurmName = (what: string) =>
  z
    .string()
    .min(1, `${what} is required`)
    .max(64, `${what} is at most 64 characters`)
    .regex(/^[\w.-]+$/, `${what} is letters, digits, "_", "-" and "."`);

/** Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS. */
const SLURM_TIME =
  /^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}|\d+-\d{1,2}:\d{1,2}|\d+-\d{1,2}:\d{1,2}:\d{1,2})$/;

/** One free sbatch option, `--name` or `--name=value`, passed to sbatch as one argument (never through a shell). */
const SbatchArgSchema = z
  .string()
  .max(500, 'an sbatch option is at most 500 characters')
  .regex(/^--[a-z][a-z-]*(=[^\n\r\0]*)?$/, 'each sbatch option is one --name or --name=value (e.g. --mem=4G)')
  .refine((arg) => !(STUDIO_SBATCH_OPTIONS as readonly string[]).includes(arg.slice(2).split('=')[0]!), {
    error: (issue) =>
      `${String(issue.input).split('=')[0]} is set by the studio; give partition, GPUs, CPUs, time and account as their own settings`,
  });

/** Where a study's runs train: one after another in the engine, or as one Slurm job array. */
export const SlurmSettingsSchema = z
  .object({
    partition: slurmName('partition').optional(),
    /** GPUs per run, as --gres=gpu:N. */
    gpusPerRun: z
      .number({ error: 'GPUs per run must be a number' })
      .int('GPUs per run must be a whole number')
      .min(1, 'GPUs per run must be at least 1 (leave it out for none)')
      .max(16, 'GPUs per run is at most 16')
      .optional(),
    cpusPerRun: z
      .number({ error: 'CPUs per run must be a number' })
      .int('CPUs per run must be a whole number')
      .min(1, 'CPUs per run must be at least 1')
      .max(256, 'CPUs per run is at most 256')
      .default(1),
    /** Each run's time limit, in Slurm's format. */
    time: z.string().regex(SLURM_TIME, "time is minutes, HH:MM:SS or D-HH:MM:SS (Slurm's --time format)").optional(),
    account: slurmName('account').optional(),
    sbatchArgs: z.array(SbatchArgSchema).max(32, 'at most 32 sbatch options').default([]),
  })
  .strict();
export type SlurmSettings = z.infer<typeof SlurmSettingsSchema>;
export type SlurmSettingsInput = z.input<typeof SlurmSettingsSchema>;

export const EXECUTORS = ['local', 'slurm'] as const;
export const ExecutorSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('local') }).strict(),
  SlurmSettingsSchema.extend({
    kind: z.literal('slurm'),
    /** The compute backend each array element asks for (mw-studio train --backend); unset: the node's default. */
    backend: z.string().max(32).optional(),
  }).strict(),
]);
export type Executor = z.infer<typeof ExecutorSchema>;
export type SlurmExecutor = Extract<Executor, { kind: 'slurm' }>;

/** Slurm job states the studio shows (squeue's long names); ended ones are all but PENDING, RUNNING, REQUEUED... */
export const SLURM_LIVE_STATES = [
  'PENDING',
  'CONFIGURING',
  'RUNNING',
  'COMPLETING',
  'REQUEUED',
  'RESIZING',
  'SUSPENDED',
];
/** Ended states after which the studio resubmits the run from its checkpoint (a bounded number of times). */
export const SLURM_RESUBMIT_STATES = ['TIMEOUT', 'PREEMPTED', 'NODE_FAIL'];
/** How many times a run is resubmitted after its job was cut short (TIMEOUT, PREEMPTED, NODE_FAIL, a SIGTERM). */
export const MAX_SLURM_RESUBMITS = 3;

/** A run's place on the cluster: its array element, Slurm's state for it and how often it was submitted. */
export const SlurmJobSchema = z
  .object({
    /** "<array job id>_<task id>", as squeue and scancel name it. */
    job: z.string().regex(/^\d+_\d+$/),
    state: z.string().max(32),
    /** Why it is pending (squeue's reason), or why it ended. */
    reason: z.string().max(200).optional(),
    /** The node it runs on. */
    node: z.string().max(200).optional(),
    /** Times the studio resubmitted it on its own after Slurm cut it short (at most MAX_SLURM_RESUBMITS). */
    resubmits: z.number().int().nonnegative(),
  })
  .strict();
export type SlurmJob = z.infer<typeof SlurmJobSchema>;

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
          /** Slurm studies: the run's array element and its state. */
          slurm: SlurmJobSchema.optional(),
        })
        .strict(),
    ),
    status: z.enum(STUDY_STATUSES),
    /** Where the runs train; absent: one after another in the engine (studies recorded before Slurm). */
    executor: ExecutorSchema.optional(),
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
    ...(plan.executor ? { executor: plan.executor } : {}),
  };
}

/** Finished runs of a study (they have a finishedAt). */
export function finishedRuns(record: StudyRecord): number {
  return record.runs.filter((r) => r.finishedAt).length;
}

/**
 * Seconds left for the whole study: the live run's own ETA, plus the runs not yet started at
 * the mean duration of the finished ones (or, before any finished, the live run's expected
 * duration: elapsed plus its ETA), as many at a time as run now (a Slurm array runs several).
 * Undefined until there is something to go on.
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
  const lives = record.runs.filter((r) => r.startedAt && !r.finishedAt);
  const live = lives[0];
  const notStarted = record.runs.filter((r) => !r.startedAt).length;
  const liveLeft = live ? liveEtaSeconds : 0;
  if (liveLeft === undefined) return undefined;
  const perRun = durations.length
    ? durations.reduce((a, b) => a + b, 0) / durations.length
    : live?.startedAt
      ? seconds(live.startedAt, now) + liveLeft
      : undefined;
  if (perRun === undefined) return notStarted ? undefined : liveLeft;
  return liveLeft + Math.ceil(notStarted / Math.max(1, lives.length)) * perRun;
}
