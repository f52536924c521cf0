import { BACKEND_PREFERENCES } from '../engine/index.js';

/** A mistake in how the CLI was called: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The `--backend` values every command that computes accepts, from the engine's one list. */
export const BACKEND_CHOICES = BACKEND_PREFERENCES.join('|');
