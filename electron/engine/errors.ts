/** Any export or exported-model problem the user can act on; the message names the file or request field at fault. */
export class ExportError extends Error {
  override readonly name = 'ExportError';
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
