/**
 * Image folders: one sub-folder per class holding PNG or JPEG files, either directly in the
 * chosen folder or in train/ and test/ folders that each hold the class folders.
 *
 * Files are recognised by their content (magic bytes), not their names, and every image's
 * declared size is read from its header and checked before it is decoded, so a stray file or
 * a hostile header fails with a message naming the file instead of allocating without bound.
 */
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { Random } from '../random.js';
import { imageBytes, type DatasetShape, type ImageSet, type RawDataset } from './dataset.js';
import { MAX_DATA_BYTES, fail, formatBytes, listVisible, readFileCapped, statIfExists } from './files.js';
import { resizeImage } from './resize.js';
import { stratifiedSplit } from './sets.js';

/** Largest accepted image side: far above what the studio's networks train on. */
export const MAX_IMAGE_SIDE = 4096;
/** Labels are stored as bytes. */
export const MAX_CLASSES = 256;
/** An uncompressed 16-bit RGBA PNG of the largest accepted size, plus room for metadata. */
const MAX_IMAGE_FILE_BYTES = 8 * MAX_IMAGE_SIDE ** 2 + 2 ** 20;
/** Without a test/ folder this share is held out as test (CIFAR's 10000 of 60000). */
const HELD_OUT_TEST_SHARE = 1 / 6;
/**
 * The held-out test images belong to the folder, not to a run: a fixed seed picks the same ones
 * whatever the run's seed, so test accuracies of different runs compare.
 */
const HELD_OUT_TEST_SEED = 0;

type ImageFormat = 'PNG' | 'JPEG';

interface ImageSize {
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'PNG';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'JPEG';
  return undefined;
}

/** Width and height as the header states them, read without decoding any pixels. */
function declaredSize(bytes: Buffer, format: ImageFormat, file: string): ImageSize {
  if (format === 'PNG') {
    // The signature is followed by the IHDR chunk: length, type, width, height.
    if (bytes.length < 24 || bytes.toString('latin1', 12, 16) !== 'IHDR')
      fail(file, 'is not a decodable PNG image (no IHDR header)');
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  }
  return jpegFrameSize(bytes, file);
}

/** Walks the JPEG segments up to the first start-of-frame marker, which carries the size. */
function jpegFrameSize(bytes: Buffer, file: string): ImageSize {
  let at = 2;
  while (at + 9 <= bytes.length) {
    if (bytes[at] !== 0xff) break;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte before a marker
      continue;
    }
    // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: bytes.readUInt16BE(at + 5), width: bytes.readUInt16BE(at + 7) };
    }
    at += 2 + bytes.readUInt16BE(at + 2);
  }
  fail(file, 'is not a decodable JPEG image (no frame header before the image data)');
}

/** Decodes to 8-bit RGB, 3 bytes a pixel; alpha is dropped, palettes and 16-bit samples expanded. */
function decodeRgb(bytes: Buffer, format: ImageFormat, size: ImageSize, file: string): Uint8Array {
  try {
    if (format === 'JPEG') {
      return jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: MAX_IMAGE_SIDE ** 2 / 1e6 })
        .data;
    }
    const rgba = PNG.sync.read(bytes).data;
    const pixels = size.width * size.height;
    const rgb = new Uint8Array(pixels * 3);
    for (let p = 0; p < pixels; p++) {
      rgb[3 * p] = rgba[4 * p]!;
      rgb[3 * p + 1] = rgba[4 * p + 1]!;
      rgb[3 * p + 2] = rgba[4 * p + 2]!;
    }
    return rgb;
  } catch (error) {
    fail(file, `is not a decodable ${format} image (${(error as Error).message})`);
  }
}

/** One PNG or JPEG file as 8-bit RGB (for prediction); errors are DatasetErrors naming the file. */
export async function readImageFile(file: string): Promise<ImageSize & { rgb: Uint8Array }> {
  const bytes = await readFileCapped(file, MAX_IMAGE_FILE_BYTES);
  const format = sniffFormat(bytes) ?? fail(file, 'is not a PNG or JPEG image');
  const size = declaredSize(bytes, format, file);
  if (size.width === 0 || size.height === 0 || size.width > MAX_IMAGE_SIDE || size.height > MAX_IMAGE_SIDE) {
    fail(file, `declares a ${size.width}x${size.height} image; images must be 1 to ${MAX_IMAGE_SIDE} pixels a side`);
  }
  return { ...size, rgb: decodeRgb(bytes, format, size, file) };
}

function isGray(rgb: Uint8Array): boolean {
  for (let i = 0; i < rgb.length; i += 3) {
    if (rgb[i] !== rgb[i + 1] || rgb[i] !== rgb[i + 2]) return false;
  }
  return true;
}

/** One image file of a set and its class. */
interface ImageFile {
  file: string;
  label: number;
}

/** Largest side the default size may have: a photo folder trains at a size the networks suit. */
const DEFAULT_IMAGE_SIDE_CAP = 64;

/** The size every image is brought to, and why (shown in the preview and kept in run.json). */
interface TargetSize extends ImageSize {
  /** Set when any image is resized: "all 52 images resized to 32x32, the most common of 3 sizes". */
  note?: string;
}

/**
 * Reads a folder's images in two passes: first every header (sizes, checked against the limits
 * before anything is decoded), which fixes the target size; then each image is decoded and
 * resized to it at once, so only one full-size image is ever held.
 */
class ImageFolderReader {
  /** Distinct declared sizes, in first-seen order, with how many images have each. */
  private readonly sizes = new Map<string, ImageSize & { count: number }>();
  allGray = true;

  async measure(file: string): Promise<void> {
    const bytes = await readFileCapped(file, MAX_IMAGE_FILE_BYTES);
    const format = sniffFormat(bytes) ?? fail(file, 'is not a PNG or JPEG image; class folders may hold only images');
    const size = declaredSize(bytes, format, file);
    checkSize(size, format, file);
    const key = `${size.width}x${size.height}`;
    const seen = this.sizes.get(key) ?? { ...size, count: 0 };
    seen.count++;
    this.sizes.set(key, seen);
  }

  /** `imageSize` x `imageSize` when given, else the most common size, scaled down to fit the cap. */
  target(imageSize: number | undefined, images: number): TargetSize {
    const common = [...this.sizes.values()].reduce((best, s) => (s.count > best.count ? s : best));
    let size: ImageSize = { width: common.width, height: common.height };
    let reason = `the most common of ${this.sizes.size} sizes`;
    if (imageSize !== undefined) {
      size = { width: imageSize, height: imageSize };
      reason = 'as --image-size asks';
    } else if (Math.max(size.width, size.height) > DEFAULT_IMAGE_SIDE_CAP) {
      const scale = DEFAULT_IMAGE_SIDE_CAP / Math.max(size.width, size.height);
      size = {
        width: Math.max(1, Math.round(size.width * scale)),
        height: Math.max(1, Math.round(size.height * scale)),
      };
      reason = `the most common size, ${common.width}x${common.height}, capped at ${DEFAULT_IMAGE_SIDE_CAP} (choose with --image-size)`;
    }
    const resized = [...this.sizes.values()]
      .filter((s) => s.width !== size.width || s.height !== size.height)
      .reduce((n, s) => n + s.count, 0);
    return resized
      ? { ...size, note: `${resized} of ${images} images resized to ${size.width}x${size.height}, ${reason}` }
      : size;
  }

  /** Decodes one image to RGB at the target size. */
  async decode(file: string, target: ImageSize): Promise<Uint8Array> {
    const bytes = await readFileCapped(file, MAX_IMAGE_FILE_BYTES);
    const format = sniffFormat(bytes) ?? fail(file, 'is not a PNG or JPEG image; class folders may hold only images');
    const size = declaredSize(bytes, format, file);
    // The file may have changed since it was measured: check again before allocating.
    checkSize(size, format, file);
    const rgb = resizeImage(decodeRgb(bytes, format, size, file), size, 3, target);
    if (this.allGray) this.allGray = isGray(rgb);
    return rgb;
  }
}

function checkSize({ width, height }: ImageSize, format: ImageFormat, file: string): void {
  if (width === 0 || height === 0) fail(file, `declares an empty ${width}x${height} ${format} image`);
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    fail(file, `declares a ${width}x${height} image, above the ${MAX_IMAGE_SIDE}x${MAX_IMAGE_SIDE} limit`);
  }
}

/** The image files of every class folder of `dir`, each class one of `classes` (the training classes). */
async function listSet(dir: string, classes: readonly string[], trainDir: string): Promise<ImageFile[]> {
  const files: ImageFile[] = [];
  for (const name of await classFolders(dir)) {
    const classDir = join(dir, name);
    const label = classes.indexOf(name);
    if (label < 0) fail(classDir, `is a class folder that ${trainDir} does not have`);
    const names = await listVisible(classDir);
    if (names.length === 0) fail(classDir, 'is an empty class folder');
    for (const fileName of names) files.push({ file: join(classDir, fileName), label });
  }
  return files;
}

/** Visible sub-folders of `dir`, sorted: the class names. */
async function classFolders(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const name of await listVisible(dir)) {
    if ((await stat(join(dir, name))).isDirectory()) names.push(name);
  }
  return names;
}

function checkClassCount(dir: string, classes: readonly string[]): void {
  if (classes.length === 0) fail(dir, 'holds no class folders (one sub-folder of PNG or JPEG images per class)');
  if (classes.length === 1) fail(dir, `holds a single class folder (${classes[0]}); classification needs at least two`);
  if (classes.length > MAX_CLASSES)
    fail(dir, `holds ${classes.length} class folders, more than the ${MAX_CLASSES} supported`);
}

/** A set's files decoded to RGB at the target size, in order. */
async function decodeSet(
  reader: ImageFolderReader,
  files: readonly ImageFile[],
  target: ImageSize,
): Promise<Uint8Array[]> {
  const decoded: Uint8Array[] = [];
  for (const { file } of files) decoded.push(await reader.decode(file, target));
  return decoded;
}

/** Packs decoded RGB images into one set; for 1 channel (all gray) each pixel keeps one of its equal samples. */
function packSet(decoded: readonly Uint8Array[], files: readonly ImageFile[], shape: DatasetShape): ImageSet {
  const { channels } = shape;
  const pixels = shape.width * shape.height;
  const count = decoded.length;
  const images = new Uint8Array(count * pixels * channels);
  decoded.forEach((rgb, i) => {
    if (channels === 3) images.set(rgb, i * pixels * 3);
    else for (let p = 0; p < pixels; p++) images[i * pixels + p] = rgb[3 * p]!;
  });
  return { images, labels: Uint8Array.from(files, (f) => f.label), count };
}

/**
 * Loads an image folder. Images of other sizes than the target (see ImageFolderReader.target)
 * are resized to it. They are 1-channel when every one of them is gray (R = G = B in every
 * pixel, whatever the file's colour type), else 3-channel, gray ones then repeated over RGB.
 * Plain files beside the class folders (a README, a LICENSE) are left alone; inside a class
 * folder everything must be an image.
 */
export async function loadImageFolder(dir: string, options: { imageSize?: number } = {}): Promise<RawDataset> {
  const trainDir = join(dir, 'train');
  const testDir = join(dir, 'test');
  const hasSplit = (await statIfExists(trainDir))?.isDirectory() ?? false;
  if (hasSplit && !(await statIfExists(testDir))?.isDirectory())
    fail(dir, 'has a train/ folder but no test/ folder beside it');
  const classDir = hasSplit ? trainDir : dir;
  const classes = await classFolders(classDir);
  checkClassCount(classDir, classes);

  const trainFiles = await listSet(classDir, classes, classDir);
  const testFiles = hasSplit ? await listSet(testDir, classes, classDir) : undefined;
  if (testFiles?.length === 0) fail(testDir, 'holds no class folders (the same class folders as train/)');
  const reader = new ImageFolderReader();
  const all = [...trainFiles, ...(testFiles ?? [])];
  for (const { file } of all) await reader.measure(file);
  const target = reader.target(options.imageSize, all.length);
  const totalBytes = all.length * target.width * target.height * 3;
  if (totalBytes > MAX_DATA_BYTES) {
    fail(
      dir,
      `holds ${all.length} images of ${target.width}x${target.height}, past the ${formatBytes(MAX_DATA_BYTES)} limit; choose a smaller --image-size`,
    );
  }
  const size = { width: target.width, height: target.height };
  const decodedTrain = await decodeSet(reader, trainFiles, size);
  const decodedTest = testFiles ? await decodeSet(reader, testFiles, size) : undefined;
  const shape = { height: size.height, width: size.width, channels: reader.allGray ? 1 : 3 };
  const sets =
    decodedTest && testFiles
      ? { train: packSet(decodedTrain, trainFiles, shape), test: packSet(decodedTest, testFiles, shape) }
      : holdOutTest(packSet(decodedTrain, trainFiles, shape), classes.length, imageBytes(shape));
  return {
    name: basename(dir),
    source: dir,
    shape,
    classes,
    ...sets,
    flipAugment: true,
    ...(target.note ? { sizeNote: target.note } : {}),
  };
}

/** A class-stratified share of the images, picked with a fixed seed, becomes the test set. */
function holdOutTest(all: ImageSet, classCount: number, bytesPerImage: number): { train: ImageSet; test: ImageSet } {
  const testCount = Math.max(1, Math.round(all.count * HELD_OUT_TEST_SHARE));
  const { picked, rest } = stratifiedSplit(all, testCount, classCount, new Random(HELD_OUT_TEST_SEED), bytesPerImage);
  return { train: rest, test: picked };
}
