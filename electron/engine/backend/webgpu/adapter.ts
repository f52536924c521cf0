/**
 * A WebGPU device in Node from Dawn's prebuilt addon (the npm package `webgpu`): Vulkan on Linux,
 * Metal on macOS, D3D12 on Windows, for every GPU vendor, with nothing to download at install.
 *
 * On Linux Dawn dlopen()s the Vulkan loader by its soname, libvulkan.so.1, which comes from the
 * system (Debian: libvulkan1) together with the GPU's Vulkan driver. Two other sources:
 *   MW_VULKAN_LOADER=/path/libvulkan.so.1   a loader unpacked somewhere (a machine without libvulkan1)
 *   Chromium's library folder               SwiftShader, a software Vulkan driver, plus a loader:
 *                                           used only when software is allowed (a forced --backend
 *                                           webgpu, the tests), since it is slower than wasm-ort.
 * The dynamic linker reads LD_LIBRARY_PATH only at process start, so a loader outside the system
 * paths is loaded here first, by full path and never unloaded; Dawn's dlopen by soname then finds
 * that copy. VK_ICD_FILENAMES, which the loader reads when Dawn creates its Vulkan instance, points
 * it at SwiftShader.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

/** What `mw-studio info` and run summaries say about the adapter. */
export interface AdapterDescription {
  vendor: string;
  architecture: string;
  description: string;
  /** A CPU implementation of the GPU API (SwiftShader, llvmpipe/lavapipe, WARP). */
  software: boolean;
}

export interface OpenedDevice {
  /** The GPU object the adapter came from (what a browser has as navigator.gpu). */
  gpu: GPU;
  adapter: GPUAdapter;
  device: GPUDevice;
  described: AdapterDescription;
  /** The `webgpu` package's WebGPU globals (GPUBufferUsage, GPUMapMode, ...), which tfjs-backend-webgpu reads. */
  globals: object;
}

/** Folders holding SwiftShader's Vulkan driver and a Vulkan loader: MW_SWIFTSHADER_DIR, else Debian's chromium. */
function swiftShaderDirs(): string[] {
  return [process.env.MW_SWIFTSHADER_DIR, '/usr/lib/chromium'].filter((dir): dir is string => !!dir);
}

const SWIFTSHADER_ICD = 'vk_swiftshader_icd.json';
const VULKAN_LOADER = 'libvulkan.so.1';
/** glibc's RTLD_NODELETE: Node's os.constants.dlopen does not list it. */
const RTLD_NODELETE = 0x1000;

/**
 * Loads a shared library into the process for good. process.dlopen is Node's only dlopen; it
 * rejects a library that is not a Node addon after loading it ("did not self-register"), and
 * RTLD_NODELETE keeps it loaded. Returns why it could not be loaded, or undefined.
 */
function loadLibrary(file: string): string | undefined {
  try {
    process.dlopen({ exports: {} }, file, RTLD_NODELETE | 2 /* RTLD_NOW */);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (!message.includes('did not self-register')) return message.replace(/\s+/g, ' ').trim();
  }
  return undefined;
}

/** Why no Vulkan loader is reachable on Linux, or undefined when one is (loaded from MW_VULKAN_LOADER if set). */
function systemVulkanProblem(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const custom = process.env.MW_VULKAN_LOADER;
  if (custom) {
    const problem = loadLibrary(custom);
    return problem && `MW_VULKAN_LOADER=${custom} cannot be loaded: ${problem}`;
  }
  // By soname, as Dawn will: fails only when no libvulkan.so.1 is on the library path.
  return (
    loadLibrary(VULKAN_LOADER) &&
    `no Vulkan loader (${VULKAN_LOADER}): install libvulkan1 and your GPU's Vulkan driver, or set MW_VULKAN_LOADER`
  );
}

const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|software|microsoft basic render|warp/i;

export function describeAdapter(adapter: GPUAdapter): AdapterDescription {
  const { vendor, architecture, description } = adapter.info;
  const software =
    SOFTWARE_ADAPTER.test(`${vendor} ${architecture} ${description}`) ||
    (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return { vendor, architecture, description, software };
}

/** "google swiftshader: SwiftShader driver 5.0.0" */
export function adapterName({ vendor, architecture, description }: AdapterDescription): string {
  const what = [vendor, architecture].filter(Boolean).join(' ') || 'unknown adapter';
  return description ? `${what}: ${description}` : what;
}

/** Why 'auto' passes over a software adapter. */
export function softwareRefused(described: AdapterDescription): Error {
  return new Error(
    `only a software adapter (${adapterName(described)}), which is slower than wasm-ort; force it with --backend webgpu`,
  );
}

type WebGpuModule = { create: (options: string[]) => GPU; globals: object };

async function loadDawn(): Promise<WebGpuModule> {
  try {
    return (await import('webgpu')) as WebGpuModule;
  } catch (error) {
    throw new Error(
      `the npm package webgpu (Dawn) failed to load: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

async function requestAdapter(dawn: WebGpuModule): Promise<{ gpu: GPU; adapter: GPUAdapter | null }> {
  const gpu = dawn.create([]);
  return { gpu, adapter: await gpu.requestAdapter({ powerPreference: 'high-performance' }) };
}

/** SwiftShader from a folder that has both its driver and a loader, set up for the next Dawn instance. */
function useSwiftShader(): string | undefined {
  const dir = swiftShaderDirs().find(
    (d) => existsSync(path.join(d, SWIFTSHADER_ICD)) && existsSync(path.join(d, VULKAN_LOADER)),
  );
  if (dir === undefined) return undefined;
  const problem = loadLibrary(path.join(dir, VULKAN_LOADER));
  if (problem !== undefined) return undefined;
  process.env.VK_ICD_FILENAMES = path.join(dir, SWIFTSHADER_ICD);
  return dir;
}

/**
 * The best adapter Dawn offers and a device on it with the adapter's full limits (large buffers
 * and workgroups, as tfjs-backend-webgpu's own factory asks for). Without `allowSoftware` a
 * software adapter is refused with the reason; with it, SwiftShader is the fallback on Linux.
 */
export async function openDevice({ allowSoftware }: { allowSoftware: boolean }): Promise<OpenedDevice> {
  const dawn = await loadDawn();
  const vulkanProblem = systemVulkanProblem();
  let { gpu, adapter } = vulkanProblem === undefined ? await requestAdapter(dawn) : { gpu: undefined, adapter: null };
  let described = adapter && describeAdapter(adapter);
  const hardwareProblem =
    vulkanProblem ?? (adapter === null ? 'Dawn found no GPU adapter (is the GPU driver installed?)' : undefined);
  if (described?.software && !allowSoftware) throw softwareRefused(described);
  if (adapter === null) {
    if (!allowSoftware) throw new Error(hardwareProblem!);
    const dir = process.platform === 'linux' ? useSwiftShader() : undefined;
    if (dir === undefined) {
      throw new Error(
        `${hardwareProblem}; no SwiftShader fallback either (install Debian's chromium, or set MW_SWIFTSHADER_DIR to a folder with ${SWIFTSHADER_ICD} and ${VULKAN_LOADER})`,
      );
    }
    ({ gpu, adapter } = await requestAdapter(dawn));
    if (adapter === null) throw new Error(`${hardwareProblem}; SwiftShader in ${dir} gave no adapter either`);
    described = describeAdapter(adapter);
  }
  const limits = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      // tfjs binds a kernel's inputs at once (AddN, concat chunks): the default 8 is the smallest any GPU allows.
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  });
  return { gpu: gpu!, adapter, device, described: described!, globals: dawn.globals };
}
