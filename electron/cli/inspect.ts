/** `mw-studio inspect --backbone FILE`: an ONNX backbone's exit candidates, for --exits. */
import { parseArgs } from 'node:util';
import { initBackend, inspectBackbone } from '../engine/index.js';
import { renderTable } from './table.js';
import { UsageError } from './usage.js';

export const INSPECT_USAGE = `mw-studio inspect --backbone FILE.onnx [--json]
  lists the backbone's exit candidates: where the graph narrows to one tensor between blocks,
  with the node, the feature shape [C, H, W], and the parameters and multiply-accumulates per
  image up to it; --exits of train and study take their ids
  --json   print {"candidates": [{"id", "node", "shape", "params", "macs"}]} as the last line of stdout`;

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { backbone: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
    allowPositionals: false,
  });
  if (!values.backbone) throw new UsageError('inspect needs --backbone FILE.onnx');
  // Reading the weights makes tensors: the portable backend is enough.
  await initBackend('wasm');
  const { candidates, defaultExits, inputShape } = inspectBackbone(values.backbone);
  if (values.json) {
    const rows = candidates.map(({ id, node, shape, params, macs }) => ({ id, node, shape, params, macs }));
    process.stdout.write(`${JSON.stringify({ candidates: rows })}\n`);
    return 0;
  }
  const [h, w, c] = inputShape;
  process.stdout.write(
    `input ${c}x${h}x${w}; default exits ${defaultExits.join(',')} (the final output is always one)\n`,
  );
  process.stdout.write(
    `${renderTable(
      ['id', 'node', 'shape', 'params', 'MMACs'],
      candidates.map((c) => [
        String(c.id),
        c.module ?? c.node,
        c.shape.join('x'),
        c.params.toLocaleString('en-US'),
        (c.macs / 1e6).toFixed(1),
      ]),
    )}\n`,
  );
  return 0;
}
