/**
 * Writes the dataset the studio ships with: a class-stratified, seeded subset of Fashion-MNIST
 * in the official gzip-compressed idx format, with its license and a README saying how it was
 * made. Rerunning it on the same source gives byte-identical files.
 *
 *   npx tsx scripts/make-embedded-dataset.ts [fashion-mnist folder]
 *
 * The default source is Debian's package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { imageBytes, type ImageSet } from '../electron/engine/data/dataset.js';
import { statIfExists } from '../electron/engine/data/files.js';
import { IDX_FILES, encodeIdx, loadIdxFolder } from '../electron/engine/data/idx.js';
import { EMBEDDED_NAME, embeddedDatasetDir } from '../electron/engine/data/index.js';
import { classCounts, stratifiedSplit } from '../electron/engine/data/sets.js';
import { Random } from '../electron/engine/random.js';

const SOURCE = process.argv[2] ?? '/usr/share/datasets/fashion-mnist';
const DEBIAN_COPYRIGHT = '/usr/share/doc/dataset-fashion-mnist/copyright';
const TRAIN_COUNT = 12000;
const TEST_COUNT = 2000;
const SEED = 2017;

const MIT_LICENSE = `The MIT License (MIT)

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
`;

async function licenseText(): Promise<string> {
  if (!(await statIfExists(DEBIAN_COPYRIGHT))) return MIT_LICENSE;
  const debian = await readFile(DEBIAN_COPYRIGHT, 'utf8');
  return `${MIT_LICENSE}\n---\nThe images were taken from Debian's dataset-fashion-mnist package, whose copyright file reads:\n\n${debian}`;
}

/** "1200 of every class", or the count of each class when they differ. */
function perClass(set: ImageSet, classCount: number): string {
  const counts = classCounts(set.labels, classCount);
  return counts.every((n) => n === counts[0]) ? `${counts[0]} of every class` : `per class ${counts.join(', ')}`;
}

function readme(train: string, test: string): string {
  return `# ${EMBEDDED_NAME}

The dataset Mw Studio trains on when no other is chosen: ${TRAIN_COUNT} training and
${TEST_COUNT} test images of [Fashion-MNIST](https://github.com/zalandoresearch/fashion-mnist)
(Zalando SE, MIT license, see LICENSE), 28x28 grayscale, 10 classes of clothing.

The four files have the official names and format (idx, gzip-compressed), so any Fashion-MNIST
reader opens them.

## How it was made

\`scripts/make-embedded-dataset.ts\` read the official files and picked, with seed ${SEED}:

- training images from the official training set, ${train};
- test images from the official test set, ${test};

at random within each class, kept in their original order. To make it again:

    npx tsx scripts/make-embedded-dataset.ts ${SOURCE}
`;
}

async function main(): Promise<void> {
  const full = await loadIdxFolder(SOURCE, { fashion: true });
  const bytesPerImage = imageBytes(full.shape);
  const classCount = full.classes.length;
  const rng = new Random(SEED);
  const train = stratifiedSplit(full.train, TRAIN_COUNT, classCount, rng, bytesPerImage).picked;
  const test = stratifiedSplit(full.test, TEST_COUNT, classCount, rng, bytesPerImage).picked;
  const { height, width } = full.shape;

  const outDir = embeddedDatasetDir();
  await mkdir(outDir, { recursive: true });
  const files: [string, Buffer][] = [
    [IDX_FILES.trainImages, encodeIdx([train.count, height, width], train.images)],
    [IDX_FILES.trainLabels, encodeIdx([train.count], train.labels)],
    [IDX_FILES.testImages, encodeIdx([test.count, height, width], test.images)],
    [IDX_FILES.testLabels, encodeIdx([test.count], test.labels)],
  ];
  for (const [name, data] of files) await writeFile(join(outDir, `${name}.gz`), gzipSync(data, { level: 9 }));
  await writeFile(join(outDir, 'LICENSE'), await licenseText());
  await writeFile(join(outDir, 'README.md'), readme(perClass(train, classCount), perClass(test, classCount)));
  console.log(`wrote ${train.count} training and ${test.count} test images to ${outDir}`);
}

await main();
