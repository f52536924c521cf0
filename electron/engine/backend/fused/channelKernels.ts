/**
 * Fused element-wise kernels for tfjs's wasm backend: what batch norm and ReLU do per value,
 * in one pass where tfjs needs two to four.
 *
 * Why: after the convolutions moved to onnxruntime (../onnx/), a multi-way training step spent
 * about a quarter of its time in element-wise passes over activations (scripts/profile-step.ts),
 * each reading and writing whole tensors from memory. Batch norm's backward, for one, was five:
 * dy * centered, dy * scale, centered * factor, + offset, + (the two products).
 *
 * How: a small WebAssembly module with 128-bit SIMD loops, assembled from the text below by wabt
 * and instantiated on the wasm backend's own memory, so kernels read and write tfjs's tensors in
 * place. Registered as custom kernels of the 'wasm' backend ('MwChannelAffine', ...); models call
 * them through models/fusedOps.ts, which composes the same result from tfjs ops on every other
 * backend or when a tensor does not fit the loops (channels not a multiple of 4).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import wabtFactory from 'wabt';

/**
 * Each loop walks `n` float32 values (n a multiple of 4) four at a time; per-channel vectors are
 * `rowBytes` long (channels * 4, a multiple of 16) and `$k` is the offset inside them. Pointers
 * and `n` are those of tfjs's tensors in the shared memory.
 */
const CHANNEL_KERNELS_WAT = `
(module
  (import "env" "memory" (memory 0))

  ;; out = x * a + b
  (func (export "channelAffine") (param $x i32) (param $a i32) (param $b i32) (param $out i32) (param $n i32) (param $rowBytes i32)
    (local $i i32) (local $k i32) (local $end i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (br_if $done (i32.eqz (local.get $end)))
      (loop $next
        (v128.store (i32.add (local.get $out) (local.get $i))
          (f32x4.add
            (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $i))) (v128.load (i32.add (local.get $a) (local.get $k))))
            (v128.load (i32.add (local.get $b) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (if (i32.eq (local.get $k) (local.get $rowBytes)) (then (local.set $k (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $next (i32.lt_u (local.get $i) (local.get $end))))))

  ;; out = x * a + y * b + c
  (func (export "channelAffine2") (param $x i32) (param $a i32) (param $y i32) (param $b i32) (param $c i32) (param $out i32) (param $n i32) (param $rowBytes i32)
    (local $i i32) (local $k i32) (local $end i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (br_if $done (i32.eqz (local.get $end)))
      (loop $next
        (v128.store (i32.add (local.get $out) (local.get $i))
          (f32x4.add
            (f32x4.add
              (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $i))) (v128.load (i32.add (local.get $a) (local.get $k))))
              (f32x4.mul (v128.load (i32.add (local.get $y) (local.get $i))) (v128.load (i32.add (local.get $b) (local.get $k)))))
            (v128.load (i32.add (local.get $c) (local.get $k)))))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (if (i32.eq (local.get $k) (local.get $rowBytes)) (then (local.set $k (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $next (i32.lt_u (local.get $i) (local.get $end))))))

  ;; centered = x - mean, squared = centered * centered
  (func (export "centerAndSquare") (param $x i32) (param $mean i32) (param $centered i32) (param $squared i32) (param $n i32) (param $rowBytes i32)
    (local $i i32) (local $k i32) (local $end i32) (local $d v128)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (br_if $done (i32.eqz (local.get $end)))
      (loop $next
        (local.set $d (f32x4.sub (v128.load (i32.add (local.get $x) (local.get $i))) (v128.load (i32.add (local.get $mean) (local.get $k)))))
        (v128.store (i32.add (local.get $centered) (local.get $i)) (local.get $d))
        (v128.store (i32.add (local.get $squared) (local.get $i)) (f32x4.mul (local.get $d) (local.get $d)))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (if (i32.eq (local.get $k) (local.get $rowBytes)) (then (local.set $k (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $next (i32.lt_u (local.get $i) (local.get $end))))))

  ;; out = y > 0 ? dy : 0 (ReLU's gradient from its output y)
  (func (export "reluGrad") (param $dy i32) (param $y i32) (param $out i32) (param $n i32)
    (local $i i32) (local $end i32)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (br_if $done (i32.eqz (local.get $end)))
      (loop $next
        (v128.store (i32.add (local.get $out) (local.get $i))
          (v128.and
            (v128.load (i32.add (local.get $dy) (local.get $i)))
            (f32x4.gt (v128.load (i32.add (local.get $y) (local.get $i))) (v128.const f32x4 0 0 0 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $next (i32.lt_u (local.get $i) (local.get $end)))))))
`;

interface ChannelKernelExports {
  channelAffine(x: number, a: number, b: number, out: number, n: number, rowBytes: number): void;
  channelAffine2(x: number, a: number, y: number, b: number, c: number, out: number, n: number, rowBytes: number): void;
  centerAndSquare(x: number, mean: number, centered: number, squared: number, n: number, rowBytes: number): void;
  reluGrad(dy: number, y: number, out: number, n: number): void;
}

export const FUSED_KERNELS = {
  channelAffine: 'MwChannelAffine',
  channelAffine2: 'MwChannelAffine2',
  centerAndSquare: 'MwCenterAndSquare',
  reluGrad: 'MwReluGrad',
} as const;

/**
 * The WebAssembly JS API as far as we use it (this project's type libraries do not declare it:
 * no DOM lib, and @types/node covers only part of it).
 */
interface WasmApi {
  Memory: abstract new (...args: never[]) => object;
  Module: new (binary: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, object>>) => { exports: object };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The Emscripten module of tfjs-backend-wasm as far as we use it: its memory. */
interface EmscriptenModule {
  asm?: { memory?: object };
}

function backendMemory(backend: BackendWasm): object | undefined {
  const memory = (backend.wasm as unknown as EmscriptenModule).asm?.memory;
  return memory instanceof wasmApi.Memory ? memory : undefined;
}

/** The heap address of a tensor's data. */
function address(backend: BackendWasm, tensor: TensorInfo): number {
  return backend.dataIdMap.get(tensor.dataId)!.memoryOffset;
}

function kernels(binary: Uint8Array, memory: object): ChannelKernelExports {
  const instance = new wasmApi.Instance(new wasmApi.Module(binary), { env: { memory } });
  return instance.exports as unknown as ChannelKernelExports;
}

/** Row bytes of the per-channel vectors: the last axis of `x`. */
function rowBytes(x: TensorInfo): number {
  return x.shape[x.shape.length - 1]! * 4;
}

function kernelConfigs(run: ChannelKernelExports): { name: string; kernelFunc: KernelFunc }[] {
  return [
    {
      name: FUSED_KERNELS.channelAffine,
      kernelFunc: ({ inputs, backend }) => {
        const wasm = backend as BackendWasm;
        const { x, a, b } = inputs as Record<string, TensorInfo>;
        const out = wasm.makeOutput(x!.shape, 'float32');
        run.channelAffine(address(wasm, x!), address(wasm, a!), address(wasm, b!), address(wasm, out), tf.util.sizeFromShape(x!.shape), rowBytes(x!));
        return out;
      },
    },
    {
      name: FUSED_KERNELS.channelAffine2,
      kernelFunc: ({ inputs, backend }) => {
        const wasm = backend as BackendWasm;
        const { x, a, y, b, c } = inputs as Record<string, TensorInfo>;
        const out = wasm.makeOutput(x!.shape, 'float32');
        const at = (t: TensorInfo) => address(wasm, t);
        run.channelAffine2(at(x!), at(a!), at(y!), at(b!), at(c!), at(out), tf.util.sizeFromShape(x!.shape), rowBytes(x!));
        return out;
      },
    },
    {
      name: FUSED_KERNELS.centerAndSquare,
      kernelFunc: ({ inputs, backend }) => {
        const wasm = backend as BackendWasm;
        const { x, mean } = inputs as Record<string, TensorInfo>;
        const centered = wasm.makeOutput(x!.shape, 'float32');
        const squared = wasm.makeOutput(x!.shape, 'float32');
        const at = (t: TensorInfo) => address(wasm, t);
        run.centerAndSquare(at(x!), at(mean!), at(centered), at(squared), tf.util.sizeFromShape(x!.shape), rowBytes(x!));
        return [centered, squared];
      },
    },
    {
      name: FUSED_KERNELS.reluGrad,
      kernelFunc: ({ inputs, backend }) => {
        const wasm = backend as BackendWasm;
        const { dy, y } = inputs as Record<string, TensorInfo>;
        const out = wasm.makeOutput(dy!.shape, 'float32');
        run.reluGrad(address(wasm, dy!), address(wasm, y!), address(wasm, out), tf.util.sizeFromShape(dy!.shape));
        return out;
      },
    },
  ];
}

let assembled: Promise<Uint8Array> | undefined;

/** The module's binary, assembled once per process. */
function channelKernelsBinary(): Promise<Uint8Array> {
  assembled ??= wabtFactory().then((wabt) => {
    const parsed = wabt.parseWat('channelKernels.wat', CHANNEL_KERNELS_WAT, { simd: true });
    try {
      return parsed.toBinary({}).buffer;
    } finally {
      parsed.destroy();
    }
  });
  return assembled;
}

/**
 * Registers the fused kernels on the active 'wasm' backend. Returns why not where they cannot
 * run (no SIMD, tfjs's memory not reachable); models then compose the same results from tfjs ops.
 */
export async function registerFusedKernels(): Promise<string | undefined> {
  const backend = tf.findBackend('wasm') as BackendWasm | null;
  const memory = backend ? backendMemory(backend) : undefined;
  if (memory === undefined) return "tfjs-backend-wasm's memory is not reachable";
  let run: ChannelKernelExports;
  try {
    run = kernels(await channelKernelsBinary(), memory);
  } catch (error) {
    return `the fused kernels do not compile here: ${(error as Error).message}`;
  }
  for (const { name, kernelFunc } of kernelConfigs(run)) {
    if (tf.getKernel(name, 'wasm') === undefined) tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc });
  }
  return undefined;
}
