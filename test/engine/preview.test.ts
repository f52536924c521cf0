/** The New-run page's dataset preview: counts, thumbnails, the imbalance warning and augmentation draws, on real data. */
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { AUGMENTATION_DRAWS, PREVIEW_PER_CLASS } from '../../shared/preview.js';
import { loadDataset } from '../../electron/engine/data/index.js';
import { imbalanceWarning, previewDataset } from '../../electron/engine/data/preview.js';
import { classCounts } from '../../electron/engine/data/sets.js';
import { useCpuBackend } from './helpers.js';

beforeAll(useCpuBackend);

function decode(dataUrl: string): PNG {
  return PNG.sync.read(Buffer.from(dataUrl.slice('data:image/png;base64,'.length), 'base64'));
}

describe('dataset preview', () => {
  it('counts every class, shows examples of each and one image under the augmentation draws', async () => {
    const dataset = await loadDataset('embedded', { limitTrain: 500, limitTest: 100 });
    const before = tf.memory().numTensors;
    const preview = previewDataset(dataset, { augment: true, seed: 3 });
    expect(tf.memory().numTensors).toBe(before);
    expect(preview.shape).toEqual({ height: 28, width: 28, channels: 1 });
    expect(preview.classes.map((c) => c.train)).toEqual(classCounts(dataset.train.labels, 10));
    expect(preview.classes.map((c) => c.test)).toEqual(classCounts(dataset.test.labels, 10));
    expect(preview.imbalanceWarning).toBeUndefined();
    for (const entry of preview.classes) {
      expect(entry.thumbnails).toHaveLength(PREVIEW_PER_CLASS);
      const png = decode(entry.thumbnails[0]!);
      expect([png.width, png.height]).toEqual([28, 28]);
    }
    // The first example of class 0 is the first such image of the set, pixel for pixel.
    const first = dataset.train.labels.indexOf(0);
    const shown = decode(preview.classes[0]!.thumbnails[0]!);
    const gray = Uint8Array.from({ length: 28 * 28 }, (_, p) => shown.data[4 * p]!);
    expect(gray).toEqual(dataset.train.images.subarray(first * 784, (first + 1) * 784));
    const draws = preview.augmentation!.draws;
    expect(draws).toHaveLength(AUGMENTATION_DRAWS);
    // Random crops and flips: the draws are not all the same picture.
    expect(new Set(draws).size).toBeGreaterThan(1);
    expect(previewDataset(dataset, { augment: false, seed: 3 }).augmentation).toBeUndefined();
  });

  it('warns when the largest class is 5x the smallest', () => {
    expect(imbalanceWarning(['a', 'b', 'c'], [100, 30, 21])).toBeUndefined();
    expect(imbalanceWarning(['a', 'b', 'c'], [100, 30, 20])).toMatch(
      /largest class \(a, 100\) is 5\.0x the smallest \(c, 20\)/,
    );
    expect(imbalanceWarning(['a', 'b'], [3, 0])).toMatch(/many times the smallest \(b, 0\)/);
  });
});
