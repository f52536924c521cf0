/**
 * Bundles the Electron side of the studio with esbuild: the main process and the engine
 * worker as ES modules (the package is "type": "module"), the preload as CommonJS, because a
 * sandboxed preload cannot be an ES module. vite builds the renderer (`npm run build` type-checks
 * both sides first, then runs both).
 *
 *   tsx scripts/build-electron.ts [--out DIR]   DIR replaces the package root as the place out/ goes
 */
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { build, type BuildOptions } from 'esbuild';
import { BUILT_FILES } from '../electron/main/layout.js';

const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));

const common: BuildOptions = {
  absWorkingDir: PACKAGE_ROOT,
  bundle: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
};

/**
 * Main and worker leave every package to node_modules, which ships with the app: the native
 * and wasm backends (@tensorflow/tfjs-node(-gpu), onnxruntime-node, tfjs-backend-wasm) must load
 * from their own folders, and they import @tensorflow/tfjs-core, which must then be the one
 * copy the engine uses too; `electron` is the runtime's own module.
 */
const nodeSide: BuildOptions = { ...common, platform: 'node', format: 'esm', target: 'node22', packages: 'external' };

/**
 * The sandboxed preload can require only `electron` (and a few Node shims), so everything
 * else is bundled in; platform 'browser' makes a stray Node import fail the build here rather
 * than the page at start.
 */
const preload: BuildOptions = {
  ...common,
  platform: 'browser',
  format: 'cjs',
  target: 'chrome142',
  external: ['electron'],
};

/** Builds main, preload and engine worker under `outRoot` (the package root by default); returns the files written. */
export async function buildElectron(outRoot = PACKAGE_ROOT): Promise<string[]> {
  const outFile = (file: string) => join(outRoot, file);
  // Start clean, so a file that is no longer built is not shipped.
  await rm(join(outRoot, 'out', 'electron'), { recursive: true, force: true });
  const bundles: BuildOptions[] = [
    { ...nodeSide, entryPoints: ['electron/main/index.ts'], outfile: outFile(BUILT_FILES.main) },
    { ...nodeSide, entryPoints: ['electron/engine/worker.ts'], outfile: outFile(BUILT_FILES.engine) },
    { ...preload, entryPoints: ['electron/preload/index.ts'], outfile: outFile(BUILT_FILES.preload) },
  ];
  await Promise.all(bundles.map((options) => build(options)));
  return bundles.map((options) => options.outfile!);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values } = parseArgs({ options: { out: { type: 'string' } }, strict: true });
  const files = await buildElectron(values.out ? resolve(values.out) : undefined);
  process.stdout.write(files.map((file) => `built ${file}\n`).join(''));
}
