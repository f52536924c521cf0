/**
 * Export folders are written whole or not at all: the files go into a hidden staging folder next
 * to the destination, which is renamed into place only once everything is on disk. A failure
 * removes the staging folder and leaves the destination as it was.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ExportError, messageOf } from '../errors.js';
export { writeFileFlushed } from '../runs/files.js';

/** Every file an export may hold: a folder holding nothing else is a previous export, safe to replace. */
export const EXPORT_FILES = {
  layersModel: 'model.json',
  layersWeights: 'weights.bin',
  onnxModel: 'model.onnx',
  earlyExit: 'early-exit.json',
  cardJson: 'model-card.json',
  cardMarkdown: 'MODEL_CARD.md',
  readme: 'README.md',
} as const;

/** The in-browser demo beside every export: its page and script, and the runtime it loads. */
export const DEMO_FILES = {
  page: 'index.html',
  script: 'demo.js',
  onnxRuntime: 'ort.wasm.bundle.min.js',
  onnxWasm: 'ort-wasm-simd-threaded.wasm',
  tfjsBundle: 'tf.min.js',
} as const;

const EXPORT_FILE_NAMES: ReadonlySet<string> = new Set([...Object.values(EXPORT_FILES), ...Object.values(DEMO_FILES)]);

function reasonOf(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOTDIR':
    case 'EEXIST':
      return 'part of the path is a file, not a folder';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'the file system is read-only';
    case 'ENOSPC':
      return 'the disk is full';
    default:
      return messageOf(error);
  }
}

/** The destination must be new, an empty folder, or a previous export: never a folder of other files. */
async function checkReplaceable(target: string): Promise<boolean> {
  const info = await stat(target).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new ExportError(`cannot write the export to ${target}: ${reasonOf(error)}`);
  });
  if (!info) return false;
  if (!info.isDirectory()) throw new ExportError(`cannot write the export to ${target}: it is a file, not a folder`);
  const foreign = (await readdir(target)).filter((name) => !EXPORT_FILE_NAMES.has(name));
  if (foreign.length) {
    const listed = foreign.slice(0, 5).join(', ') + (foreign.length > 5 ? `, ... (${foreign.length} in all)` : '');
    throw new ExportError(
      `cannot write the export to ${target}: the folder holds files that are not part of an export (${listed}); choose a new or empty folder`,
    );
  }
  return true;
}

/** Writes to one destination in progress, so that two exports there (a double click) take turns. */
const writing = new Map<string, Promise<unknown>>();

/**
 * Creates `destination` holding exactly what `fill` writes into the folder it is given, replacing
 * a previous export there. Returns the absolute paths of the files, sorted.
 */
export function writeExportFolder(destination: string, fill: (dir: string) => Promise<void>): Promise<string[]> {
  const target = resolve(destination);
  const turn = (writing.get(target) ?? Promise.resolve()).then(
    () => replaceFolder(target, fill),
    () => replaceFolder(target, fill),
  );
  writing.set(target, turn);
  const forget = () => {
    if (writing.get(target) === turn) writing.delete(target);
  };
  turn.then(forget, forget);
  return turn;
}

async function replaceFolder(target: string, fill: (dir: string) => Promise<void>): Promise<string[]> {
  const parent = dirname(target);
  const tag = randomBytes(4).toString('hex');
  const staging = join(parent, `.${basename(target)}.${tag}.partial`);
  try {
    await mkdir(parent, { recursive: true });
    await mkdir(staging);
  } catch (error) {
    throw new ExportError(`cannot write the export to ${target}: ${reasonOf(error)}`);
  }
  try {
    const replacing = await checkReplaceable(target);
    await fill(staging);
    if (replacing) {
      const previous = join(parent, `.${basename(target)}.${tag}.previous`);
      await rename(target, previous);
      try {
        await rename(staging, target);
      } catch (error) {
        await rename(previous, target);
        throw error;
      }
      await rm(previous, { recursive: true, force: true });
    } else {
      await rename(staging, target);
    }
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error instanceof ExportError
      ? error
      : new ExportError(`cannot write the export to ${target}: ${reasonOf(error)}`);
  }
  return (await readdir(target)).sort().map((name) => join(target, name));
}
