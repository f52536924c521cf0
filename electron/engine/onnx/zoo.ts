/**
 * Pretrained backbones on a user's machine: a few well-known ImageNet-pretrained ONNX files at
 * pinned addresses (the ONNX model zoo's files at fixed commits, so the bytes behind a name never
 * change), downloaded once, checked against their SHA-256 and kept in the user's cache folder.
 * A download is streamed to a temporary file beside its destination, hashed as it arrives and
 * renamed into place only when the hash matches, so the cache never holds a partial or wrong file.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BackboneListing } from '../../../shared/backbones.js';
import { BackboneFetchError, messageOf } from '../errors.js';

export interface PretrainedBackbone {
  /** What `mw-studio backbone fetch NAME` takes. */
  name: string;
  description: string;
  /** The file name in the cache (and appended to a mirror's address). */
  file: string;
  url: string;
  sha256: string;
  bytes: number;
}

/**
 * The ONNX model zoo (github.com/onnx/models, Apache-2.0) serves these through Git LFS; the
 * SHA-256 and size are those of the LFS objects at the pinned commits. All take 224x224 RGB
 * normalised with ImageNet's mean and std.
 */
export const PRETRAINED_BACKBONES: readonly PretrainedBackbone[] = [
  {
    name: 'resnet18',
    description: 'ResNet-18 v1 (ONNX model zoo, opset 7)',
    file: 'resnet18-v1-7.onnx',
    url: 'https://github.com/onnx/models/raw/5372b0b46b4a0cafcaf5f9f924e7494a088ffa86/vision/classification/resnet/model/resnet18-v1-7.onnx',
    sha256: '4e8f8653e7a2222b3904cc3fe8e304cd8b339ce1d05fd24688162f86fb6df52c',
    bytes: 46_820_737,
  },
  {
    name: 'mobilenetv2',
    description: 'MobileNet v2 1.0 (ONNX model zoo, opset 7)',
    file: 'mobilenetv2-7.onnx',
    url: 'https://github.com/onnx/models/raw/13fcb614fdedcc09864c0691c080ccf82ca3b85b/vision/classification/mobilenet/model/mobilenetv2-7.onnx',
    sha256: 'c1c513582d56afceff8516c73804e484c81c6a830712ab6d682253f4a3cd042f',
    bytes: 14_246_826,
  },
  {
    name: 'resnet50',
    description: 'ResNet-50 v1 (ONNX model zoo, opset 12)',
    file: 'resnet50-v1-12.onnx',
    url: 'https://github.com/onnx/models/raw/652f4e4af7975c8e7a505c4b6e0f8ac72d8260ea/vision/classification/resnet/model/resnet50-v1-12.onnx',
    sha256: 'ab65bdc02c5b3123eb3cdf6dac01742438517d8635d4f233913b2be1c70db3b6',
    bytes: 102_576_419,
  },
];

/** Overrides every address with `<mirror>/<file>`: a local mirror, or a test's loopback server. */
export const MIRROR_VARIABLE = 'MW_STUDIO_BACKBONE_MIRROR';

/** What to do without a network, in one sentence (the README has the export command). */
export const BRING_A_FILE =
  'bring a file instead: export one with torchvision or timm (README, "Pretrained backbones") and train with --backbone FILE.onnx';

/**
 * The user's cache folder for backbones: $XDG_CACHE_HOME/mw-studio/backbones (else
 * ~/.cache/...) on Linux, ~/Library/Caches/mw-studio/backbones on macOS, and
 * %LOCALAPPDATA%\mw-studio\Cache\backbones on Windows.
 */
export function backboneCacheDir(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (platform === 'win32')
    return join(env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'), 'mw-studio', 'Cache', 'backbones');
  if (platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'mw-studio', 'backbones');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mw-studio', 'backbones');
}

export interface ZooOptions {
  cacheDir?: string;
  /** The pinned list (tests give entries for the files they serve). */
  backbones?: readonly PretrainedBackbone[];
  env?: NodeJS.ProcessEnv;
}

function findBackbone(name: string, backbones: readonly PretrainedBackbone[]): PretrainedBackbone {
  const entry = backbones.find((b) => b.name === name);
  if (!entry)
    throw new BackboneFetchError(
      `unknown backbone "${name}"; the pinned ones are ${backbones.map((b) => b.name).join(', ')} (or ${BRING_A_FILE})`,
    );
  return entry;
}

/** Every pinned backbone, and where it is cached if it is. */
export async function listBackbones(options: ZooOptions = {}): Promise<BackboneListing[]> {
  const dir = options.cacheDir ?? backboneCacheDir(options.env);
  return Promise.all(
    (options.backbones ?? PRETRAINED_BACKBONES).map(async (b) => {
      const path = join(dir, b.file);
      // Only a checked download is renamed to this name; the size guards against a file put there by hand.
      const cached = (await stat(path).catch(() => undefined))?.size === b.bytes;
      return { name: b.name, description: b.description, bytes: b.bytes, cached, path };
    }),
  );
}

/**
 * The cached file of backbone `name`, downloaded first if it is not there yet. Fails with one
 * line (BackboneFetchError) when the download fails or the file is not the pinned one, leaving
 * nothing in the cache.
 */
export async function fetchBackbone(
  name: string,
  options: ZooOptions = {},
): Promise<{ path: string; downloaded: boolean }> {
  const env = options.env ?? process.env;
  const entry = findBackbone(name, options.backbones ?? PRETRAINED_BACKBONES);
  const dir = options.cacheDir ?? backboneCacheDir(env);
  const path = join(dir, entry.file);
  if ((await stat(path).catch(() => undefined))?.size === entry.bytes) return { path, downloaded: false };
  const mirror = env[MIRROR_VARIABLE];
  const url = mirror ? `${mirror.replace(/\/+$/, '')}/${entry.file}` : entry.url;
  await mkdir(dir, { recursive: true });
  const temporary = join(dir, `.${entry.file}.${process.pid}.download`);
  try {
    const hash = createHash('sha256');
    let response: Response;
    try {
      response = await fetch(url);
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause;
      throw new BackboneFetchError(
        `could not download ${name} from ${url} (${messageOf(cause ?? error)}): no network here? ${BRING_A_FILE}`,
      );
    }
    if (!response.ok || !response.body)
      throw new BackboneFetchError(`could not download ${name}: ${url} answered ${response.status}; ${BRING_A_FILE}`);
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
    try {
      await pipeline(
        body,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(temporary),
      );
      // Flushed before the rename publishes it, as electron/base/files.ts writes.
      const file = await open(temporary, 'r+');
      await file.sync().finally(() => file.close());
    } catch (error) {
      throw new BackboneFetchError(`the download of ${name} from ${url} broke off (${messageOf(error)}); try again`);
    }
    const sha256 = hash.digest('hex');
    if (sha256 !== entry.sha256)
      throw new BackboneFetchError(
        `${url} is not the pinned ${name} (SHA-256 ${sha256}, expected ${entry.sha256}); nothing was kept`,
      );
    await rename(temporary, path);
    return { path, downloaded: true };
  } finally {
    await rm(temporary, { force: true });
  }
}
