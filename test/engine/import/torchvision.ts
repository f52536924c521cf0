/**
 * torchvision models exported by PyTorch itself (torchvision_models.py, Debian's python3-torch and
 * python3-torchvision), with PyTorch's own outputs for one batch: the reference the importer
 * tests compare with. Generated once per test file into a temporary folder.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { PYTHON3_TORCHVISION, locate } from '../../requirements.js';

export interface ExportRequest {
  name: string;
  opset: number;
  /** Batch norm folded into the convolutions (constant folding, eval training mode) or kept as nodes. */
  fold: boolean;
  size: number;
  batch: number;
  /** Passed to the model's constructor: { width_mult: 0.25 } makes a MobileNet small. */
  kwargs?: Record<string, number>;
}

export interface ExportedModel extends ExportRequest {
  tag: string;
  onnx: string;
  /** Module outputs by qualified name ("layer1.0"), NHWC. */
  features: Record<string, { file: string; shape: number[] }>;
  logitsShape: number[];
}

export interface Exports {
  dir: string;
  models: ExportedModel[];
  /** A float32 tensor saved beside the models. */
  read(file: string, shape: number[]): tf.Tensor;
  dispose(): void;
}

const SCRIPT = fileURLToPath(new URL('./torchvision_models.py', import.meta.url));

/** Exports the requested models, or returns undefined (after one printed line) where torchvision is missing. */
export function exportTorchvision(requests: ExportRequest[], what: string): Exports | undefined {
  const python = locate(PYTHON3_TORCHVISION, what);
  if (!python) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'mw-import-'));
  const run = spawnSync(python, [SCRIPT, dir, JSON.stringify(requests)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (run.status !== 0) throw new Error(`torchvision_models.py failed: ${run.stderr}`);
  const models = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as ExportedModel[];
  return {
    dir,
    models,
    read: (file, shape) => {
      const bytes = readFileSync(join(dir, file));
      return tf.tensor(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), shape);
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
