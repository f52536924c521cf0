/**
 * The data layer on real files: the embedded Fashion-MNIST subset shipped in resources/, the
 * Debian copy of the full dataset where installed (test/requirements.ts), and CIFAR files,
 * archives and image folders written here in the official formats, so every loaded pixel can be
 * checked against what was written.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync, gunzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs-core';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { create as createTar } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DatasetError,
  EMBEDDED_NAME,
  FASHION_MNIST_CLASSES,
  cropPadding,
  describeDataset,
  epochOrder,
  loadDataset,
  embeddedDatasetDir,
  makeBatch,
  type Dataset,
  type ImageSet,
} from '../../electron/engine/data/index.js';
import { IDX_FILES, encodeIdx } from '../../electron/engine/data/idx.js';
import { resizeImage } from '../../electron/engine/data/resize.js';
import { classCounts } from '../../electron/engine/data/sets.js';
import { Random } from '../../electron/engine/random.js';
import { FULL_FASHION_MNIST, locate } from '../requirements.js';
import { useCpuBackend } from './helpers.js';

const DEBIAN_FASHION = locate(FULL_FASHION_MNIST, 'the tests against the full Fashion-MNIST dataset');

let root: string;
let embedded: Dataset;

beforeAll(async () => {
  await useCpuBackend();
  root = await mkdtemp(join(tmpdir(), 'mw-data-'));
  embedded = await loadDataset('embedded');
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers

/** A fresh folder under the test's temporary root. */
async function folder(...parts: string[]): Promise<string> {
  const dir = join(root, ...parts);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Loading must fail with a DatasetError whose message starts with the file and states the problem. */
async function expectFailure(load: Promise<unknown>, file: string, problem: RegExp): Promise<void> {
  const error = await load.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DatasetError);
  const message = (error as DatasetError).message;
  expect(message.startsWith(`${file}: `), message).toBe(true);
  expect(message).toMatch(problem);
}

function randomBytes(count: number, seed: number, below = 256): Uint8Array {
  const rng = new Random(seed);
  return Uint8Array.from({ length: count }, () => rng.int(below));
}

/** Each image's bytes with its label, as a sorted list: equal lists mean equal multisets of images. */
function imageKeys(sets: ImageSet[], bytesPerImage: number): string[] {
  const keys: string[] = [];
  for (const set of sets) {
    for (let i = 0; i < set.count; i++) {
      keys.push(
        `${set.labels[i]}:${Buffer.from(set.images.subarray(i * bytesPerImage, (i + 1) * bytesPerImage)).toString('base64')}`,
      );
    }
  }
  return keys.sort();
}

/** Byte equality without vitest's element-by-element diff, which is slow on whole datasets. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Mean and population std of each channel's pixels scaled to [0, 1], computed directly. */
function directStats(set: ImageSet, channels: number): { mean: number[]; std: number[] } {
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    let n = 0;
    let sum = 0;
    for (let i = c; i < set.images.length; i += channels, n++) sum += set.images[i]! / 255;
    const m = sum / n;
    let squares = 0;
    for (let i = c; i < set.images.length; i += channels) squares += (set.images[i]! / 255 - m) ** 2;
    mean.push(m);
    std.push(Math.sqrt(squares / n));
  }
  return { mean, std };
}

function expectStatsClose(
  actual: { mean: number[]; std: number[] },
  expected: { mean: number[]; std: number[] },
): void {
  actual.mean.forEach((m, c) => expect(m).toBeCloseTo(expected.mean[c]!, 9));
  actual.std.forEach((s, c) => expect(s).toBeCloseTo(expected.std[c]!, 9));
}

// ---------------------------------------------------------------- idx

interface IdxContent {
  trainImages: Uint8Array;
  trainLabels: Uint8Array;
  testImages: Uint8Array;
  testLabels: Uint8Array;
}

function smallIdx(side: number, trainCount: number, testCount: number, seed: number): IdxContent {
  const bytes = side * side;
  return {
    trainImages: randomBytes(trainCount * bytes, seed),
    trainLabels: randomBytes(trainCount, seed + 1, 10),
    testImages: randomBytes(testCount * bytes, seed + 2),
    testLabels: randomBytes(testCount, seed + 3, 10),
  };
}

/** Writes the four idx files (raw); `override` replaces a file's bytes to corrupt it. */
async function writeIdxFolder(
  dir: string,
  side: number,
  content: IdxContent,
  override: Partial<Record<keyof IdxContent, Uint8Array>> = {},
): Promise<void> {
  const encoded: Record<keyof IdxContent, Uint8Array> = {
    trainImages: encodeIdx([content.trainLabels.length, side, side], content.trainImages),
    trainLabels: encodeIdx([content.trainLabels.length], content.trainLabels),
    testImages: encodeIdx([content.testLabels.length, side, side], content.testImages),
    testLabels: encodeIdx([content.testLabels.length], content.testLabels),
  };
  for (const role of Object.keys(IDX_FILES) as (keyof IdxContent)[]) {
    await writeFile(join(dir, IDX_FILES[role]), override[role] ?? encoded[role]);
  }
}

describe.runIf(DEBIAN_FASHION)('the full Fashion-MNIST dataset (Debian)', () => {
  const official = DEBIAN_FASHION!;
  let fullFashion: Dataset;
  beforeAll(async () => {
    fullFashion = await loadDataset(official);
  });

  it('loads the official Fashion-MNIST files byte for byte', () => {
    expect(fullFashion.name).toBe('Fashion-MNIST');
    expect(fullFashion.shape).toEqual({ height: 28, width: 28, channels: 1 });
    expect(fullFashion.classes).toEqual(FASHION_MNIST_CLASSES);
    expect(fullFashion.flipAugment).toBe(true);
    expect(fullFashion.train.count).toBe(60000);
    expect(fullFashion.test.count).toBe(10000);
    expect(classCounts(fullFashion.train.labels, 10)).toEqual(new Array(10).fill(6000));
    expect(classCounts(fullFashion.test.labels, 10)).toEqual(new Array(10).fill(1000));
    const file = (name: string) => gunzipSync(readFileSync(join(official, `${name}.gz`)));
    expect(Buffer.compare(Buffer.from(fullFashion.train.images), file(IDX_FILES.trainImages).subarray(16))).toBe(0);
    expect(Buffer.compare(Buffer.from(fullFashion.test.labels), file(IDX_FILES.testLabels).subarray(8))).toBe(0);
    // The published Fashion-MNIST training statistics.
    expect(fullFashion.normalization.mean[0]).toBeCloseTo(0.286, 3);
    expect(fullFashion.normalization.std[0]).toBeCloseTo(0.353, 3);
  });

  it('holds every embedded image, with its label, among its own', () => {
    const train = new Set(imageKeys([fullFashion.train], 784));
    expect(imageKeys([embedded.train], 784).every((key) => train.has(key))).toBe(true);
    const test = new Set(imageKeys([fullFashion.test], 784));
    expect(imageKeys([embedded.test], 784).every((key) => test.has(key))).toBe(true);
  });
});

describe('idx datasets', () => {
  it('opens the folder of a single idx file path', async () => {
    const dataset = await loadDataset(join(embeddedDatasetDir(), `${IDX_FILES.testLabels}.gz`), { limitTrain: 10 });
    expect(dataset.name).toBe('Fashion-MNIST');
    expect(dataset.train.count).toBe(10);
    expect(dataset.test.count).toBe(2000);
  });

  it('reads MNIST-style raw files exactly and does not flip digits', async () => {
    const dir = await folder('mnist');
    const content = smallIdx(6, 12, 5, 1);
    await writeIdxFolder(dir, 6, content);
    const dataset = await loadDataset(dir);
    expect(dataset.name).toBe('MNIST');
    expect(dataset.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(dataset.flipAugment).toBe(false);
    expect(dataset.shape).toEqual({ height: 6, width: 6, channels: 1 });
    expect(dataset.train.images).toEqual(content.trainImages);
    expect(dataset.train.labels).toEqual(content.trainLabels);
    expect(dataset.test.images).toEqual(content.testImages);
    expect(dataset.test.labels).toEqual(content.testLabels);
  });

  it('names the file and the problem for corrupt idx files', async () => {
    const content = smallIdx(4, 5, 3, 7);
    const cases: [string, Partial<Record<keyof IdxContent, Uint8Array>>, keyof IdxContent, RegExp][] = [
      [
        'truncated',
        { trainImages: encodeIdx([5, 4, 4], content.trainImages).subarray(0, 60) },
        'trainImages',
        /is truncated: .*declares 5x4x4 = 80 data bytes but only 44 are present/,
      ],
      [
        'magic',
        { trainImages: encodeIdx([80], content.trainImages) },
        'trainImages',
        /magic number 0x00000801, expected 0x00000803/,
      ],
      [
        'mismatch',
        { trainLabels: encodeIdx([4], content.trainLabels.subarray(0, 4)) },
        'trainLabels',
        /holds 4 labels but train-images-idx3-ubyte holds 5 images/,
      ],
      [
        'label',
        { testLabels: encodeIdx([3], Uint8Array.of(1, 10, 2)) },
        'testLabels',
        /label 10 at position 1 is outside the 10 classes/,
      ],
    ];
    for (const [name, override, role, problem] of cases) {
      const dir = await folder('idx-bad', name);
      await writeIdxFolder(dir, 4, content, override);
      await expectFailure(loadDataset(dir), join(dir, IDX_FILES[role]), problem);
    }
  });

  it('rejects a header declaring huge images before allocating anything', async () => {
    const dir = await folder('idx-huge');
    const header = Buffer.alloc(16);
    header.writeUInt32BE(0x00000803, 0);
    [1e6, 1e6, 1e6].forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
    const hostile = Buffer.concat([header, Buffer.alloc(84)]);
    await writeIdxFolder(dir, 4, smallIdx(4, 5, 3, 9), { trainImages: hostile });
    await expectFailure(
      loadDataset(dir),
      join(dir, IDX_FILES.trainImages),
      /truncated: its header declares 1000000x1000000x1000000 = 1000000000000000000 data bytes but only 84 are present/,
    );
  });

  it('names the missing files of a partial idx folder', async () => {
    const dir = await folder('idx-partial');
    await writeFile(join(dir, IDX_FILES.trainImages), encodeIdx([1, 2, 2], new Uint8Array(4)));
    await expectFailure(
      loadDataset(dir),
      dir,
      /idx dataset folder missing train-labels-idx1-ubyte\[\.gz\], t10k-images/,
    );
  });
});

// ---------------------------------------------------------------- embedded subset and the pipeline

describe('embedded subset and loading options', () => {
  it('is a stratified 12000/2000 subset of the official files', () => {
    expect(embedded.name).toBe(EMBEDDED_NAME);
    expect(embedded.source).toBe('embedded');
    expect(embedded.classes).toEqual(FASHION_MNIST_CLASSES);
    expect(embedded.flipAugment).toBe(true);
    expect(embedded.license).toMatch(/MIT.*Zalando/);
    expect(describeDataset(embedded)).toBe(
      'Fashion-MNIST (embedded subset): 12000 train / 2000 test, 28x28x1, 10 classes',
    );
    expect(classCounts(embedded.train.labels, 10)).toEqual(new Array(10).fill(1200));
    expect(classCounts(embedded.test.labels, 10)).toEqual(new Array(10).fill(200));
    expectStatsClose(embedded.normalization, directStats(embedded.train, 1));
  });

  it('applies class-stratified limits', async () => {
    const limited = await loadDataset('embedded', { limitTrain: 1000, limitTest: 500, seed: 3 });
    expect(classCounts(limited.train.labels, 10)).toEqual(new Array(10).fill(100));
    expect(classCounts(limited.test.labels, 10)).toEqual(new Array(10).fill(50));
    const all = new Set(imageKeys([embedded.train], 784));
    expect(imageKeys([limited.train], 784).every((key) => all.has(key))).toBe(true);
    expectStatsClose(limited.normalization, directStats(limited.train, 1));
    const unlimited = await loadDataset('embedded', { limitTrain: 1e6 });
    expect(unlimited.train.count).toBe(12000);
  });

  it('holds out a stratified validation set disjoint from train', async () => {
    const split = await loadDataset('embedded', { validationSplit: 0.1, seed: 1 });
    const validation = split.validation!;
    expect(classCounts(validation.labels, 10)).toEqual(new Array(10).fill(120));
    expect(classCounts(split.train.labels, 10)).toEqual(new Array(10).fill(1080));
    // Train and validation together are exactly the original training images, each once.
    expect(imageKeys([split.train, validation], 784).join() === imageKeys([embedded.train], 784).join()).toBe(true);
    expect(sameBytes(split.test.images, embedded.test.images)).toBe(true);
    expectStatsClose(split.normalization, directStats(split.train, 1));
    expect(describeDataset(split)).toBe(
      'Fashion-MNIST (embedded subset): 10800 train / 1200 validation / 2000 test, 28x28x1, 10 classes',
    );
  });

  it('selects the same images for the same seed and others for another', async () => {
    const options = { limitTrain: 600, limitTest: 100, validationSplit: 0.2 };
    const a = await loadDataset('embedded', { ...options, seed: 5 });
    const b = await loadDataset('embedded', { ...options, seed: 5 });
    const c = await loadDataset('embedded', { ...options, seed: 6 });
    expect(sameBytes(b.train.images, a.train.images)).toBe(true);
    expect(sameBytes(b.validation!.images, a.validation!.images)).toBe(true);
    expect(sameBytes(b.test.images, a.test.images)).toBe(true);
    expect(sameBytes(c.train.images, a.train.images)).toBe(false);
    // Each selection has its own stream: a different test limit leaves train and validation alone.
    const d = await loadDataset('embedded', { ...options, limitTest: 300, seed: 5 });
    expect(sameBytes(d.train.images, a.train.images)).toBe(true);
    expect(sameBytes(d.validation!.images, a.validation!.images)).toBe(true);
  });

  it("brings the kept images to a backbone's input: resized, gray made RGB, ImageNet mean and std, still uint8", async () => {
    const options = { limitTrain: 40, limitTest: 20, validationSplit: 0.25, seed: 2 };
    const plain = await loadDataset('embedded', options);
    const fitted = await loadDataset('embedded', { ...options, input: { size: 56, channels: 3 }, imagenet: true });
    expect(fitted.shape).toEqual({ height: 56, width: 56, channels: 3 });
    expect(fitted.train.images).toBeInstanceOf(Uint8Array);
    expect(fitted.train.images.length).toBe(30 * 56 * 56 * 3);
    expect(fitted.validation!.count).toBe(10);
    expect(fitted.test.count).toBe(20);
    expect(Array.from(fitted.train.labels)).toEqual(Array.from(plain.train.labels));
    expect(fitted.normalization).toEqual({ mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(fitted.sizeNote).toBe("28x28x1 images brought to the backbone's 56x56x3");
    // Bilinear 2x enlargement written out: output pixel t samples source position (t + 0.5) / 2 - 0.5,
    // clamped at the edges; every channel holds the gray value.
    const sample = (image: Uint8Array, y: number, x: number) => {
      const at = (v: number) => Math.min(27, Math.max(0, v));
      const sy = (y + 0.5) / 2 - 0.5;
      const sx = (x + 0.5) / 2 - 0.5;
      const y0 = Math.floor(sy);
      const x0 = Math.floor(sx);
      const fy = sy - y0;
      const fx = sx - x0;
      const p = (yy: number, xx: number) => image[at(yy) * 28 + at(xx)]!;
      const top = p(y0, x0) * (1 - fx) + p(y0, x0 + 1) * fx;
      const bottom = p(y0 + 1, x0) * (1 - fx) + p(y0 + 1, x0 + 1) * fx;
      return top * (1 - fy) + bottom * fy;
    };
    for (const i of [0, 7, 29]) {
      const source = plain.train.images.subarray(i * 784, (i + 1) * 784);
      const image = fitted.train.images.subarray(i * 56 * 56 * 3, (i + 1) * 56 * 56 * 3);
      let worst = 0;
      for (let y = 0; y < 56; y++)
        for (let x = 0; x < 56; x++)
          for (let c = 0; c < 3; c++)
            worst = Math.max(worst, Math.abs(image[(y * 56 + x) * 3 + c]! - sample(source, y, x)));
      expect(worst).toBeLessThanOrEqual(0.5 + 1e-9);
    }
    // Without ImageNet statistics the training set's own are measured on the fitted images.
    const own = await loadDataset('embedded', { ...options, input: { size: 56, channels: 3 } });
    expectStatsClose(own.normalization, directStats(own.train, 3));
  });

  it('reports a missing path', async () => {
    const missing = join(root, 'no-such-dataset');
    await expectFailure(loadDataset(missing), missing, /^[^:]+: file not found$/);
  });

  it('rejects a file that is neither idx nor an archive', async () => {
    const file = join(await folder('stray'), 'notes.txt');
    await writeFile(file, 'hello');
    await expectFailure(loadDataset(file), file, /neither an idx file .* nor a CIFAR \.tar\.gz archive/);
  });
});

// ---------------------------------------------------------------- CIFAR

interface CifarRecords {
  /** HWC pixels, as the loader should produce them. */
  images: Uint8Array;
  labels: Uint8Array;
  file: Buffer;
}

/** Official records: label byte(s) (CIFAR-100: coarse, fine), then the R, G and B planes. */
function cifarRecords(count: number, labelBytes: 1 | 2, classCount: number, seed: number): CifarRecords {
  const images = randomBytes(count * 3072, seed);
  const labels = randomBytes(count, seed + 1, classCount);
  const file = Buffer.alloc(count * (labelBytes + 3072));
  for (let i = 0; i < count; i++) {
    const at = i * (labelBytes + 3072);
    if (labelBytes === 2) file[at] = 19 - (labels[i]! % 20); // a coarse label that differs from the fine one
    file[at + labelBytes - 1] = labels[i]!;
    for (let p = 0; p < 1024; p++) {
      for (let c = 0; c < 3; c++) file[at + labelBytes + c * 1024 + p] = images[i * 3072 + 3 * p + c]!;
    }
  }
  return { images, labels, file };
}

function concatRecords(parts: CifarRecords[]): { images: Uint8Array; labels: Uint8Array } {
  return {
    images: Uint8Array.from(parts.flatMap((part) => [...part.images])),
    labels: Uint8Array.from(parts.flatMap((part) => [...part.labels])),
  };
}

const CIFAR10_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

describe('CIFAR', () => {
  let cifar10Root: string;
  let trainBatches: CifarRecords[];
  let testBatch: CifarRecords;

  beforeAll(async () => {
    cifar10Root = await folder('cifar10');
    const dir = await folder('cifar10', 'cifar-10-batches-bin');
    trainBatches = [1, 2, 3, 4, 5].map((b) => cifarRecords(3, 1, 10, 100 + b));
    testBatch = cifarRecords(4, 1, 10, 200);
    for (const [b, batch] of trainBatches.entries()) await writeFile(join(dir, `data_batch_${b + 1}.bin`), batch.file);
    await writeFile(join(dir, 'test_batch.bin'), testBatch.file);
    await writeFile(join(dir, 'batches.meta.txt'), `${CIFAR10_NAMES.join('\n')}\n\n`);
    await createTar({ gzip: true, file: join(root, 'cifar-10-binary.tar.gz'), cwd: cifar10Root }, [
      'cifar-10-batches-bin',
    ]);
  });

  it('loads CIFAR-10 from the folder above, the batch folder and the .tar.gz alike', async () => {
    const expectedTrain = concatRecords(trainBatches);
    for (const source of [
      cifar10Root,
      join(cifar10Root, 'cifar-10-batches-bin'),
      join(root, 'cifar-10-binary.tar.gz'),
    ]) {
      const dataset = await loadDataset(source);
      expect(dataset.name).toBe('CIFAR-10');
      expect(dataset.source).toBe(source);
      expect(dataset.shape).toEqual({ height: 32, width: 32, channels: 3 });
      expect(dataset.classes).toEqual(CIFAR10_NAMES);
      expect(dataset.flipAugment).toBe(true);
      expect(dataset.train.count).toBe(15);
      expect(dataset.train.images).toEqual(expectedTrain.images);
      expect(dataset.train.labels).toEqual(expectedTrain.labels);
      expect(dataset.test.images).toEqual(testBatch.images);
      expect(dataset.test.labels).toEqual(testBatch.labels);
      expectStatsClose(dataset.normalization, directStats(dataset.train, 3));
    }
  });

  it('loads CIFAR-100 with its fine labels', async () => {
    const dir = await folder('cifar100', 'cifar-100-binary');
    const train = cifarRecords(6, 2, 100, 300);
    const test = cifarRecords(2, 2, 100, 301);
    await writeFile(join(dir, 'train.bin'), train.file);
    await writeFile(join(dir, 'test.bin'), test.file);
    const names = Array.from({ length: 100 }, (_, i) => `fine${i}`);
    await writeFile(join(dir, 'fine_label_names.txt'), names.join('\n'));
    const dataset = await loadDataset(join(root, 'cifar100'));
    expect(dataset.name).toBe('CIFAR-100');
    expect(dataset.classes).toEqual(names);
    expect(dataset.train.images).toEqual(train.images);
    expect(dataset.train.labels).toEqual(train.labels);
    expect(dataset.test.labels).toEqual(test.labels);
  });

  it('names the file whose size is not a whole number of records', async () => {
    const dir = await folder('cifar-bad-size');
    for (const name of [...[1, 2, 3, 4, 5].map((b) => `data_batch_${b}.bin`), 'test_batch.bin']) {
      await writeFile(join(dir, name), cifarRecords(1, 1, 10, 1).file);
    }
    const bad = join(dir, 'data_batch_3.bin');
    await writeFile(bad, Buffer.concat([cifarRecords(2, 1, 10, 2).file, Buffer.alloc(5)]));
    await expectFailure(
      loadDataset(dir),
      bad,
      /length 6151 is not a positive multiple of the 3073-byte CIFAR-10 record/,
    );
  });

  it('names the file holding a label outside the classes', async () => {
    const dir = await folder('cifar-bad-label');
    for (const name of [...[1, 2, 3, 4, 5].map((b) => `data_batch_${b}.bin`), 'test_batch.bin']) {
      await writeFile(join(dir, name), cifarRecords(2, 1, 10, 3).file);
    }
    const records = cifarRecords(2, 1, 10, 4);
    records.file[3073] = 10;
    const bad = join(dir, 'test_batch.bin');
    await writeFile(bad, records.file);
    await expectFailure(loadDataset(dir), bad, /label 10 at position 1 is outside the 10 classes/);
  });
});

// ---------------------------------------------------------------- image folders

/** Writes a PNG of RGBA pixels with the given colour type (0 gray, 2 RGB, 4 gray+alpha, 6 RGBA). */
function pngFile(width: number, height: number, rgba: Uint8Array, colorType: 0 | 2 | 4 | 6): Buffer {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba);
  return PNG.sync.write(png, { colorType, inputHasAlpha: true });
}

/** A palette PNG (colour type 3), which pngjs reads but does not write: built chunk by chunk. */
function palettePngFile(width: number, height: number, palette: number[][], indices: Uint8Array): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 3; // palette
  const rows = Buffer.alloc(height * (width + 1));
  for (let y = 0; y < height; y++) rows.set(indices.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('PLTE', Buffer.from(palette.flat())),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function opaque(rgb: Uint8Array): Uint8Array {
  const rgba = new Uint8Array((rgb.length / 3) * 4);
  for (let p = 0; p < rgb.length / 3; p++) {
    rgba.set(rgb.subarray(3 * p, 3 * p + 3), 4 * p);
    rgba[4 * p + 3] = 255;
  }
  return rgba;
}

function grayToRgb(gray: Uint8Array): Uint8Array {
  return Uint8Array.from({ length: gray.length * 3 }, (_, i) => gray[Math.floor(i / 3)]!);
}

const W = 5;
const H = 4;

/** One image file and the RGB pixels the loader must produce from it. */
function sampleImage(kind: number, seed: number): { file: Buffer; ext: string; rgb: Uint8Array } {
  const rgb = randomBytes(W * H * 3, seed);
  switch (kind % 4) {
    case 0:
      return { file: pngFile(W, H, opaque(rgb), 2), ext: 'png', rgb };
    case 1: {
      // RGBA with varying alpha: the loader drops alpha, it does not blend.
      const rgba = opaque(rgb);
      for (let p = 0; p < W * H; p++) rgba[4 * p + 3] = (p * 13) % 256;
      return { file: pngFile(W, H, rgba, 6), ext: 'png', rgb };
    }
    case 2: {
      const palette = Array.from({ length: 8 }, (_, i) => [...rgb.subarray(3 * i, 3 * i + 3)]);
      const indices = randomBytes(W * H, seed + 1, 8);
      const expected = Uint8Array.from([...indices].flatMap((i) => palette[i]!));
      return { file: palettePngFile(W, H, palette, indices), ext: 'png', rgb: expected };
    }
    default: {
      // JPEG is lossy: what counts is that the loader yields exactly what the decoder yields.
      const file = jpeg.encode({ data: opaque(rgb), width: W, height: H }, 95).data;
      return { file, ext: 'jpg', rgb: jpeg.decode(file, { useTArray: true, formatAsRGBA: false }).data };
    }
  }
}

/** Writes `perClass` images into each class folder of `dir`; returns the expected keys (label:RGB). */
async function writeImageClasses(dir: string, classes: string[], perClass: number, seed: number): Promise<string[]> {
  const keys: string[] = [];
  for (const [label, name] of classes.entries()) {
    const classDir = join(dir, name);
    await mkdir(classDir, { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const image = sampleImage(i + label, seed + 10 * label + i);
      await writeFile(join(classDir, `img${i}.${image.ext}`), image.file);
      keys.push(`${label}:${Buffer.from(image.rgb).toString('base64')}`);
    }
  }
  return keys.sort();
}

describe('image folders', () => {
  it('loads PNG (RGB, RGBA, palette) and JPEG images exactly and holds out a stratified sixth', async () => {
    const dir = await folder('pets');
    const expected = await writeImageClasses(dir, ['cat', 'dog', 'fish'], 6, 500);
    await writeFile(join(dir, 'README.txt'), 'files beside the class folders are left alone');
    const dataset = await loadDataset(dir);
    expect(dataset.name).toBe('pets');
    expect(dataset.classes).toEqual(['cat', 'dog', 'fish']);
    expect(dataset.shape).toEqual({ height: H, width: W, channels: 3 });
    expect(dataset.flipAugment).toBe(true);
    expect(classCounts(dataset.train.labels, 3)).toEqual([5, 5, 5]);
    expect(classCounts(dataset.test.labels, 3)).toEqual([1, 1, 1]);
    expect(imageKeys([dataset.train, dataset.test], W * H * 3)).toEqual(expected);
    expectStatsClose(dataset.normalization, directStats(dataset.train, 3));
    // The held-out test images belong to the folder: the run's seed does not move them.
    const reseeded = await loadDataset(dir, { seed: 99 });
    expect(reseeded.test.images).toEqual(dataset.test.images);
  });

  it('makes a folder of gray images 1-channel, whatever the files colour types', async () => {
    const dir = await folder('gray');
    const expected: string[] = [];
    for (const [label, name] of ['a', 'b'].entries()) {
      const classDir = await folder('gray', name);
      for (let i = 0; i < 3; i++) {
        const gray = randomBytes(W * H, 600 + 10 * label + i);
        const rgba = opaque(grayToRgb(gray));
        const file = i === 0 ? pngFile(W, H, rgba, 0) : i === 1 ? pngFile(W, H, rgba, 2) : pngFile(W, H, rgba, 4);
        await writeFile(join(classDir, `${i}.png`), file);
        expected.push(`${label}:${Buffer.from(gray).toString('base64')}`);
      }
    }
    const dataset = await loadDataset(dir);
    expect(dataset.shape.channels).toBe(1);
    expect(imageKeys([dataset.train, dataset.test], W * H)).toEqual(expected.sort());
  });

  it('uses train/ and test/ folders as given', async () => {
    const dir = await folder('split');
    const train = await writeImageClasses(await folder('split', 'train'), ['x', 'y'], 4, 700);
    const test = await writeImageClasses(await folder('split', 'test'), ['x', 'y'], 2, 800);
    const dataset = await loadDataset(dir);
    expect(dataset.name).toBe('split');
    expect(imageKeys([dataset.train], W * H * 3)).toEqual(train);
    expect(imageKeys([dataset.test], W * H * 3)).toEqual(test);
  });

  /** A valid two-class folder named `name`, ready to be spoiled by the test. */
  async function validFolder(name: string): Promise<string> {
    const dir = await folder(name);
    await writeImageClasses(dir, ['a', 'b'], 2, 900);
    return dir;
  }

  it('names a non-image file in a class folder', async () => {
    const dir = await validFolder('bad-nonimage');
    await writeFile(join(dir, 'b', 'notes.txt'), 'not an image');
    await expectFailure(loadDataset(dir), join(dir, 'b', 'notes.txt'), /is not a PNG or JPEG image/);
  });

  it('names an undecodable image', async () => {
    const dir = await validFolder('bad-undecodable');
    const broken = Buffer.from(pngFile(W, H, opaque(randomBytes(W * H * 3, 1)), 2));
    broken.fill(0x55, 40);
    await writeFile(join(dir, 'a', 'broken.png'), broken);
    await expectFailure(loadDataset(dir), join(dir, 'a', 'broken.png'), /is not a decodable PNG image \(.+\)/);
  });

  it('resizes images of other sizes to the most common one, gray and colour to one channel count, and says so', async () => {
    const dir = await validFolder('mixed-sizes');
    const wide = opaque(randomBytes((W + 3) * (H + 2) * 3, 2));
    await writeFile(join(dir, 'b', 'wide.png'), pngFile(W + 3, H + 2, wide, 2));
    const gray = randomBytes(3 * W * 3 * H, 3);
    await writeFile(
      join(dir, 'a', 'gray.jpg'),
      Buffer.from(jpeg.encode({ data: opaque(grayToRgb(gray)), width: 3 * W, height: 3 * H }, 95).data),
    );
    const dataset = await loadDataset(dir);
    expect(dataset.shape).toEqual({ height: H, width: W, channels: 3 });
    expect(dataset.sizeNote).toBe(`2 of 6 images resized to ${W}x${H}, the most common of 3 sizes`);
    // The images of the common size are untouched; the others are exactly what the resampler makes of them.
    const expectedWide = resizeImage(
      Uint8Array.from(wide.filter((_, i) => i % 4 !== 3)),
      { width: W + 3, height: H + 2 },
      3,
      { width: W, height: H },
    );
    const keys = imageKeys([dataset.train, dataset.test], W * H * 3);
    expect(keys).toContain(`1:${Buffer.from(expectedWide).toString('base64')}`);
    expect(keys.filter((k) => k.startsWith('0:'))).toHaveLength(3);
  });

  it('resizes every image to --image-size, and to at most 64 pixels a side by default', async () => {
    const dir = await validFolder('image-size');
    const sized = await loadDataset(dir, { imageSize: 8 });
    expect(sized.shape).toEqual({ height: 8, width: 8, channels: 3 });
    expect(sized.sizeNote).toBe('4 of 4 images resized to 8x8, as --image-size asks');
    const large = await folder('large');
    for (const name of ['a', 'b']) {
      await mkdir(join(large, name));
      await writeFile(join(large, name, '0.png'), pngFile(100, 80, opaque(randomBytes(100 * 80 * 3, 5)), 2));
    }
    const capped = await loadDataset(large);
    expect(capped.shape).toEqual({ height: 51, width: 64, channels: 3 });
    expect(capped.sizeNote).toMatch(/2 of 2 images resized to 64x51, the most common size, 100x80, capped at 64/);
    // Other formats already share one size: asking for another is a mistake named as such.
    await expectFailure(
      loadDataset('embedded', { imageSize: 32 }),
      'embedded',
      /--image-size applies to image folders only/,
    );
  });

  it('resamples: a constant image stays constant, the same size is a copy, and shrinking averages', () => {
    const constant = new Uint8Array(7 * 5 * 3).fill(77);
    expect(resizeImage(constant, { width: 7, height: 5 }, 3, { width: 3, height: 11 })).toEqual(
      new Uint8Array(3 * 11 * 3).fill(77),
    );
    const pixels = randomBytes(6 * 4, 8);
    expect(resizeImage(pixels, { width: 6, height: 4 }, 1, { width: 6, height: 4 })).toEqual(pixels);
    // Stripes of 0 and 200 one pixel wide shrink to their mean, not to either stripe.
    const stripes = Uint8Array.from({ length: 8 * 8 }, (_, i) => (i % 2 ? 200 : 0));
    const shrunk = [...resizeImage(stripes, { width: 8, height: 8 }, 1, { width: 2, height: 2 })];
    expect(
      shrunk.every((v) => v > 80 && v < 120),
      `shrunk stripes: ${shrunk.join(' ')}`,
    ).toBe(true);
  });

  it('names an empty class folder', async () => {
    const dir = await validFolder('bad-empty');
    await mkdir(join(dir, 'c'));
    await expectFailure(loadDataset(dir), join(dir, 'c'), /is an empty class folder/);
  });

  it('rejects a single class and more classes than labels can hold', async () => {
    const single = await folder('bad-single');
    await writeImageClasses(single, ['only'], 2, 950);
    await expectFailure(loadDataset(single), single, /single class folder \(only\)/);
    const many = await folder('bad-many');
    for (let c = 0; c < 257; c++) await mkdir(join(many, `class${c}`));
    await expectFailure(loadDataset(many), many, /holds 257 class folders, more than the 256 supported/);
  });

  it('rejects huge declared dimensions from the header, before decoding', async () => {
    const png = await validFolder('bad-huge-png');
    const hugePng = Buffer.from(pngFile(W, H, opaque(randomBytes(W * H * 3, 3)), 2));
    hugePng.writeUInt32BE(100_000, 16);
    hugePng.writeUInt32BE(100_000, 20);
    await writeFile(join(png, 'a', 'huge.png'), hugePng);
    await expectFailure(
      loadDataset(png),
      join(png, 'a', 'huge.png'),
      /declares a 100000x100000 image, above the 4096x4096 limit/,
    );

    const jpg = await validFolder('bad-huge-jpeg');
    const hugeJpeg = Buffer.from(
      jpeg.encode({ data: opaque(randomBytes(W * H * 3, 4)), width: W, height: H }, 90).data,
    );
    const sof = hugeJpeg.indexOf(Buffer.from([0xff, 0xc0]));
    hugeJpeg.writeUInt16BE(60_000, sof + 5);
    hugeJpeg.writeUInt16BE(50_000, sof + 7);
    await writeFile(join(jpg, 'b', 'huge.jpg'), hugeJpeg);
    await expectFailure(
      loadDataset(jpg),
      join(jpg, 'b', 'huge.jpg'),
      /declares a 50000x60000 image, above the 4096x4096 limit/,
    );
  });

  it('names a test class folder that train/ does not have', async () => {
    const dir = await folder('bad-test-class');
    await writeImageClasses(await folder('bad-test-class', 'train'), ['a', 'b'], 2, 960);
    await writeImageClasses(await folder('bad-test-class', 'test'), ['a', 'z'], 1, 970);
    await expectFailure(loadDataset(dir), join(dir, 'test', 'z'), /is a class folder that .*train does not have/);
  });
});

// ---------------------------------------------------------------- batches

/** Serves scripted draws, so a test can pick the crop offsets and the flip itself. */
class ScriptedRandom extends Random {
  constructor(
    private readonly ints: number[],
    private readonly uniforms: number[],
  ) {
    super(0);
  }

  override int(n: number): number {
    const value = this.ints.shift();
    if (value === undefined || value >= n) throw new Error(`unexpected draw int(${n})`);
    return value;
  }

  override next(): number {
    const value = this.uniforms.shift();
    if (value === undefined) throw new Error('unexpected draw next()');
    return value;
  }

  get unused(): number {
    return this.ints.length + this.uniforms.length;
  }
}

describe('batches', () => {
  // Two images 4x5 (below 24 px, so the crop pads by 2), 2 channels, pixel values all distinct.
  const pixel = (image: number, y: number, x: number, c: number) => 100 * image + 10 * y + 2 * x + c + 1;
  const images = Uint8Array.from({ length: 2 * H * W * 2 }, (_, k) => {
    const c = k % 2;
    const x = Math.floor(k / 2) % W;
    const y = Math.floor(k / (2 * W)) % H;
    return pixel(Math.floor(k / (2 * W * H)), y, x, c);
  });
  const set: ImageSet = { images, labels: Uint8Array.of(3, 1), count: 2 };
  const mean = [0.1, 0.2];
  const std = [0.5, 0.25];
  const handMade = (flipAugment: boolean): Dataset => ({
    name: 'hand-made',
    source: 'test',
    shape: { height: H, width: W, channels: 2 },
    classes: ['a', 'b', 'c', 'd'],
    train: set,
    test: set,
    normalization: { mean, std },
    flipAugment,
  });
  const normalised = (value: number, c: number) => (value / 255 - mean[c]!) / std[c]!;

  /** Builds one augmented batch of image 1 and checks every value against the crop/flip formula. */
  function expectAugmented(dataset: Dataset, rng: ScriptedRandom, dy: number, dx: number, flip: boolean): void {
    const { x, labels } = makeBatch(dataset, set, [1], rng);
    expect(rng.unused).toBe(dataset.flipAugment ? 0 : 1);
    const values = x.dataSync();
    for (let y = 0; y < H; y++) {
      for (let xo = 0; xo < W; xo++) {
        const sy = y + dy;
        const sx = (flip ? W - 1 - xo : xo) + dx;
        const inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
        for (let c = 0; c < 2; c++) {
          const expected = normalised(inside ? pixel(1, sy, sx, c) : 0, c);
          expect(values[(y * W + xo) * 2 + c]).toBeCloseTo(expected, 5);
        }
      }
    }
    expect(Array.from(labels.dataSync())).toEqual([1]);
    tf.dispose([x, labels]);
  }

  it('normalises without augmentation and returns int32 labels', () => {
    const { x, labels } = makeBatch(handMade(true), set, [1, 0], null);
    expect(x.shape).toEqual([2, H, W, 2]);
    expect(labels.dtype).toBe('int32');
    expect(Array.from(labels.dataSync())).toEqual([1, 3]);
    const values = x.dataSync();
    expect(values[0]).toBeCloseTo(normalised(pixel(1, 0, 0, 0), 0), 6);
    expect(values[H * W * 2 + (2 * W + 3) * 2 + 1]).toBeCloseTo(normalised(pixel(0, 2, 3, 1), 1), 6);
    tf.dispose([x, labels]);
  });

  it('crops with the drawn offsets, padding with the normalised zero', () => {
    // int(5) draws 0 and 3: rows shift by -2, columns by +1; next() 0.9: no flip.
    expectAugmented(handMade(true), new ScriptedRandom([0, 3], [0.9]), -2, 1, false);
  });

  it('flips horizontally, alone and after a crop', () => {
    expectAugmented(handMade(true), new ScriptedRandom([2, 2], [0.1]), 0, 0, true);
    expectAugmented(handMade(true), new ScriptedRandom([3, 4], [0.2]), 1, 2, true);
  });

  it('never flips (or draws a flip) when the dataset forbids it', () => {
    expectAugmented(handMade(false), new ScriptedRandom([1, 4], [0.0]), -1, 2, false);
  });

  it('pads by 4 from 24 px up and by 2 below', () => {
    expect(cropPadding(28, 28)).toBe(4);
    expect(cropPadding(32, 32)).toBe(4);
    expect(cropPadding(20, 32)).toBe(2);
  });

  it('normalises the whole embedded training set to mean 0 and std 1', () => {
    const indices = epochOrder(embedded.train.count, new Random(1));
    expect([...indices].sort((a, b) => a - b)).toEqual(Array.from({ length: embedded.train.count }, (_, i) => i));
    expect(epochOrder(embedded.train.count, new Random(1))).toEqual(indices);
    const { x, labels } = makeBatch(embedded, embedded.train, indices, null);
    const { mean: m, variance } = tf.moments(x);
    expect(m.dataSync()[0]).toBeCloseTo(0, 4);
    expect(Math.sqrt(variance.dataSync()[0]!)).toBeCloseTo(1, 4);
    tf.dispose([x, labels, m, variance]);
  });

  it('leaves no tensors behind and rejects indices outside the set', () => {
    const before = tf.memory().numTensors;
    const { x, labels } = makeBatch(embedded, embedded.train, [0, 5, 7], new Random(3));
    expect(tf.memory().numTensors).toBe(before + 2);
    tf.dispose([x, labels]);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => makeBatch(embedded, embedded.train, [12000], null)).toThrow(RangeError);
  });
});
