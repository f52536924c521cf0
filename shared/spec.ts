/**
 * The run specification: what a user asks the engine to train. One schema, used by the CLI,
 * the Electron IPC boundary, serve mode and the renderer's forms, so every face rejects the
 * same bad settings with the same reasons.
 */
import { z } from 'zod';
import { MOBILENET_BLOCKS } from './mobilenet.js';

export const METHODS = ['plain', 'joint', 'pairwise', 'multiway'] as const;
export type Method = (typeof METHODS)[number];

export const METHOD_LABELS: Record<Method, string> = {
  plain: 'Plain BP (final output only)',
  joint: 'Joint BP (weighted sum of exit losses)',
  pairwise: 'Pair-wise BP (one forward per exit)',
  multiway: 'Multi-way BP (paper)',
};

/**
 * Residual block variants: pre-activation with He et al.'s option-A shortcut (PreResNet, the
 * authors' default, whose ResNet-56 matches the paper's per-exit parameter counts), the
 * post-activation block with the option-A shortcut, and with a 1x1 conv + BN projection shortcut
 * (torchvision-style, the PyTorch yardstick's).
 */
export const RESNET_BLOCKS = ['preact', 'option-a', 'projection'] as const;
export type ResNetBlock = (typeof RESNET_BLOCKS)[number];

export const RESNET_BLOCK_LABELS: Record<ResNetBlock, string> = {
  preact: 'Pre-activation, option-A shortcut (PreResNet)',
  'option-a': 'Post-activation, option-A shortcut (He et al. CIFAR)',
  projection: 'Post-activation, 1x1 projection shortcut',
};

/** The block of new runs. */
export const DEFAULT_RESNET_BLOCK: ResNetBlock = 'preact';

/** The block of a ResNet spec; run folders written before the setting existed used the projection block. */
export function resnetBlockOf(arch: { block?: ResNetBlock | undefined }): ResNetBlock {
  return arch.block ?? 'projection';
}

export { MOBILENET_BLOCKS };

/** Residual blocks of a CIFAR-style ResNet of depth 6n+2: three stages of n blocks. */
export function resnetBlockCount(depth: number): number {
  return 3 * ((depth - 2) / 6);
}

export function isResnetDepth(depth: number): boolean {
  return Number.isInteger(depth) && depth >= 8 && (depth - 2) % 6 === 0;
}

const positiveInt = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .int(`${what} must be a whole number`)
    .positive(`${what} must be at least 1`);

const finitePositive = (what: string) =>
  z
    .number({ error: `${what} must be a number` })
    .refine((v) => Number.isFinite(v) && v > 0, `${what} must be a finite number above 0`);

const exitList = z
  .array(positiveInt('an exit block'))
  .max(64, 'at most 64 auxiliary exits')
  .refine((e) => new Set(e).size === e.length, 'exits must not repeat a block')
  .optional();

export const ArchSpecSchema = z.discriminatedUnion('family', [
  z.object({
    family: z.literal('resnet'),
    depth: z
      .number({ error: 'depth must be a number' })
      .refine(isResnetDepth, 'ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...)')
      .refine((d) => d <= 1202, 'ResNet depth is capped at 1202'),
    width: finitePositive('width').refine((w) => w <= 16, 'width factor is at most 16'),
    /** Absent in runs written before the setting existed: see resnetBlockOf. */
    block: z.enum(RESNET_BLOCKS, { error: `block must be one of ${RESNET_BLOCKS.join(', ')}` }).optional(),
    /** 1-based residual blocks followed by an auxiliary exit; the final output is always added. */
    exits: exitList,
  }),
  z.object({
    family: z.literal('mobilenet'),
    width: finitePositive('width multiplier').refine((w) => w <= 4, 'width multiplier is at most 4'),
    exits: exitList,
  }),
  z
    .object({
      family: z.literal('imported'),
      /** The ONNX file of the backbone (torchvision, timm, tf2onnx or this studio's own export). */
      backbone: z.string().min(1, 'backbone must name an .onnx file'),
      /** The file's SHA-256, recorded when the run starts: resuming refuses a file that changed. */
      sha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lowercase hex digits')
        .optional(),
      /** Exit candidates of the backbone (mw-studio inspect --backbone), recorded with the checksum. */
      blocks: positiveInt('blocks').optional(),
      /** The image side and channels the file declares, recorded with the checksum: the data is brought to them. */
      inputSize: positiveInt('input size').optional(),
      channels: positiveInt('channels').optional(),
      /** Candidate ids followed by an auxiliary exit; the final output is always added. */
      exits: exitList,
    })
    .strict(),
]);
export type ArchSpec = z.infer<typeof ArchSpecSchema>;

/**
 * Exit heads: the MW-BP authors' BN -> ReLU -> global average pool -> FC, or Elastic networks'
 * global average pool -> dropout -> FC (Zhou et al. 2018).
 */
export const HEADS = ['bn-relu', 'elastic'] as const;
export type HeadKind = (typeof HEADS)[number];

export const HEAD_LABELS: Record<HeadKind, string> = {
  'bn-relu': 'BN -> ReLU -> pool -> FC (MW-BP code)',
  elastic: 'pool -> dropout -> FC (Elastic)',
};

/** Input normalisation: the backbone's (ImageNet mean and std for a pretrained one) or the training set's. */
export const NORMALIZATIONS = ['backbone', 'dataset'] as const;
export type Normalization = (typeof NORMALIZATIONS)[number];

/** Families whose networks the studio builds and trains from scratch; any other family brings pretrained weights. */
const SCRATCH_FAMILIES: readonly string[] = ['resnet', 'mobilenet'];

export function isPretrained(arch: { family: string }): boolean {
  return !SCRATCH_FAMILIES.includes(arch.family);
}

/** Share of the training set held out for validation unless the user says otherwise. */
export const DEFAULT_VALIDATION_SPLIT = 0.1;

export const RunConfigSchema = z
  .object({
    /** 'embedded' (the Fashion-MNIST subset shipped with the studio) or a file/folder path. */
    dataset: z.string().min(1, 'dataset is required'),
    arch: ArchSpecSchema,
    method: z.enum(METHODS, { error: `method must be one of ${METHODS.join(', ')}` }),
    gamma: z
      .number({ error: 'gamma must be a number' })
      .refine((g) => Number.isFinite(g) && g >= 0 && g <= 10, 'gamma must be between 0 and 10'),
    epochs: positiveInt('epochs').max(10_000, 'epochs is at most 10000'),
    batchSize: positiveInt('batch size').max(4096, 'batch size is at most 4096'),
    lr: finitePositive('learning rate').refine((v) => v <= 10, 'learning rate is at most 10'),
    momentum: z.number().min(0).max(0.999).default(0.9),
    weightDecay: z.number().min(0).max(0.1).default(1e-4),
    schedule: z.enum(['step', 'cosine']).default('step'),
    /** Fractions of training at which the step schedule multiplies the lr by 0.1 (the paper's code: 40% and 60%). */
    milestones: z
      .array(
        z
          .number({ error: 'a milestone must be a number' })
          .gt(0, 'milestones lie between 0 and 1')
          .lt(1, 'milestones lie between 0 and 1'),
      )
      .max(8, 'at most 8 milestones')
      .refine((m) => m.every((v, i) => i === 0 || v > m[i - 1]!), 'milestones must increase (e.g. 0.4,0.6)')
      .default([0.4, 0.6]),
    /** Self-distillation: auxiliary exits also learn from the final exit's softened predictions. */
    distill: z.boolean().default(false),
    distillAlpha: z
      .number({ error: 'distill alpha must be a number' })
      .min(0, 'distill alpha lies between 0 and 1')
      .max(1, 'distill alpha lies between 0 and 1')
      .default(0.5),
    distillTemperature: finitePositive('distill temperature')
      .refine((t) => t <= 100, 'distill temperature is at most 100')
      .default(3),
    /** IMTA's gradient equilibrium: each block learns from the average of the exits at and above it. */
    gradientEquilibrium: z.boolean().default(false),
    seed: z
      .number()
      .int('seed must be a whole number')
      .min(0)
      .max(2 ** 31 - 1),
    augment: z.boolean().default(true),
    /**
     * Fraction of the training images held out for validation (0 = none), stratified and seeded:
     * per-epoch accuracy and the analyses use it, so the test set is scored once, at the end.
     */
    validationSplit: z.number().min(0).max(0.5, 'validation split is at most 0.5').default(DEFAULT_VALIDATION_SPLIT),
    /** Image folders: every image resized to imageSize x imageSize (default: the most common size, capped at 64). */
    imageSize: positiveInt('image size')
      .min(4, 'image size is at least 4')
      .max(512, 'image size is at most 512')
      .optional(),
    /** Exit head of every exit (HEADS). */
    head: z.enum(HEADS, { error: `head must be one of ${HEADS.join(', ')}` }).default('bn-relu'),
    /** Elastic: the backbone (stem and blocks) is frozen for the first K epochs, then everything trains. */
    freezeEpochs: z
      .number({ error: 'freeze epochs must be a number' })
      .int('freeze epochs must be a whole number')
      .min(0, 'freeze epochs is at least 0')
      .default(0),
    /** SDN IC-only: the backbone stays frozen throughout and only the exit heads train. */
    freezeBackbone: z.boolean().default(false),
    /** The backbone's learning rate is the lr times this (default: backboneLrScaleOf). */
    backboneLrScale: finitePositive('backbone lr scale')
      .refine((v) => v <= 10, 'backbone lr scale is at most 10')
      .optional(),
    /**
     * With the backbone frozen and augmentation off, each exit's head input is computed once and
     * reused in later epochs (false: recomputed every epoch, for comparison).
     */
    featureCache: z.boolean().default(true),
    /** Input normalisation (default: backbone for pretrained networks, dataset otherwise). */
    normalize: z.enum(NORMALIZATIONS, { error: `normalize must be one of ${NORMALIZATIONS.join(', ')}` }).optional(),
    limitTrain: positiveInt('limit-train').optional(),
    limitTest: positiveInt('limit-test').optional(),
  })
  .strict();

export type RunConfig = z.infer<typeof RunConfigSchema>;
export type RunConfigInput = z.input<typeof RunConfigSchema>;

/** The default network: every face (the new-run form, the CLI's help, the bench) starts from it. */
export const DEFAULT_ARCH: Extract<ArchSpec, { family: 'resnet' }> = {
  family: 'resnet',
  depth: 20,
  width: 1,
  block: DEFAULT_RESNET_BLOCK,
  exits: [3, 6],
};

export const DEFAULT_RUN_CONFIG: RunConfig = {
  dataset: 'embedded',
  arch: DEFAULT_ARCH,
  method: 'multiway',
  gamma: 2,
  epochs: 3,
  batchSize: 128,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 1e-4,
  schedule: 'step',
  milestones: [0.4, 0.6],
  distill: false,
  distillAlpha: 0.5,
  distillTemperature: 3,
  gradientEquilibrium: false,
  seed: 0,
  augment: true,
  validationSplit: DEFAULT_VALIDATION_SPLIT,
  head: 'bn-relu',
  freezeEpochs: 0,
  freezeBackbone: false,
  featureCache: true,
};

/** The backbone's learning-rate scale: as set, else 0.1 for a pretrained backbone (method.md) and 1 from scratch. */
export function backboneLrScaleOf(config: Pick<RunConfig, 'arch' | 'backboneLrScale'>): number {
  return config.backboneLrScale ?? (isPretrained(config.arch) ? 0.1 : 1);
}

/** Input side of a pretrained backbone whose file leaves the size open (torchvision's ImageNet size). */
export const PRETRAINED_INPUT_SIZE = 224;

/**
 * The input a pretrained backbone takes, as its file declares it (recorded in the arch when a
 * run starts): square side (else 224) and channels (else RGB); undefined for a network from scratch.
 */
export function backboneInput(arch: {
  family: string;
  inputSize?: number | undefined;
  channels?: number | undefined;
}): { size: number; channels: number } | undefined {
  return isPretrained(arch)
    ? { size: arch.inputSize ?? PRETRAINED_INPUT_SIZE, channels: arch.channels ?? 3 }
    : undefined;
}

/** The run's input normalisation: as set, else the backbone's for a pretrained network and the dataset's otherwise. */
export function normalizationOf(config: Pick<RunConfig, 'arch' | 'normalize'>): Normalization {
  return config.normalize ?? (isPretrained(config.arch) ? 'backbone' : 'dataset');
}

/** Whether the backbone is frozen during 1-based epoch `epoch` (IC-only throughout; Elastic for the first K). */
export function backboneFrozenIn(config: Pick<RunConfig, 'freezeBackbone' | 'freezeEpochs'>, epoch: number): boolean {
  return config.freezeBackbone || epoch <= config.freezeEpochs;
}

/** A readable, field-named message for a failed parse ("arch.depth: ResNet depth must be ..."). */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : 'config'}: ${issue.message}`)
    .join('; ');
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Validates a run configuration including the rules that need the architecture as a whole
 * (exits inside the network). Throws ConfigError with every problem named.
 */
export function parseRunConfig(input: unknown): RunConfig {
  const parsed = RunConfigSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error));
  const config = parsed.data;
  if (config.method === 'plain' && (config.distill || config.gradientEquilibrium)) {
    throw new ConfigError(
      `method: ${config.distill ? 'distillation' : 'gradient equilibrium'} trains the auxiliary exits' backbone, which plain BP does not; use joint, multiway or pairwise`,
    );
  }
  if (config.freezeBackbone && config.freezeEpochs > 0) {
    throw new ConfigError(
      'freezeEpochs: the backbone is already frozen throughout (freeze-backbone); give one of the two',
    );
  }
  if (config.freezeEpochs >= config.epochs) {
    throw new ConfigError(
      `freezeEpochs: ${config.freezeEpochs} of ${config.epochs} epochs leaves none to train the backbone; use fewer, or freeze-backbone to train the heads only`,
    );
  }
  if (config.freezeBackbone && config.gradientEquilibrium) {
    throw new ConfigError(
      'gradientEquilibrium: it shapes the backbone gradients, which a frozen backbone does not get',
    );
  }
  // An imported backbone's candidates are known once its file is read (the engine checks them there).
  if (config.arch.family === 'imported' && config.arch.blocks === undefined) return config;
  const blocks = blockCount(config.arch);
  const outside = (config.arch.exits ?? []).filter((b) => b >= blocks);
  if (outside.length) {
    throw new ConfigError(
      `arch.exits: block ${outside.join(', ')} is outside the network; auxiliary exits go after blocks 1..${blocks - 1} (block ${blocks} is the final output)`,
    );
  }
  return config;
}

/** Blocks of the network; for an imported backbone, its exit candidates once recorded (0 before its file is read). */
export function blockCount(arch: ArchSpec): number {
  if (arch.family === 'imported') return arch.blocks ?? 0;
  return arch.family === 'resnet' ? resnetBlockCount(arch.depth) : MOBILENET_BLOCKS;
}

/** "resnet20", "mobilenet0.5", "imported-resnet18": an architecture in a file-name-safe word (run and study folders). */
export function archSlug(arch: ArchSpec): string {
  if (arch.family === 'imported') {
    const file = arch.backbone.split(/[\\/]/).at(-1) ?? 'backbone';
    return `imported-${file.replace(/\.onnx$/i, '').replace(/[^A-Za-z0-9._-]+/g, '-')}`;
  }
  return arch.family === 'resnet' ? `resnet${arch.depth}` : `mobilenet${arch.width}`;
}

/** Layer index of the output of block b (stem conv is layer 1, each block adds two). */
export function layerOfBlock(block: number): number {
  return 2 * block + 1;
}

/**
 * Default auxiliary exits, following the paper's placement for ResNet-56 (layers 15, 25, 35, 45
 * = blocks 7, 12, 17, 22 of 27): every round(B/5.4) blocks back from the end, at most four,
 * none in the first quarter (shallow features make poor, loss-dominating exits).
 */
export function defaultExits(blocks: number): number[] {
  const spacing = Math.max(2, Math.round(blocks / 5.4));
  const exits: number[] = [];
  for (let b = blocks - spacing; b >= Math.max(2, blocks / 4) && exits.length < 4; b -= spacing) exits.unshift(b);
  return exits;
}

/** The auxiliary exits a run will use: the given ones (sorted) or the default placement. */
export function resolveExits(arch: ArchSpec): number[] {
  const blocks = blockCount(arch);
  return arch.exits ? [...arch.exits].sort((a, b) => a - b) : defaultExits(blocks);
}
