/** Reading run files: validated JSON and NDJSON that survives a torn last line. */
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { describeIssues } from '../../../shared/spec.js';
import { FileError } from '../../base/files.js';

export { FileError, writeFileAtomic, writeFileFlushed, writeJsonAtomic } from '../../base/files.js';

/** Reads and validates a JSON file; any problem is a FileError naming the file. */
export async function readJsonFile<T extends z.ZodType>(path: string, schema: T): Promise<z.infer<T>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FileError(code === 'ENOENT' ? `${path}: file not found` : `${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new FileError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new FileError(`${path}: ${describeIssues(parsed.error)}`);
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
