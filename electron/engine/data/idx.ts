/**
 * MNIST and Fashion-MNIST in the idx format: a folder with the four official files, each
 * raw or gzip-compressed. Every header is checked against the bytes actually present before
 * anything is built from it, so a corrupt or hostile header fails with a message.
 */
import { basename, dirname, join } from 'node:path';
import type { ImageSet, RawDataset } from './dataset.js';
import { fail, listVisible, readMaybeGzip } from './files.js';
import { checkLabels } from './sets.js';

export const IDX_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;
type IdxRole = keyof typeof IDX_FILES;
export type IdxPaths = Record<IdxRole, string>;

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];
const DIGIT_CLASSES = Array.from({ length: 10 }, (_, d) => String(d));

/** Magic numbers: two zero bytes, type 0x08 (unsigned byte), number of dimensions. */
export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

/** Accepted spellings of one file: as published (.gz), unpacked, and the dotted name some mirrors use. */
function nameVariants(base: string): string[] {
  const dotted = base.replace('-idx', '.idx');
  return [`${base}.gz`, base, `${dotted}.gz`, dotted];
}

export function isIdxFileName(path: string): boolean {
  const name = basename(path);
  return Object.values(IDX_FILES).some((base) => nameVariants(base).includes(name));
}

/**
 * The four idx files in a folder; undefined when it holds none of them. A folder holding only
 * some is clearly meant as idx data, so that is an error naming what is missing.
 */
export async function findIdxFiles(dir: string): Promise<IdxPaths | undefined> {
  const present = new Set(await listVisible(dir));
  const found: Partial<IdxPaths> = {};
  const missing: string[] = [];
  for (const [role, base] of Object.entries(IDX_FILES) as [IdxRole, string][]) {
    const name = nameVariants(base).find((candidate) => present.has(candidate));
    if (name) found[role] = join(dir, name);
    else missing.push(`${base}[.gz]`);
  }
  if (missing.length === 4) return undefined;
  if (missing.length > 0) fail(dir, `is an idx dataset folder missing ${missing.join(', ')}`);
  return found as IdxPaths;
}

/** Fashion-MNIST and MNIST share the format; the folder (or its parent) name tells them apart. */
function looksLikeFashion(dir: string): boolean {
  return [basename(dir), basename(dirname(dir))].some((name) => name.toLowerCase().includes('fashion'));
}

export interface IdxOptions {
  /** Display name; defaults to "Fashion-MNIST" or "MNIST". */
  name?: string;
  /** Overrides the folder-name detection. */
  fashion?: boolean;
}

export async function loadIdxFolder(dir: string, options: IdxOptions = {}): Promise<RawDataset> {
  const paths = await findIdxFiles(dir);
  if (!paths) fail(dir, `holds none of the idx files ${Object.values(IDX_FILES).join(', ')} (raw or .gz)`);
  const fashion = options.fashion ?? looksLikeFashion(dir);
  const classes = fashion ? FASHION_MNIST_CLASSES : DIGIT_CLASSES;
  const train = await readIdxPair(paths.trainImages, paths.trainLabels, classes.length);
  const test = await readIdxPair(paths.testImages, paths.testLabels, classes.length);
  if (test.height !== train.height || test.width !== train.width) {
    fail(
      paths.testImages,
      `holds ${test.width}x${test.height} images but the training images are ${train.width}x${train.height}`,
    );
  }
  return {
    name: options.name ?? (fashion ? 'Fashion-MNIST' : 'MNIST'),
    source: dir,
    shape: { height: train.height, width: train.width, channels: 1 },
    classes: [...classes],
    train: train.set,
    test: test.set,
    // A mirrored shoe is still a shoe; a mirrored 2 is not a digit.
    flipAugment: fashion,
  };
}

async function readIdxPair(
  imagesFile: string,
  labelsFile: string,
  classCount: number,
): Promise<{ set: ImageSet; height: number; width: number }> {
  const images = parseIdx(await readMaybeGzip(imagesFile), imagesFile, IDX_IMAGES_MAGIC);
  const labels = parseIdx(await readMaybeGzip(labelsFile), labelsFile, IDX_LABELS_MAGIC);
  const count = images.dims[0]!;
  if (labels.dims[0] !== count) {
    fail(labelsFile, `holds ${labels.dims[0]} labels but ${basename(imagesFile)} holds ${count} images`);
  }
  checkLabels(labels.data, classCount, labelsFile);
  return { set: { images: images.data, labels: labels.data, count }, height: images.dims[1]!, width: images.dims[2]! };
}

/**
 * Parses an idx file of unsigned bytes. The data is a view into `bytes` (no copy), and its
 * declared size must equal the bytes present exactly.
 */
export function parseIdx(bytes: Uint8Array, file: string, magic: number): { dims: number[]; data: Uint8Array } {
  const rank = magic & 0xff;
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes)
    fail(file, `is truncated: ${bytes.length} bytes, shorter than its ${headerBytes}-byte idx header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found = view.getUint32(0);
  if (found !== magic)
    fail(
      file,
      `has magic number ${hex(found)}, expected ${hex(magic)} (unsigned bytes, ${rank} dimension${rank > 1 ? 's' : ''})`,
    );
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  if (dims.some((d) => d === 0)) fail(file, `declares an empty shape ${dims.join('x')}`);
  const declared = dims.reduce((a, b) => a * b, 1);
  const present = bytes.length - headerBytes;
  if (declared > present)
    fail(
      file,
      `is truncated: its header declares ${dims.join('x')} = ${declared} data bytes but only ${present} are present`,
    );
  if (declared < present)
    fail(file, `has ${present - declared} bytes beyond the ${dims.join('x')} its header declares`);
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerBytes, declared) };
}

/** Serialises unsigned-byte data with its idx header (the inverse of parseIdx). */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(0x00000800 | dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, data]);
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
