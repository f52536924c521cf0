/**
 * `mw-studio serve` (the studio in a browser) and `mw-studio start` (the desktop app, falling
 * back to serve mode with the reason where the Electron binary is not installed).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startServer } from '../serve/server.js';
import { resourcesDir } from '../engine/index.js';
import { UsageError } from './usage.js';

const projectRoot = resolve(resourcesDir(), '..');

export const SERVE_USAGE = `mw-studio serve [--port N] [--out DIR]
  hosts the studio on http://127.0.0.1:<port>/?token=<session token> (loopback only)`;

/** Builds the renderer on first use, so `npx mw-studio serve` works from a fresh checkout. */
async function ensureRendererBuilt(): Promise<string> {
  const dir = join(projectRoot, 'out', 'renderer');
  if (existsSync(join(dir, 'index.html'))) return dir;
  process.stderr.write('building the studio UI (first start only)...\n');
  const vite = await import('vite');
  await vite.build({ configFile: join(projectRoot, 'vite.config.ts'), logLevel: 'warn' });
  return dir;
}

export async function serve(argv: string[], reason?: string): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { port: { type: 'string' }, out: { type: 'string' } },
    strict: true,
  });
  const port = values.port === undefined ? 5178 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port must be a whole number 0-65535, not "${values.port}"`);
  const server = await startServer({
    rendererDir: await ensureRendererBuilt(),
    runsRoot: values.out ?? 'runs',
    port,
  }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EADDRINUSE')
      throw new UsageError(`port ${port} is in use; choose another with --port (0 picks a free one)`);
    if (error.code === 'EACCES')
      throw new UsageError(`port ${port} needs privileges this user lacks; choose one above 1023 with --port`);
    throw error;
  });
  if (reason) process.stdout.write(`${reason}\n`);
  process.stdout.write(`Mw Studio is running at ${server.url}\nopen it in a browser on this machine; Ctrl-C quits\n`);
  await new Promise<void>((done) => {
    const quit = () => void server.close().then(done);
    process.once('SIGINT', quit);
    process.once('SIGTERM', quit);
  });
  return 0;
}

/** The Electron binary's path, or why there is none. */
function electronBinary(): { path?: string; problem?: string } {
  try {
    const path = createRequire(import.meta.url)('electron') as unknown;
    if (typeof path === 'string' && existsSync(path)) return { path };
    return { problem: 'the electron package resolved but its binary is missing' };
  } catch (error) {
    return { problem: (error as Error).message.split('\n')[0] };
  }
}

export async function start(argv: string[]): Promise<number> {
  let electron = electronBinary();
  if (!electron.path) {
    // npm may have skipped Electron's download script: try it once (it needs the network).
    const install = join(projectRoot, 'node_modules', 'electron', 'install.js');
    if (existsSync(install)) spawnSync(process.execPath, [install], { stdio: 'ignore', timeout: 120_000 });
    electron = electronBinary();
  }
  if (!electron.path) {
    return serve(
      argv,
      `The Electron binary is not installed (${electron.problem}); starting the studio in your browser instead.`,
    );
  }
  const build = spawnSync('npm', ['run', 'build'], { cwd: projectRoot, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('building the desktop app failed (see above)');
  const app = spawn(electron.path, [projectRoot, ...argv], { stdio: 'inherit' });
  return new Promise((done) => app.on('exit', (code) => done(code ?? 0)));
}
