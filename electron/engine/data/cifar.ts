/**
 * CIFAR-10 and CIFAR-100 in their official binary format: fixed-size records of label byte(s)
 * followed by a 32x32 image stored channel by channel (1024 R, 1024 G, 1024 B, rows in order).
 * Read from the official .tar.gz (in memory, only the batch files kept), the extracted folder,
 * or the folder above it.
 */
import { basename, join } from 'node:path';
import { list } from 'tar';
import type { ImageSet, RawDataset } from './dataset.js';
import { MAX_DATA_BYTES, fail, formatBytes, listVisible, readFileCapped } from './files.js';
import { checkLabels } from './sets.js';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXEL_BYTES = 3 * PLANE;

interface CifarVariant {
  name: string;
  /** The folder the official archive unpacks to. */
  folder: string;
  train: string[];
  test: string[];
  /** Optional file listing the class names, one per line. */
  namesFile: string;
  classCount: number;
  /** CIFAR-10 records carry one label byte; CIFAR-100 a coarse then a fine label (the one used). */
  labelBytes: number;
  defaultClasses: string[];
}

const CIFAR10: CifarVariant = {
  name: 'CIFAR-10',
  folder: 'cifar-10-batches-bin',
  train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
  test: ['test_batch.bin'],
  namesFile: 'batches.meta.txt',
  classCount: 10,
  labelBytes: 1,
  defaultClasses: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
};

const CIFAR100: CifarVariant = {
  name: 'CIFAR-100',
  folder: 'cifar-100-binary',
  train: ['train.bin'],
  test: ['test.bin'],
  namesFile: 'fine_label_names.txt',
  classCount: 100,
  labelBytes: 2,
  defaultClasses: Array.from({ length: 100 }, (_, i) => `class ${i}`),
};

const VARIANTS = [CIFAR10, CIFAR100];

/** The batch files of one CIFAR copy, wherever they are stored. */
interface CifarFiles {
  names: ReadonlySet<string>;
  read(name: string): Promise<Buffer>;
  /** How to name a file in an error message. */
  describe(name: string): string;
  /** How to name the whole copy in an error message. */
  where: string;
}

/** Which variant a set of file names belongs to: the training batches identify it. */
function variantOf(names: ReadonlySet<string>): CifarVariant | undefined {
  return VARIANTS.find((variant) => variant.train.some((name) => names.has(name)));
}

export function isArchiveName(path: string): boolean {
  return /\.(tar\.gz|tgz|tar)$/i.test(path);
}

/** A folder holding CIFAR batches directly or in the official sub-folder; undefined otherwise. */
export async function findCifarFolder(dir: string): Promise<string | undefined> {
  const names = new Set(await listVisible(dir));
  if (variantOf(names)) return dir;
  const inner = VARIANTS.find((variant) => names.has(variant.folder));
  if (!inner) return undefined;
  const innerDir = join(dir, inner.folder);
  return variantOf(new Set(await listVisible(innerDir))) ? innerDir : undefined;
}

export async function loadCifarFolder(dir: string): Promise<RawDataset> {
  const files: CifarFiles = {
    names: new Set(await listVisible(dir)),
    read: (name) => readFileCapped(join(dir, name), MAX_DATA_BYTES),
    describe: (name) => join(dir, name),
    where: dir,
  };
  return decodeCifar(files);
}

export async function loadCifarArchive(archive: string): Promise<RawDataset> {
  const entries = await readArchiveEntries(archive);
  const files: CifarFiles = {
    names: new Set(entries.keys()),
    read: async (name) => entries.get(name)!.data,
    describe: (name) => `${archive} (${entries.get(name)?.path ?? name})`,
    where: archive,
  };
  return decodeCifar(files);
}

/**
 * The CIFAR files of a tar archive (gzip detected by tar itself), kept in memory by base name.
 * Everything else in the archive is skipped unread, and the kept bytes are capped.
 */
async function readArchiveEntries(archive: string): Promise<Map<string, { path: string; data: Buffer }>> {
  const wanted = new Set(VARIANTS.flatMap((v) => [...v.train, ...v.test, v.namesFile]));
  const entries = new Map<string, { path: string; data: Buffer }>();
  let budget = MAX_DATA_BYTES;
  let tooLarge: string | undefined;
  try {
    await list({
      file: archive,
      strict: true,
      filter: (path, entry) => 'type' in entry && entry.type === 'File' && wanted.has(basename(path)),
      onReadEntry: (entry) => {
        // Entries not consumed here are drained by tar, so skipping one costs no memory.
        if (entry.size > budget) {
          tooLarge ??= entry.path;
          return;
        }
        budget -= entry.size;
        const chunks: Buffer[] = [];
        entry.on('data', (chunk: Buffer) => chunks.push(chunk));
        entry.on('end', () => entries.set(basename(entry.path), { path: entry.path, data: Buffer.concat(chunks) }));
      },
    });
  } catch (error) {
    fail(archive, `is not a readable tar archive (${(error as Error).message})`);
  }
  if (tooLarge) fail(archive, `${tooLarge} takes the CIFAR data past the ${formatBytes(MAX_DATA_BYTES)} limit`);
  return entries;
}

async function decodeCifar(files: CifarFiles): Promise<RawDataset> {
  const variant = variantOf(files.names);
  if (!variant) fail(files.where, `holds neither ${CIFAR10.folder}/ nor ${CIFAR100.folder}/ batch files`);
  const missing = [...variant.train, ...variant.test].filter((name) => !files.names.has(name));
  if (missing.length) fail(files.where, `is a ${variant.name} copy missing ${missing.join(', ')}`);
  const classes = files.names.has(variant.namesFile)
    ? parseClassNames(
        (await files.read(variant.namesFile)).toString('utf8'),
        files.describe(variant.namesFile),
        variant.classCount,
      )
    : [...variant.defaultClasses];
  return {
    name: variant.name,
    source: files.where,
    shape: { height: SIDE, width: SIDE, channels: 3 },
    classes,
    train: await decodeBatches(files, variant.train, variant),
    test: await decodeBatches(files, variant.test, variant),
    flipAugment: true,
  };
}

/** Class names listed one per line; blank lines (the meta files end with some) are dropped. */
function parseClassNames(text: string, file: string, expected: number): string[] {
  const names = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (names.length !== expected) fail(file, `lists ${names.length} class names, expected ${expected}`);
  return names;
}

/** Decodes batch files into one set, converting each record from CHW planes to HWC pixels. */
async function decodeBatches(files: CifarFiles, names: string[], variant: CifarVariant): Promise<ImageSet> {
  const recordBytes = variant.labelBytes + PIXEL_BYTES;
  const batches: Buffer[] = [];
  for (const name of names) {
    const data = await files.read(name);
    if (data.length === 0 || data.length % recordBytes !== 0) {
      fail(
        files.describe(name),
        `length ${data.length} is not a positive multiple of the ${recordBytes}-byte ${variant.name} record`,
      );
    }
    batches.push(data);
  }
  const count = batches.reduce((n, data) => n + data.length / recordBytes, 0);
  const images = new Uint8Array(count * PIXEL_BYTES);
  const labels = new Uint8Array(count);
  let index = 0;
  batches.forEach((data, b) => {
    const first = index;
    for (let at = 0; at < data.length; at += recordBytes, index++) {
      labels[index] = data[at + variant.labelBytes - 1]!;
      chwToHwc(data, at + variant.labelBytes, images, index * PIXEL_BYTES);
    }
    checkLabels(labels.subarray(first, index), variant.classCount, files.describe(names[b]!));
  });
  return { images, labels, count };
}

function chwToHwc(src: Uint8Array, from: number, dst: Uint8Array, to: number): void {
  for (let p = 0; p < PLANE; p++) {
    dst[to + 3 * p] = src[from + p]!;
    dst[to + 3 * p + 1] = src[from + PLANE + p]!;
    dst[to + 3 * p + 2] = src[from + 2 * PLANE + p]!;
  }
}
