/**
 * An imported backbone as an Mw-network: its blocks (one per exit candidate), a head after each
 * chosen candidate and after the last block, made for the dataset's classes. The stem is empty
 * (block 1 starts at the image), so exits are numbered like the candidates.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError, type ArchSpec } from '../../../../shared/spec.js';
import { ImportError } from '../../errors.js';
import { Random } from '../../random.js';
import { headMaker, type HeadMaker } from '../blocks.js';
import { ParamFactory, Sequence, StepClock } from '../layers.js';
import { MwNetwork } from '../network.js';
import { defaultImportedExits, importBackbone, type ExitCandidate } from './backbone.js';

type ImportedArch = Extract<ArchSpec, { family: 'imported' }>;

export interface ImportedNetworkOptions {
  /** Candidate ids followed by an auxiliary exit; default: about four spread by compute. */
  exits?: readonly number[];
  classes: number;
  seed: number;
  /** The exit heads (blocks.ts headMaker; default: the MW-BP code's BN-ReLU-GAP-FC). */
  head?: HeadMaker;
  /** The clock the heads' dropout follows (MwNetwork.clock). */
  clock?: StepClock;
  /** A name for the network ("MwImported-resnet18-5"). */
  name: string;
}

function checkedExits(candidates: readonly ExitCandidate[], exits: readonly number[] | undefined): number[] {
  if (!exits) return defaultImportedExits(candidates);
  const last = candidates.length;
  const outside = exits.filter((e) => e >= last);
  if (outside.length)
    throw new ConfigError(
      `arch.exits: candidate ${outside.join(', ')} is not an auxiliary exit of this backbone; its candidates are 1..${last - 1} (${last} is the final output; list them with mw-studio inspect --backbone FILE)`,
    );
  return [...exits].sort((a, b) => a - b);
}

export function buildImportedNetwork(bytes: Uint8Array, options: ImportedNetworkOptions): MwNetwork {
  const make = new ParamFactory(new Random(options.seed));
  const backbone = importBackbone(bytes, make);
  // The original classifier is not part of the network: new heads replace it.
  for (const p of [...(backbone.classifier?.params ?? []), ...(backbone.classifier?.buffers ?? [])])
    p.variable.dispose();
  let exits: number[];
  try {
    exits = checkedExits(backbone.candidates, options.exits);
  } catch (error) {
    for (const block of backbone.blocks) for (const p of [...block.params, ...block.buffers]) p.variable.dispose();
    throw error;
  }
  const exitBlocks = [...exits, backbone.blocks.length];
  const clock = options.clock ?? new StepClock();
  const head = options.head ?? headMaker('bn-relu', options.classes, clock);
  const heads = exitBlocks.map((b) => head(make.child(`exits.${b}`), backbone.candidates[b - 1]!.shape[0]!));
  return new MwNetwork(
    {
      family: 'imported',
      name: `${options.name}-${exitBlocks.length}`,
      inputShape: backbone.inputShape,
      classes: options.classes,
    },
    new Sequence([]),
    backbone.blocks,
    heads,
    exitBlocks,
    clock,
  );
}

/** The candidates and input of a backbone file, its weights read and released again. */
function candidatesOf(bytes: Uint8Array): { candidates: ExitCandidate[]; inputShape: [number, number, number] } {
  const backbone = importBackbone(bytes, new ParamFactory(new Random(0)));
  const all = [...backbone.blocks, ...(backbone.classifier ? [backbone.classifier] : [])];
  for (const layer of all) for (const p of [...layer.params, ...layer.buffers]) p.variable.dispose();
  return { candidates: backbone.candidates, inputShape: backbone.inputShape };
}

export function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The backbone's bytes, refusing a file that changed since the run recorded its checksum. */
export function readBackbone(arch: ImportedArch): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(arch.backbone);
  } catch (error) {
    throw new ImportError(
      `cannot read the backbone ${arch.backbone} (${(error as NodeJS.ErrnoException).code ?? String(error)}); give the path of an .onnx file`,
    );
  }
  if (arch.sha256 && sha256Of(bytes) !== arch.sha256)
    throw new ImportError(
      `the backbone ${arch.backbone} changed since the run started (SHA-256 ${sha256Of(bytes).slice(0, 12)}... instead of ${arch.sha256.slice(0, 12)}...); put the original file back or start a new run`,
    );
  return bytes;
}

/** "resnet18" from "/models/resnet18.onnx". */
export function backboneName(path: string): string {
  return (path.split(/[\\/]/).at(-1) ?? path).replace(/\.onnx$/i, '');
}

/**
 * The arch a new run records: the file's checksum, candidate count and input added, the exits checked
 * against its candidates. Reads and translates the whole file, so an unsupported operator is
 * refused here, before any run folder exists.
 */
export function recordBackbone(arch: ImportedArch): ImportedArch {
  const bytes = readBackbone(arch);
  const { candidates, inputShape } = candidatesOf(bytes);
  checkedExits(candidates, arch.exits);
  const [height, width, channels] = inputShape;
  if (height !== width)
    throw new ImportError(
      `the backbone ${arch.backbone} takes ${height}x${width} images; the studio brings images to a square size, so export it square`,
    );
  return { ...arch, sha256: sha256Of(bytes), blocks: candidates.length, inputSize: height, channels };
}

/** What `mw-studio inspect --backbone` shows: the candidates, the default exits and the input. */
export function inspectBackbone(path: string): {
  candidates: ExitCandidate[];
  defaultExits: number[];
  inputShape: [number, number, number];
} {
  const { candidates, inputShape } = candidatesOf(readBackbone({ family: 'imported', backbone: path }));
  return { candidates, defaultExits: defaultImportedExits(candidates), inputShape };
}
