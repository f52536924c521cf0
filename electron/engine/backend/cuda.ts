/**
 * Why tfjs-node-gpu cannot use this machine's NVIDIA GPU, in words: its libtensorflow 2.9.1 is
 * linked against the CUDA 11 runtime and cuDNN 8 by soname (libcudart.so.11.0, libcudnn.so.8),
 * so on a CUDA 12 system it finds neither and quietly runs on the CPU, or fails to load
 * (tfjs issues #8362, #8269, #8505). Read-only checks: nvidia-smi and the linker's cache.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const NEEDED = ['libcudart.so.11.0', 'libcudnn.so.8'] as const;

async function output(command: string, args: string[]): Promise<string | undefined> {
  try {
    return (await promisify(execFile)(command, args, { timeout: 3000 })).stdout;
  } catch {
    return undefined;
  }
}

/** The CUDA version the NVIDIA driver supports ("12.4", from nvidia-smi's header), or undefined without one. */
async function driverCudaVersion(): Promise<string | undefined> {
  return (await output('nvidia-smi', []))?.match(/CUDA Version:\s*([\d.]+)/)?.[1];
}

/** The libraries of NEEDED the dynamic linker cannot find (its cache, then LD_LIBRARY_PATH). */
async function missingLibraries(): Promise<string[]> {
  const cache = (await output('/sbin/ldconfig', ['-p'])) ?? '';
  const dirs = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  return NEEDED.filter((lib) => !cache.includes(`${lib} `) && !dirs.some((dir) => existsSync(path.join(dir, lib))));
}

/**
 * "CUDA mismatch: ..." when an NVIDIA driver is present but CUDA 11 / cuDNN 8 are not, else
 * undefined (no NVIDIA GPU, or the libraries are there and the cause is something else).
 */
export async function cudaMismatch(): Promise<string | undefined> {
  const driver = await driverCudaVersion();
  if (driver === undefined) return undefined;
  const missing = await missingLibraries();
  if (missing.length === 0) return undefined;
  return `CUDA mismatch: tfjs-node-gpu's libtensorflow 2.9.1 needs CUDA 11 and cuDNN 8, but ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} not on the library path (the driver supports CUDA ${driver})`;
}
