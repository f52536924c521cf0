/** A finished run's trained weights as its last checkpoint holds them, for tests that compare runs. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { readCheckpointManifest } from '../electron/engine/runs/checkpoint.js';

/** Every float of the run folder's last checkpoint (weights, buffers, momentum), in file order. */
export async function finalWeights(dir: string): Promise<Float32Array> {
  const manifest = await readCheckpointManifest(dir);
  const bytes = await readFile(join(dir, manifest.weightsFile));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** The largest elementwise difference of two weight vectors, which must be of the same length. */
export function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  a.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b[i]!))));
  return worst;
}
