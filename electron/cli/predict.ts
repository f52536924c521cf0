/** `mw-studio predict`: an export folder's top classes for image files, and for a multi-exit model the exit that answered. */
import { parseArgs } from 'node:util';
import { formatCount, formatPercent } from '../../shared/format.js';
import { initBackend, predictImages } from '../engine/index.js';
import { BACKEND_CHOICES, UsageError } from './usage.js';

export const PREDICT_USAGE = `mw-studio predict --model DIR IMAGE... [options]
  --model DIR                 an export folder (tfjs, ONNX or multi-exit, with its model card)
  IMAGE...                    PNG or JPEG files; resized to the model's input and preprocessed as its card says
  --top K                     how many classes to print per image (default 3)
  --json                      one JSON object per image instead of text
  --backend ${BACKEND_CHOICES}   backend that runs a tfjs model`;

const OPTIONS = {
  model: { type: 'string' },
  top: { type: 'string' },
  json: { type: 'boolean' },
  backend: { type: 'string' },
} as const;

export async function predictCommand(argv: string[]): Promise<number> {
  const { values: flags, positionals: images } = parseArgs({
    args: argv,
    options: OPTIONS,
    strict: true,
    allowPositionals: true,
  });
  if (!flags.model) throw new UsageError('--model is required');
  if (!images.length) throw new UsageError('give at least one image file');
  const top = flags.top === undefined ? 3 : Number(flags.top);
  if (!Number.isInteger(top) || top < 1)
    throw new UsageError(`--top must be a whole number of at least 1, not "${flags.top}"`);
  await initBackend(flags.backend);
  for (const prediction of await predictImages(flags.model, images, top)) {
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(prediction)}\n`);
      continue;
    }
    const exit = prediction.exit
      ? `  (answered by ${prediction.exit.label}, ${formatCount(prediction.exit.macs)} MACs, ${formatCount(prediction.exit.params)} params)`
      : '';
    process.stdout.write(`${prediction.file}${exit}\n`);
    for (const { label, probability } of prediction.top)
      process.stdout.write(`  ${formatPercent(probability, 1).padStart(6)}  ${label}\n`);
  }
  return 0;
}
