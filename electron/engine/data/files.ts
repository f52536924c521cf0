/**
 * File helpers shared by the dataset loaders: one error shape ("<file>: <problem>") and reads
 * that check sizes before allocating, so a corrupt or hostile dataset fails with a message
 * instead of exhausting memory.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DatasetError } from './dataset.js';

/**
 * Upper bound for one decoded data file or one whole dataset's pixels. 1 GiB holds CIFAR-10
 * (184 MB) and MNIST-style sets several times over, yet stays far below what would stall a
 * desktop machine.
 */
export const MAX_DATA_BYTES = 1024 ** 3;

/** Throws the DatasetError every loader uses, naming the file first. */
export function fail(file: string, problem: string): never {
  throw new DatasetError(`${file}: ${problem}`);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

/** stat() that answers undefined for a missing path instead of throwing. */
export async function statIfExists(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Reads a whole regular file, refusing (before reading) one larger than maxBytes. */
export async function readFileCapped(file: string, maxBytes: number): Promise<Buffer> {
  const info = await statIfExists(file);
  if (!info) fail(file, 'file not found');
  if (!info.isFile()) fail(file, 'is not a regular file');
  if (info.size > maxBytes) fail(file, `is ${formatBytes(info.size)}, above the ${formatBytes(maxBytes)} limit`);
  return readFile(file);
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decompresses gzip data (recognised by its magic bytes, not the file name), with the output
 * capped so a small "zip bomb" cannot allocate more than maxBytes.
 */
export function gunzipIfNeeded(bytes: Buffer, file: string, maxBytes: number): Buffer {
  if (!isGzip(bytes)) return bytes;
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') fail(file, `decompresses to more than the ${formatBytes(maxBytes)} limit`);
    fail(file, `is not valid gzip data (${(error as Error).message})`);
  }
}

/** Reads a file that may be gzip-compressed; both the file and its decompressed data are capped. */
export async function readMaybeGzip(file: string, maxBytes = MAX_DATA_BYTES): Promise<Buffer> {
  return gunzipIfNeeded(await readFileCapped(file, maxBytes), file, maxBytes);
}

/** Names in a folder, sorted (readdir order differs between file systems), hidden entries left out. */
export async function listVisible(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names.filter((name) => !name.startsWith('.')).sort();
}
