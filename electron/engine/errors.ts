/** Any export or exported-model problem the user can act on; the message names the file or request field at fault. */
export class ExportError extends Error {
  override readonly name = 'ExportError';
}

/** A compute backend that was asked for by name and is unknown or cannot run here; the message says how to get it. */
export class BackendError extends Error {
  override readonly name = 'BackendError';
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A pretrained backbone could not be fetched or is not the pinned file; the message says how to bring one instead. */
export class BackboneFetchError extends Error {
  override readonly name = 'BackboneFetchError';
}

/** An ONNX backbone the importer cannot read or translate exactly; the message names the operator and the node. */
export class ImportError extends Error {
  override readonly name = 'ImportError';
}

/** A Slurm command that failed or cannot run (not installed, controller unreachable, option refused); the message says what to do. */
export class SlurmError extends Error {
  override readonly name = 'SlurmError';
}
