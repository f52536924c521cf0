/**
 * What some tests need from outside npm: Debian's chromium, python3-onnx, the full Fashion-MNIST
 * dataset and a one-node Slurm cluster (.ci/run installs and starts them), or an Electron binary (downloaded by electron's install script, which
 * npm may skip). On a newcomer's machine a missing piece skips its tests with one printed line
 * naming what to install; under CI=true a missing Debian package is a failure instead, so CI
 * cannot pass by skipping.
 *
 * MW_TEST_HIDE=chromium,dataset-fashion-mnist,python3-onnx,python3-torchvision,slurm-wlm,electron treats the named pieces as missing, to
 * check the fresh-machine behaviour on a machine that has them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface Requirement {
  /** What to install: a Debian package name, or how to get the piece. */
  name: string;
  install: string;
  /** Where it is, when it is installed; undefined when it is not. */
  locate(): string | undefined;
  /** Whether CI=true must have it (CI cannot download an Electron binary). */
  requiredInCi: boolean;
}

const debianPackage = (name: string, path: string): Requirement => ({
  name,
  install: `apt-get install ${name}`,
  locate: () => (existsSync(path) ? path : undefined),
  requiredInCi: true,
});

export const CHROMIUM = debianPackage('chromium', '/usr/bin/chromium');
export const FULL_FASHION_MNIST = debianPackage('dataset-fashion-mnist', '/usr/share/datasets/fashion-mnist');

/** Debian's python3-onnx, for onnx's own checker on exported files. */
export const PYTHON3_ONNX: Requirement = {
  name: 'python3-onnx',
  install: 'apt-get install python3-onnx',
  locate: () => (spawnSync('/usr/bin/python3', ['-c', 'import onnx']).status === 0 ? '/usr/bin/python3' : undefined),
  requiredInCi: true,
};

/** Debian's python3-torchvision (with python3-torch), for PyTorch's own outputs of the models the importer reads. */
export const PYTHON3_TORCHVISION: Requirement = {
  name: 'python3-torchvision',
  install: 'apt-get install python3-torchvision',
  locate: () =>
    spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision']).status === 0 ? '/usr/bin/python3' : undefined,
  requiredInCi: true,
};

/**
 * A Slurm cluster these tests can submit to: Debian's slurm-wlm and munge with the one-node
 * cluster of test/slurm/ running (.ci/run starts it with test/slurm/start.sh).
 */
export const SLURM: Requirement = {
  name: 'slurm-wlm',
  install: 'apt-get install slurm-wlm munge, then test/slurm/start.sh as root',
  locate: () =>
    existsSync('/usr/bin/sbatch') && spawnSync('sinfo', ['-h'], { timeout: 30_000 }).status === 0
      ? '/usr/bin/sbatch'
      : undefined,
  requiredInCi: true,
};

export const ELECTRON: Requirement = {
  name: 'electron',
  install:
    'node node_modules/electron/install.js downloads the binary; on Linux it also needs a display, e.g. xvfb-run',
  locate() {
    if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return undefined;
    try {
      // The electron package's main export is the path of its binary.
      const path = createRequire(import.meta.url)('electron') as unknown;
      return typeof path === 'string' && existsSync(path) ? path : undefined;
    } catch {
      return undefined;
    }
  },
  requiredInCi: false,
};

function hidden(requirement: Requirement): boolean {
  return (process.env.MW_TEST_HIDE ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes(requirement.name);
}

/**
 * The requirement's path, or undefined after printing the one line that says what is skipped
 * and why. Throws under CI=true for a requirement CI must have.
 */
export function locate(requirement: Requirement, what: string): string | undefined {
  const path = hidden(requirement) ? undefined : requirement.locate();
  if (path) return path;
  const missing = `${requirement.name} is not installed (${requirement.install})`;
  if (process.env.CI === 'true' && requirement.requiredInCi)
    throw new Error(`CI=true: ${missing}; ${what} must run in CI`);
  process.stderr.write(`skipped: ${what}: ${missing}\n`);
  return undefined;
}
