/**
 * Where the files shipped with the studio (the embedded dataset, its license) live. One place
 * decides it, so running from source, from a build and from a packaged app differ only here.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * MW_RESOURCES when set (a packaged app points it at its unpacked resources folder); otherwise
 * `resources/` in the package root, found by walking up from this module to the nearest
 * package.json, which holds whether the module runs from source (tsx) or from a build in out/.
 */
export function resourcesDir(): string {
  const configured = process.env.MW_RESOURCES;
  if (configured) return resolve(configured);
  return join(packageRoot(dirname(fileURLToPath(import.meta.url))), 'resources');
}

function packageRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir)
      throw new Error(`no package.json above ${start}; set MW_RESOURCES to the resources folder`);
  }
}
