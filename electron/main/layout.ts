/**
 * Where the build puts each part of the app, relative to the package root (app.getAppPath()
 * at run time). scripts/build-electron.ts writes these files and package.json's "main" names
 * the first, so the three agree by construction.
 */
export const BUILT_FILES = {
  main: 'out/electron/main/index.js',
  /** CommonJS: a sandboxed preload cannot be an ES module. */
  preload: 'out/electron/preload/index.cjs',
  engine: 'out/electron/engine/worker.js',
  /** vite build's output (vite.config.ts). */
  renderer: 'out/renderer',
} as const;
