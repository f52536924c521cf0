/** A layer or network the step graph cannot express: the reason the trainer falls back. */
export class UnsupportedStepError extends Error {
  override readonly name = 'UnsupportedStepError';
}
