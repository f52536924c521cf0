/**
 * The new-run form as data: what the fields hold, how they become a RunConfig, and which field
 * each validation problem belongs to. The rules themselves are shared/spec.ts's, so the form
 * refuses exactly what the engine would, with the engine's words.
 */
import {
  ArchSpecSchema,
  RunConfigSchema,
  DEFAULT_RESNET_BLOCK,
  parseRunConfig,
  resnetBlockOf,
  resolveExits,
  type ArchSpec,
  type HeadKind,
  type ResNetBlock,
  type Method,
  type RunConfig,
} from '../../shared/spec.js';

export const EMBEDDED_DATASET = 'embedded';

/** The recipes as a user picks them: what of the backbone trains. */
export const FREEZE_CHOICES = ['none', 'epochs', 'all'] as const;
export type FreezeChoice = (typeof FREEZE_CHOICES)[number];
export const FREEZE_LABELS: Record<FreezeChoice, string> = {
  none: 'Train everything',
  epochs: 'Heads first, then everything (Elastic)',
  all: 'Heads only, backbone frozen (SDN IC-only)',
};

/** What a number input's v-model holds: a number, or the raw text when it is not one (or is empty). */
export type NumberEntry = number | string;

export interface RunForm {
  datasetSource: 'embedded' | 'path';
  datasetPath: string;
  family: ArchSpec['family'];
  /** An imported backbone's ONNX file (family 'imported'). */
  backbonePath: string;
  depth: NumberEntry;
  width: NumberEntry;
  /** ResNet block variant (ignored for MobileNet). */
  block: ResNetBlock;
  /** Blocks followed by an auxiliary exit (the final output is implied). */
  exits: number[];
  method: Method;
  gamma: NumberEntry;
  epochs: NumberEntry;
  batchSize: NumberEntry;
  lr: NumberEntry;
  seed: NumberEntry;
  schedule: RunConfig['schedule'];
  /** Step schedule: fractions of training where the lr is cut, as typed ("0.4, 0.6"). */
  milestones: string;
  /** Self-distillation and gradient equilibrium apply to methods that train the exits (not plain). */
  distill: boolean;
  distillAlpha: NumberEntry;
  distillTemperature: NumberEntry;
  gradientEquilibrium: boolean;
  /** Exit heads (shared/spec.ts HEADS). */
  head: HeadKind;
  /** What of the backbone trains: all of it, none for the first epochs (Elastic), or none (SDN IC-only). */
  freeze: FreezeChoice;
  /** Elastic: epochs the backbone stays frozen (used when freeze is 'epochs'). */
  freezeEpochs: NumberEntry;
  /** Empty = the default (0.1 for a pretrained backbone, 1 from scratch). */
  backboneLrScale: NumberEntry;
  featureCache: boolean;
  augment: boolean;
  validationSplit: NumberEntry;
  imageSize: NumberEntry;
  limitTrain: NumberEntry;
  limitTest: NumberEntry;
}

/** Form fields that can carry a message, with the config path each stands for. */
const FIELD_PATHS = {
  dataset: 'dataset',
  family: 'arch.family',
  backbonePath: 'arch.backbone',
  depth: 'arch.depth',
  width: 'arch.width',
  block: 'arch.block',
  exits: 'arch.exits',
  method: 'method',
  gamma: 'gamma',
  epochs: 'epochs',
  batchSize: 'batchSize',
  lr: 'lr',
  seed: 'seed',
  schedule: 'schedule',
  milestones: 'milestones',
  distill: 'distill',
  distillAlpha: 'distillAlpha',
  distillTemperature: 'distillTemperature',
  gradientEquilibrium: 'gradientEquilibrium',
  head: 'head',
  freeze: 'freezeBackbone',
  freezeEpochs: 'freezeEpochs',
  backboneLrScale: 'backboneLrScale',
  featureCache: 'featureCache',
  augment: 'augment',
  validationSplit: 'validationSplit',
  imageSize: 'imageSize',
  limitTrain: 'limitTrain',
  limitTest: 'limitTest',
} as const;
export type FormField = keyof typeof FIELD_PATHS;
/** Messages per field; 'form' holds what belongs to no field. */
export type FieldErrors = Partial<Record<FormField | 'form', string>>;

export type FormValidation = { config: RunConfig; errors: FieldErrors } | { config: undefined; errors: FieldErrors };

export function formFromConfig(config: RunConfig): RunForm {
  const { arch } = config;
  return {
    datasetSource: config.dataset === EMBEDDED_DATASET ? 'embedded' : 'path',
    datasetPath: config.dataset === EMBEDDED_DATASET ? '' : config.dataset,
    family: arch.family,
    backbonePath: arch.family === 'imported' ? arch.backbone : '',
    depth: arch.family === 'resnet' ? arch.depth : 20,
    width: arch.family === 'imported' ? 1 : arch.width,
    block: arch.family === 'resnet' ? resnetBlockOf(arch) : DEFAULT_RESNET_BLOCK,
    exits: resolveExits(arch),
    method: config.method,
    gamma: config.gamma,
    epochs: config.epochs,
    batchSize: config.batchSize,
    lr: config.lr,
    seed: config.seed,
    schedule: config.schedule,
    milestones: config.milestones.join(', '),
    distill: config.distill,
    distillAlpha: config.distillAlpha,
    distillTemperature: config.distillTemperature,
    gradientEquilibrium: config.gradientEquilibrium,
    head: config.head,
    freeze: config.freezeBackbone ? 'all' : config.freezeEpochs > 0 ? 'epochs' : 'none',
    freezeEpochs: config.freezeEpochs || 1,
    backboneLrScale: config.backboneLrScale ?? '',
    featureCache: config.featureCache,
    augment: config.augment,
    validationSplit: config.validationSplit,
    imageSize: config.imageSize ?? '',
    limitTrain: config.limitTrain ?? '',
    limitTest: config.limitTest ?? '',
  };
}

/** Empty -> undefined (the schema then names the missing field); text that is no number -> NaN. */
export function numberOf(entry: NumberEntry): number | undefined {
  if (typeof entry === 'number') return entry;
  const text = entry.trim();
  return text === '' ? undefined : Number(text);
}

/** "0.4, 0.6" -> [0.4, 0.6]; empty -> [] (no cut); a piece that is no number -> NaN, which the schema names. */
function numberListOf(text: string): number[] {
  return text
    .split(',')
    .map((piece) => piece.trim())
    .filter((piece) => piece !== '')
    .map(Number);
}

/** Optional settings left empty are omitted, so the schema's defaults apply. */
function optional<K extends string>(key: K, entry: NumberEntry): { [P in K]?: number } {
  const value = numberOf(entry);
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: number };
}

/** The config the form describes, unvalidated. */
export function configInput(form: RunForm): unknown {
  const width = numberOf(form.width);
  const exits = [...form.exits].sort((a, b) => a - b);
  return {
    dataset: form.datasetSource === 'embedded' ? EMBEDDED_DATASET : form.datasetPath.trim(),
    arch:
      form.family === 'resnet'
        ? { family: 'resnet', depth: numberOf(form.depth), width, block: form.block, exits }
        : form.family === 'imported'
          ? { family: 'imported', backbone: form.backbonePath.trim(), exits }
          : { family: 'mobilenet', width, exits },
    method: form.method,
    gamma: numberOf(form.gamma),
    epochs: numberOf(form.epochs),
    batchSize: numberOf(form.batchSize),
    lr: numberOf(form.lr),
    seed: numberOf(form.seed),
    schedule: form.schedule,
    milestones: numberListOf(form.milestones),
    // Hidden for plain BP, so a box ticked under another method does not carry over to it.
    distill: form.method !== 'plain' && form.distill,
    distillAlpha: numberOf(form.distillAlpha),
    distillTemperature: numberOf(form.distillTemperature),
    gradientEquilibrium: form.method !== 'plain' && form.gradientEquilibrium,
    head: form.head,
    freezeEpochs: form.freeze === 'epochs' ? numberOf(form.freezeEpochs) : 0,
    freezeBackbone: form.freeze === 'all',
    featureCache: form.featureCache,
    ...optional('backboneLrScale', form.backboneLrScale),
    augment: form.augment,
    ...optional('validationSplit', form.validationSplit),
    ...optional('imageSize', form.imageSize),
    ...optional('limitTrain', form.limitTrain),
    ...optional('limitTest', form.limitTest),
  };
}

/** The field a problem at `path` ("arch.depth", "arch.exits.0") belongs to: the one whose path prefixes it. */
export function fieldOfPath(path: string): FormField | 'form' {
  const fields = Object.keys(FIELD_PATHS) as FormField[];
  return fields.find((field) => path === FIELD_PATHS[field] || path.startsWith(`${FIELD_PATHS[field]}.`)) ?? 'form';
}

function addError(errors: FieldErrors, path: string, message: string): void {
  const field = fieldOfPath(path);
  errors[field] = errors[field] ? `${errors[field]}; ${message}` : message;
}

/**
 * Validates the form as parseRunConfig would. Schema issues carry their path; the whole-network
 * rule (exits inside the network) comes back from parseRunConfig as "path: message".
 */
export function validateRunForm(form: RunForm): FormValidation {
  const input = configInput(form);
  const errors: FieldErrors = {};
  const parsed = RunConfigSchema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) addError(errors, issue.path.join('.'), issue.message);
    return { config: undefined, errors };
  }
  try {
    return { config: parseRunConfig(input), errors };
  } catch (error) {
    const message = (error as Error).message;
    const separator = message.indexOf(': ');
    addError(
      errors,
      separator < 0 ? '' : message.slice(0, separator),
      separator < 0 ? message : message.slice(separator + 2),
    );
    return { config: undefined, errors };
  }
}

/**
 * The network the form describes, for drawing its blocks; undefined while the architecture is
 * invalid. The width is left at 1: it changes channels, not the blocks.
 */
export function formNetwork(form: RunForm): ArchSpec | undefined {
  const arch = ArchSpecSchema.safeParse({ family: form.family, depth: numberOf(form.depth), width: 1 });
  return arch.success ? arch.data : undefined;
}
