/** `mw-studio backbone list|fetch NAME`: the pinned ImageNet-pretrained ONNX backbones and the user's cache of them. */
import { parseArgs } from 'node:util';
import { BackboneNameSchema } from '../../shared/backbones.js';
import { formatBytes } from '../../shared/format.js';
import { fetchBackbone, listBackbones } from '../engine/index.js';
import { renderTable } from './table.js';
import { UsageError } from './usage.js';

export const BACKBONE_USAGE = `mw-studio backbone list [--json]
mw-studio backbone fetch NAME
  list                        the pinned ImageNet-pretrained ONNX files and whether each is in your cache
  fetch NAME                  download one (checked against its SHA-256) into the cache and print its path,
                              for train --backbone PATH; without a network, export one yourself (README)`;

const OPTIONS = { json: { type: 'boolean' } } as const;

export async function backboneCommand(argv: string[]): Promise<number> {
  const { values: flags, positionals } = parseArgs({
    args: argv,
    options: OPTIONS,
    strict: true,
    allowPositionals: true,
  });
  const [action, name, ...extra] = positionals;
  if (extra.length) throw new UsageError(`unexpected ${extra.join(' ')}`);
  if (action === 'list') {
    if (name !== undefined) throw new UsageError('list takes no name');
    const listed = await listBackbones();
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ backbones: listed })}\n`);
      return 0;
    }
    const rows = listed.map((b) => [b.name, formatBytes(b.bytes), b.cached ? b.path : 'not cached', b.description]);
    process.stdout.write(`${renderTable(['name', 'size', 'cached', 'what'], rows)}\n`);
    return 0;
  }
  if (action === 'fetch') {
    const parsed = BackboneNameSchema.safeParse(name);
    if (!parsed.success) throw new UsageError('fetch takes a backbone name (mw-studio backbone list shows them)');
    const { path, downloaded } = await fetchBackbone(parsed.data);
    process.stderr.write(`${downloaded ? 'downloaded and checked' : 'already cached'}: ${parsed.data}\n`);
    process.stdout.write(`${path}\n`);
    return 0;
  }
  throw new UsageError(
    action ? `unknown action "${action}"; use list or fetch NAME` : 'give an action: list or fetch NAME',
  );
}
