/**
 * SHA-256 of every model file, recorded in the model card, so that a file damaged after export
 * (a bad copy, a flipped byte in a download) is refused on loading even where its format still
 * parses: onnxruntime happily loads a model whose weight bytes were overwritten.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ExportError, messageOf } from '../errors.js';
import type { ModelCard } from './modelCard.js';

async function sha256(path: string): Promise<string> {
  const bytes = await readFile(path).catch((error: unknown) => {
    throw new ExportError(
      `${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found (the model card lists it)' : messageOf(error)}`,
    );
  });
  return createHash('sha256').update(bytes).digest('hex');
}

/** File name -> hex SHA-256, for the files in `dir`. */
export async function fileChecksums(dir: string, files: readonly string[]): Promise<Record<string, string>> {
  return Object.fromEntries(
    await Promise.all(files.map(async (file) => [file, await sha256(join(dir, file))] as const)),
  );
}

/** Fails when a model file in `dir` differs from what its model card recorded. */
export async function checkAgainstCard(dir: string, card: ModelCard): Promise<void> {
  for (const [file, expected] of Object.entries(card.sha256)) {
    if ((await sha256(join(dir, file))) !== expected) {
      throw new ExportError(
        `${join(dir, file)}: does not match its model card (SHA-256 differs): the file is damaged or was changed; export it again`,
      );
    }
  }
}
