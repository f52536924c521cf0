/**
 * A kernel that fails Dawn's validation in the middle of a webgpu run: Dawn only prints such an
 * error and leaves the kernel's output as zeros, so the backend fails the next read, and with it
 * the run, saying why. In a file of its own: the failure stays for the process' device.
 * Skipped with one line where no adapter can be created (test/engine/webgpu.ts).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { describe, expect, it } from 'vitest';
import type { RunConfigInput } from '../../shared/spec.js';
import { summarizeBackend } from '../../electron/engine/backend/index.js';
import { flatProgram, runFlat } from '../../electron/engine/backend/webgpu/program.js';
import { openRun } from '../../electron/engine/session.js';
import { webGpuForTests } from './webgpu.js';

const webgpu = await webGpuForTests();

/** A WGSL kernel that does not compile: a float assigned to an integer. */
function runInvalidKernel(): void {
  const input = tf.zeros([4]);
  const program = flatProgram(
    {
      variableNames: ['x'],
      outputShape: [4],
      shaderKey: 'invalid-on-purpose',
      getUserCode: () => `fn main(index : i32) { let wrong : u32 = 1.5; }`,
    },
    4,
  );
  const output = runFlat(tf.backend() as WebGPUBackend, program, [input], [], 4);
  tf.engine().disposeTensor(tf.engine().makeTensorFromTensorInfo(output));
  input.dispose();
}

describe.runIf(webgpu)('a Dawn validation error in a webgpu run', () => {
  it('fails the run with a message naming the error, where it used to be only printed', async () => {
    const runsRoot = await mkdtemp(join(tmpdir(), 'mw-webgpu-invalid-'));
    const config: RunConfigInput = {
      dataset: 'embedded',
      arch: { family: 'resnet', depth: 8, width: 0.25, exits: [1] },
      method: 'multiway',
      gamma: 2,
      epochs: 1,
      batchSize: 4,
      lr: 0.05,
      seed: 1,
      limitTrain: 16,
      limitTest: 4,
      augment: false,
    };
    let broke = false;
    const trainer = await openRun(
      { kind: 'new', config, runsRoot },
      {
        backend: summarizeBackend(webgpu!),
        latency: { warmup: 0, minRepeats: 1, maxRepeats: 1 },
        // After the first step has been read back, a kernel fails validation.
        onEvent: (event) => {
          if (event.type !== 'batch' || broke) return;
          broke = true;
          runInvalidKernel();
        },
      },
    );
    const failure = /^WebGPU on .+ reported a GPUValidationError: .+; its results cannot be trusted, so the run stops/;
    await expect(trainer.run()).rejects.toThrow(failure);
    expect(broke).toBe(true);
    const state = JSON.parse(await readFile(join(trainer.start.run, 'state.json'), 'utf8')) as {
      status: string;
      message?: string;
    };
    expect(state.status).toBe('failed');
    expect(state.message).toMatch(failure);
    trainer.dispose();
  });
});
