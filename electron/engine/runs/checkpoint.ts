/**
 * Checkpoints: every weight, batch-norm buffer and optimizer momentum buffer, plus where the
 * run stood. Tensors go to one binary file named after the step; checkpoint.json, written
 * last and atomically, is the commit point that names it. A crash at any moment leaves the
 * previous checkpoint valid.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { FileError, readJsonFile, writeFileAtomic, writeJsonAtomic } from './files.js';

const TensorEntrySchema = z.object({
  name: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  /** Offset in float32 elements into the weights file. */
  offset: z.number().int().nonnegative(),
});

/** Running totals of a partly done epoch, so a resumed epoch reports the same train metrics. */
const EpochProgressSchema = z.object({
  stepInEpoch: z.number().int().nonnegative(),
  lossSums: z.array(z.number()),
  correct: z.array(z.number()),
  seen: z.number().int().nonnegative(),
  seconds: z.number().nonnegative(),
});
export type EpochProgress = z.infer<typeof EpochProgressSchema>;

/** checkpoint.json: the file format's one description, for its writer and every reader. */
export const CheckpointManifestSchema = z.object({
  format: z.literal(1),
  /** Epochs fully done. */
  epoch: z.number().int().nonnegative(),
  /** Global steps done. */
  step: z.number().int().nonnegative(),
  progress: EpochProgressSchema,
  weightsFile: z.string().regex(/^checkpoint-\d+\.bin$/),
  /** Network tensors (parameters and buffers) by name. */
  network: z.array(TensorEntrySchema),
  /** Momentum buffers per optimizer, by parameter name. */
  optimizers: z.array(z.object({ name: z.string(), tensors: z.array(TensorEntrySchema) })),
  savedAt: z.string(),
});
export type CheckpointManifest = z.infer<typeof CheckpointManifestSchema>;

export interface CheckpointContent {
  epoch: number;
  step: number;
  progress: EpochProgress;
  network: ReadonlyMap<string, tf.Tensor>;
  optimizers: readonly { name: string; state: ReadonlyMap<string, tf.Tensor> }[];
}

export interface LoadedCheckpoint extends Omit<CheckpointContent, 'network' | 'optimizers'> {
  network: Map<string, tf.Tensor>;
  optimizers: { name: string; state: Map<string, tf.Tensor> }[];
}

export const CHECKPOINT_FILE = 'checkpoint.json';

/** The checkpoint manifest of run folder `dir`, validated: any problem is a FileError naming the file. */
export function readCheckpointManifest(dir: string): Promise<CheckpointManifest> {
  return readJsonFile(join(dir, CHECKPOINT_FILE), CheckpointManifestSchema);
}

/** Global step of the run's checkpoint, read from its manifest alone (no weights). */
export async function checkpointStep(dir: string): Promise<number> {
  return (await readCheckpointManifest(dir)).step;
}

export async function saveCheckpoint(dir: string, content: CheckpointContent): Promise<void> {
  const chunks: Float32Array[] = [];
  let offset = 0;
  const place = async (tensors: ReadonlyMap<string, tf.Tensor>) => {
    const entries: z.infer<typeof TensorEntrySchema>[] = [];
    for (const [name, tensor] of tensors) {
      const values = (await tensor.data()) as Float32Array;
      entries.push({ name, shape: tensor.shape, offset });
      chunks.push(values);
      offset += values.length;
    }
    return entries;
  };
  const network = await place(content.network);
  const optimizers = [];
  for (const opt of content.optimizers) optimizers.push({ name: opt.name, tensors: await place(opt.state) });
  const bytes = new Uint8Array(offset * 4);
  const view = new Float32Array(bytes.buffer);
  let at = 0;
  for (const chunk of chunks) {
    view.set(chunk, at);
    at += chunk.length;
  }
  const weightsFile = `checkpoint-${content.step}.bin`;
  await writeFileAtomic(join(dir, weightsFile), bytes);
  const manifest: CheckpointManifest = {
    format: 1,
    epoch: content.epoch,
    step: content.step,
    progress: content.progress,
    weightsFile,
    network,
    optimizers,
    savedAt: new Date().toISOString(),
  };
  await writeJsonAtomic(join(dir, CHECKPOINT_FILE), manifest);
  // Older weight files are no longer referenced by the committed manifest.
  for (const name of await readdir(dir)) {
    if (/^checkpoint-\d+\.bin$/.test(name) && name !== weightsFile) await rm(join(dir, name), { force: true });
  }
}

export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const manifestPath = join(dir, CHECKPOINT_FILE);
  const manifest = await readCheckpointManifest(dir);
  const weightsPath = join(dir, manifest.weightsFile);
  let bytes: Buffer;
  try {
    bytes = await readFile(weightsPath);
  } catch (error) {
    throw new FileError(`${weightsPath}: ${(error as Error).message}`);
  }
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength - (bytes.byteLength % 4)));
  const take = (entries: z.infer<typeof TensorEntrySchema>[]) => {
    const tensors = new Map<string, tf.Tensor>();
    for (const entry of entries) {
      const size = entry.shape.reduce((a, b) => a * b, 1);
      if (entry.offset + size > values.length) {
        tf.dispose([...tensors.values()]);
        throw new FileError(`${weightsPath}: too short for tensor ${entry.name} (the file is truncated or does not belong to ${manifestPath})`);
      }
      tensors.set(entry.name, tf.tensor(values.subarray(entry.offset, entry.offset + size), entry.shape));
    }
    return tensors;
  };
  const network = take(manifest.network);
  const optimizers: LoadedCheckpoint['optimizers'] = [];
  try {
    for (const opt of manifest.optimizers) optimizers.push({ name: opt.name, state: take(opt.tensors) });
  } catch (error) {
    // A truncated file fails part-way: free what was already read.
    tf.dispose([...network.values(), ...optimizers.flatMap((o) => [...o.state.values()])]);
    throw error;
  }
  return { epoch: manifest.epoch, step: manifest.step, progress: manifest.progress, network, optimizers };
}
