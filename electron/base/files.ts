/**
 * Crash-safe file writes, for run folders, exports and the desktop shell's own state: every file
 * is written to a temporary name, flushed and renamed over the old one, so a crash or a full
 * disk leaves either the old or the new file, never half of one.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** A file the studio keeps could not be read or written; the message names it. */
export class FileError extends Error {
  override readonly name = 'FileError';
}

/** Writes and flushes a file to disk, so a rename that publishes it never publishes an empty file. */
export async function writeFileFlushed(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFileFlushed(temporary, data);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new FileError(`could not write ${path}: ${(error as Error).message}`);
  }
}

export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}
