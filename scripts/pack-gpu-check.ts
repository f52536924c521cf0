/**
 * Packs a GPU check for an x86-64 Linux machine with an NVIDIA GPU and PyTorch (CUDA) but no Node
 * and no package registry: this machine's node binary, the CLI bundled by esbuild (engine, tfjs
 * and every pure-JS dependency in one file), the packages that load native files from their own
 * folders (webgpu with dawn.node for linux-x64, onnxruntime-node for linux-x64, the tfjs wasm
 * binaries), the embedded dataset, and the Vulkan loader from Debian's libvulkan1 (the NVIDIA
 * driver brings its own Vulkan driver). One xz-compressed tarball, checked to stay under 64 MiB.
 *
 *   npx tsx scripts/pack-gpu-check.ts [--out mw-gpu-check.tar.xz]
 *
 * There: tar -xJf mw-gpu-check.tar.xz && ./mw-gpu-check/run.sh     (a few minutes; results in results/)
 */
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, cp, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LIMIT_BYTES = 64 * 2 ** 20;
const NAME = 'mw-gpu-check';

/**
 * Packages left out of the bundle: each loads native or wasm files relative to its own folder
 * (vite only serves the renderer in `serve --dev`, which the check does not run).
 */
const EXTERNAL = [
  'webgpu',
  'onnxruntime-node',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
  'electron',
  'vite',
];

/** What run.sh does on the GPU machine: the backend, a short webgpu training run against wasm-ort, then the bench at both sizes. */
const RUN_SH = `#!/bin/sh
# The Mw Studio WebGPU check (packed by scripts/pack-gpu-check.ts). Results go to ./results.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export MW_VULKAN_LOADER="$here/lib/libvulkan.so.1"
export MW_RESOURCES="$here/app/resources"
export MW_PYTHON="\${MW_PYTHON:-$(command -v python3)}"
mw() { "$here/node" "$here/app/mw-studio.mjs" "$@"; }
mkdir -p results && cd results
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee gpu.txt
MW_BACKEND=webgpu mw info | tee info.txt
for backend in webgpu wasm-ort; do
  mw train --backend $backend --depth 8 --exits 1,2 --limit-train 512 --no-augment --seed 0 --json --out runs-$backend | tail -n 1 > train-$backend.json
done
mw bench --backend webgpu --baseline none --depth 20 --exits 3,6 --shape 28x28x1 --batch 128 --out bench-resnet20.json
mw bench --backend webgpu --baseline none --depth 56 --exits 9,18 --shape 32x32x3 --batch 128 --out bench-resnet56.json
echo "results in $(pwd)"
`;

async function sizeOf(path: string): Promise<number> {
  return (await stat(path)).size;
}

/** Debian's libvulkan1 (the Vulkan loader), unpacked: apt-get download needs no root. */
function vulkanLoader(work: string): string {
  execFileSync('apt-get', ['download', 'libvulkan1'], { cwd: work, stdio: 'inherit' });
  const deb = execFileSync('sh', ['-c', 'ls libvulkan1_*.deb'], { cwd: work, encoding: 'utf8' }).trim();
  execFileSync('dpkg-deb', ['-x', deb, 'root'], { cwd: work });
  const lib = execFileSync('sh', ['-c', 'ls root/usr/lib/*/libvulkan.so.1.*'], { cwd: work, encoding: 'utf8' }).trim();
  return join(work, lib);
}

async function copyPackage(pkg: string, into: string, parts: string[]): Promise<void> {
  for (const part of parts) {
    await cp(join(ROOT, 'node_modules', pkg, part), join(into, 'node_modules', pkg, part), { recursive: true });
  }
}

async function main(): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new Error('pack on linux-x64: the node binary packed is this one');
  const { values } = parseArgs({ options: { out: { type: 'string' } }, strict: true });
  const out = resolve(values.out ?? `${NAME}.tar.xz`);
  const work = await mkdtemp(join(tmpdir(), 'mw-pack-'));
  const stage = join(work, NAME);
  const app = join(stage, 'app');
  try {
    await mkdir(join(stage, 'lib'), { recursive: true });
    await build({
      absWorkingDir: ROOT,
      entryPoints: ['electron/cli/main.ts'],
      outfile: join(app, 'mw-studio.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: EXTERNAL,
      legalComments: 'none',
      logLevel: 'error',
      // tfjs's backend packages list their registering entry points as side-effect free.
      ignoreAnnotations: true,
      // Bundled CommonJS packages call require() and read __dirname (tfjs-backend-wasm's loader): give the ES module both.
      banner: {
        js: [
          "import { createRequire as createRequireForBundle } from 'node:module';",
          "import { dirname as dirnameForBundle } from 'node:path';",
          "import { fileURLToPath as fileURLToPathForBundle } from 'node:url';",
          'const require = createRequireForBundle(import.meta.url);',
          'const __filename = fileURLToPathForBundle(import.meta.url);',
          'const __dirname = dirnameForBundle(__filename);',
        ].join(' '),
      },
    });
    await copyFile(join(ROOT, 'electron', 'bench', 'torch_throughput.py'), join(app, 'torch_throughput.py'));
    await writeFile(join(app, 'package.json'), '{ "type": "module" }\n');
    await cp(join(ROOT, 'resources'), join(app, 'resources'), { recursive: true });
    await copyPackage('webgpu', app, ['package.json', 'index.js', 'dist/linux-x64']);
    await copyPackage('onnxruntime-node', app, ['package.json', 'dist', 'bin/napi-v6/linux/x64']);
    await copyPackage('onnxruntime-common', app, ['package.json', 'dist/cjs']);
    // The engine finds the .wasm binaries through the package's main file, which the bundle replaces.
    const wasmDist = join(ROOT, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
    const wasmFiles = (await readdir(wasmDist)).filter((f) => f.endsWith('.wasm') || f === 'tf-backend-wasm.node.js');
    await copyPackage('@tensorflow/tfjs-backend-wasm', app, ['package.json', ...wasmFiles.map((f) => `dist/${f}`)]);
    await copyFile(process.execPath, join(stage, 'node'));
    await copyFile(vulkanLoader(work), join(stage, 'lib', 'libvulkan.so.1'));
    await writeFile(join(stage, 'run.sh'), RUN_SH);
    await chmod(join(stage, 'run.sh'), 0o755);
    await mkdir(dirname(out), { recursive: true });
    execFileSync('tar', ['-cf', out, '-I', 'xz -9 -T0', '-C', work, NAME]);
    const bytes = await sizeOf(out);
    if (bytes > LIMIT_BYTES) throw new Error(`${out} is ${(bytes / 2 ** 20).toFixed(1)} MiB, over the 64 MiB limit`);
    process.stdout.write(
      `packed ${out} (${(bytes / 2 ** 20).toFixed(1)} MiB); there: tar -xJf ${NAME}.tar.xz && ./${NAME}/run.sh\n`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
