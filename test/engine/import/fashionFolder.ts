/**
 * Real images for an imported backbone, which takes three channels: the first classes of the
 * embedded Fashion-MNIST subset written as an image folder (train/ and test/, one folder per
 * class) of tinted colour PNGs, so the folder loads as RGB.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { loadDataset, type ImageSet } from '../../../electron/engine/data/index.js';

export interface FashionFolderOptions {
  /** The first `classes` classes of Fashion-MNIST. */
  classes: number;
  /** Images per class in train/ and test/. */
  train: number;
  test: number;
}

/** Writes the folder under `dir` and returns its path. */
export async function writeFashionFolder(dir: string, options: FashionFolderOptions): Promise<string> {
  const dataset = await loadDataset('embedded');
  const { height, width } = dataset.shape;
  const root = join(dir, 'fashion-colour');
  const names = dataset.classes.slice(0, options.classes).map((n, c) => `${c}-${n.replace(/[^A-Za-z0-9]+/g, '-')}`);
  const write = async (split: string, set: ImageSet, perClass: number) => {
    const written = names.map(() => 0);
    for (let i = 0; i < set.count; i++) {
      const label = set.labels[i]!;
      if (label >= names.length || written[label]! >= perClass) continue;
      const folder = join(root, split, names[label]!);
      await mkdir(folder, { recursive: true });
      const png = new PNG({ width, height });
      for (let p = 0; p < width * height; p++) {
        const v = set.images[i * width * height + p]!;
        png.data.set([v, v >> 1, 255 - v, 255], 4 * p);
      }
      await writeFile(join(folder, `${written[label]}.png`), PNG.sync.write(png, { colorType: 2 }));
      written[label]!++;
    }
  };
  await write('train', dataset.train, options.train);
  await write('test', dataset.test, options.test);
  return root;
}
