/**
 * Crash-safe file writes for run folders: every file is written to a temporary name, flushed
 * and renamed over the old one, so a crash or a full disk leaves either the old or the new
 * file, never half of one.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { z } from 'zod';
import { describeIssues } from '../../../shared/spec.js';

export class RunFileError extends Error {
  override readonly name = 'RunFileError';
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
    throw new RunFileError(`could not write ${path}: ${(error as Error).message}`);
  }
}

export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Reads and validates a JSON file; any problem is a RunFileError naming the file. */
export async function readJsonFile<T extends z.ZodType>(path: string, schema: T): Promise<z.infer<T>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RunFileError(code === 'ENOENT' ? `${path}: file not found` : `${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RunFileError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new RunFileError(`${path}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * Parses NDJSON, keeping every valid line. A torn last line (the process died mid-write) is
 * dropped; a corrupt line elsewhere is skipped and counted, never fatal.
 */
export function parseNdjson<T extends z.ZodType>(text: string, schema: T): { records: z.infer<T>[]; skipped: number } {
  const records: z.infer<T>[] = [];
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const parsed = schema.safeParse(JSON.parse(line));
      if (parsed.success) records.push(parsed.data);
      else skipped++;
    } catch {
      skipped++;
    }
  }
  return { records, skipped };
}
