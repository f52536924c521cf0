/**
 * Fused element-wise kernels for tfjs's wasm backend: what batch norm and ReLU do per value,
 * in one pass where tfjs needs two to four, and batch norm's per-channel sums.
 *
 * Why: after the convolutions moved to onnxruntime (../ortConvolutions/), a multi-way training step spent
 * about a quarter of its time in element-wise passes over activations (scripts/profile-step.ts),
 * each reading and writing whole tensors from memory. Batch norm's backward, for one, was five:
 * dy * centered, dy * scale, centered * factor, + offset, + (the two products).
 *
 * How: a small WebAssembly module with 128-bit SIMD loops, assembled from the text below by wabt
 * and instantiated on the wasm backend's own memory, so kernels read and write tfjs's tensors in
 * place. Registered as custom kernels of the 'wasm' backend ('MwChannelAffine', ...); models call
 * them through backend/channelOps.ts, which composes the same result from tfjs ops on every other
 * backend or when a tensor does not fit the loops (channels not a multiple of 4).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import wabtFactory from 'wabt';

export const FUSED_KERNELS = {
  channelAffine: 'MwChannelAffine',
  channelAffine2: 'MwChannelAffine2',
  reluGrad: 'MwReluGrad',
  channelSums: 'MwChannelSums',
} as const;

/** WAT that loads four values of a full-size operand (at the loop's position $i) or of a per-channel vector (at $k). */
const value = (name: string) => `(v128.load (i32.add (local.get $${name}) (local.get $i)))`;
const channel = (name: string) => `(v128.load (i32.add (local.get $${name}) (local.get $k)))`;
const store = (name: string, v: string) => `(v128.store (i32.add (local.get $${name}) (local.get $i)) ${v})`;

/**
 * One fused kernel: full-size inputs `values` and per-channel vectors `channels` (in that order
 * in the tfjs call and in the WebAssembly signature), full-size `outputs`, and the loop body that
 * stores them four values at a time ($d is a spare v128 local).
 */
interface FusedKernel {
  kernelName: string;
  values: string[];
  channels: string[];
  outputs: string[];
  body: string;
}

const KERNELS: FusedKernel[] = [
  {
    // out = x * a + b
    kernelName: FUSED_KERNELS.channelAffine,
    values: ['x'],
    channels: ['a', 'b'],
    outputs: ['out'],
    body: store('out', `(f32x4.add (f32x4.mul ${value('x')} ${channel('a')}) ${channel('b')})`),
  },
  {
    // out = x * a + y * b + c
    kernelName: FUSED_KERNELS.channelAffine2,
    values: ['x', 'y'],
    channels: ['a', 'b', 'c'],
    outputs: ['out'],
    body: store(
      'out',
      `(f32x4.add (f32x4.add (f32x4.mul ${value('x')} ${channel('a')}) (f32x4.mul ${value('y')} ${channel('b')})) ${channel('c')})`,
    ),
  },
  {
    // out = y > 0 ? dy : 0 (ReLU's gradient from its output y)
    kernelName: FUSED_KERNELS.reluGrad,
    values: ['dy', 'y'],
    channels: [],
    outputs: ['out'],
    body: store('out', `(v128.and ${value('dy')} (f32x4.gt ${value('y')} (v128.const f32x4 0 0 0 0)))`),
  },
];

/**
 * A kernel as a WebAssembly function: it walks `n` float32 values (a multiple of 4) four at a
 * time, at byte offset $i; per-channel vectors are `rowBytes` long (channels * 4, a multiple of
 * 16) and $k is the offset inside them. Pointers are addresses of tfjs's tensors in the memory.
 */
function watFunction(kernel: FusedKernel): string {
  const params = [...kernel.values, ...kernel.channels, ...kernel.outputs, 'n', 'rowBytes']
    .map((p) => `(param $${p} i32)`)
    .join(' ');
  return `
  (func (export "${kernel.kernelName}") ${params}
    (local $i i32) (local $k i32) (local $end i32) (local $d v128)
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (br_if $done (i32.eqz (local.get $end)))
      (loop $next
        ${kernel.body}
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (if (i32.eq (local.get $k) (local.get $rowBytes)) (then (local.set $k (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $next (i32.lt_u (local.get $i) (local.get $end))))))`;
}

/**
 * Per-channel sums of x and of x * y over `n` values (rows of `rowBytes`). Each row's values are
 * added into float32 partial sums ($acc: x's, then x * y's, 2 * rowBytes bytes), which are added
 * into float64 totals ($tot, 4 * rowBytes bytes) every 256 rows: no float32 sum has more than 256
 * terms, however large the batch. The totals, rounded to float32, go to $sumX and $sumXY.
 */
const CHANNEL_SUMS_WAT = `
  (func $flush (param $acc i32) (param $tot i32) (param $bytes i32)
    (local $j i32) (local $v v128) (local $t i32)
    (loop $next
      (local.set $v (v128.load (i32.add (local.get $acc) (local.get $j))))
      (local.set $t (i32.add (local.get $tot) (i32.shl (local.get $j) (i32.const 1))))
      (v128.store (local.get $t) (f64x2.add (v128.load (local.get $t)) (f64x2.promote_low_f32x4 (local.get $v))))
      (v128.store offset=16 (local.get $t) (f64x2.add (v128.load offset=16 (local.get $t))
        (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v)))))
      (v128.store (i32.add (local.get $acc) (local.get $j)) (v128.const i32x4 0 0 0 0))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br_if $next (i32.lt_u (local.get $j) (local.get $bytes)))))

  (func (export "${FUSED_KERNELS.channelSums}") (param $x i32) (param $y i32) (param $sumX i32) (param $sumXY i32) (param $n i32) (param $rowBytes i32) (param $acc i32) (param $tot i32)
    (local $i i32) (local $k i32) (local $end i32) (local $rows i32) (local $v v128) (local $a i32) (local $j i32)
    (memory.fill (local.get $acc) (i32.const 0) (i32.shl (local.get $rowBytes) (i32.const 1)))
    (memory.fill (local.get $tot) (i32.const 0) (i32.shl (local.get $rowBytes) (i32.const 2)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (block $done
      (br_if $done (i32.eqz (local.get $end)))
      (loop $next
        (local.set $v ${value('x')})
        (local.set $a (i32.add (local.get $acc) (local.get $k)))
        (v128.store (local.get $a) (f32x4.add (v128.load (local.get $a)) (local.get $v)))
        (local.set $a (i32.add (local.get $a) (local.get $rowBytes)))
        (v128.store (local.get $a) (f32x4.add (v128.load (local.get $a)) (f32x4.mul (local.get $v) ${value('y')})))
        (local.set $k (i32.add (local.get $k) (i32.const 16)))
        (if (i32.eq (local.get $k) (local.get $rowBytes)) (then
          (local.set $k (i32.const 0))
          (local.set $rows (i32.add (local.get $rows) (i32.const 1)))
          (if (i32.eq (local.get $rows) (i32.const 256)) (then
            (call $flush (local.get $acc) (local.get $tot) (i32.shl (local.get $rowBytes) (i32.const 1)))
            (local.set $rows (i32.const 0))))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $next (i32.lt_u (local.get $i) (local.get $end)))))
    (call $flush (local.get $acc) (local.get $tot) (i32.shl (local.get $rowBytes) (i32.const 1)))
    (loop $copy
      (f32.store (i32.add (local.get $sumX) (local.get $j)) (f32.demote_f64 (f64.load (i32.add (local.get $tot) (i32.shl (local.get $j) (i32.const 1))))))
      (f32.store (i32.add (local.get $sumXY) (local.get $j))
        (f32.demote_f64 (f64.load (i32.add (i32.add (local.get $tot) (i32.shl (local.get $rowBytes) (i32.const 1))) (i32.shl (local.get $j) (i32.const 1))))))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br_if $copy (i32.lt_u (local.get $j) (local.get $rowBytes)))))`;

const CHANNEL_KERNELS_WAT = `(module
  (import "env" "memory" (memory 0))${KERNELS.map(watFunction).join('')}${CHANNEL_SUMS_WAT})`;

type KernelExport = (...args: number[]) => void;

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

/** A tfjs kernel running `run` (the kernel's export): its outputs have the first input's shape. */
function kernelFunc(kernel: FusedKernel, run: KernelExport): KernelFunc {
  return ({ inputs, backend }) => {
    const wasm = backend as BackendWasm;
    const named = inputs as Record<string, TensorInfo>;
    const operands = [...kernel.values, ...kernel.channels].map((name) => named[name]!);
    const shape = operands[0]!.shape;
    const outputs = kernel.outputs.map(() => wasm.makeOutput(shape, 'float32'));
    // Without per-channel vectors the loop never reads at $k: any multiple of 16 does.
    const rowBytes = kernel.channels.length > 0 ? shape[shape.length - 1]! * 4 : 16;
    run(...[...operands, ...outputs].map((t) => address(wasm, t)), tf.util.sizeFromShape(shape), rowBytes);
    return outputs.length === 1 ? outputs[0]! : outputs;
  };
}

/** The tfjs kernel of MwChannelSums: inputs x and y of one shape, outputs [C] sums of x and of x * y. */
function channelSumsKernel(run: KernelExport): KernelFunc {
  return ({ inputs, backend }) => {
    const wasm = backend as BackendWasm;
    const { x, y } = inputs as Record<string, TensorInfo>;
    const channels = x!.shape[x!.shape.length - 1]!;
    const sums = [wasm.makeOutput([channels], 'float32'), wasm.makeOutput([channels], 'float32')];
    // float32 partial sums (2 * C) then float64 totals (2 * C, the room of 4 * C float32).
    const scratch = wasm.makeOutput([6 * channels], 'float32');
    try {
      const accumulators = address(wasm, scratch);
      run(
        address(wasm, x!),
        address(wasm, y!),
        address(wasm, sums[0]!),
        address(wasm, sums[1]!),
        tf.util.sizeFromShape(x!.shape),
        channels * 4,
        accumulators,
        accumulators + 8 * channels,
      );
    } finally {
      wasm.disposeData(scratch.dataId);
    }
    return sums;
  };
}

let assembled: Promise<Uint8Array> | undefined;

/** The module's binary, assembled once per process. */
function channelKernelsBinary(): Promise<Uint8Array> {
  assembled ??= wabtFactory().then((wabt) => {
    const parsed = wabt.parseWat('channelKernels.wat', CHANNEL_KERNELS_WAT, { simd: true, bulk_memory: true });
    try {
      return parsed.toBinary({}).buffer;
    } finally {
      parsed.destroy();
    }
  });
  return assembled;
}

/**
 * Registers the fused kernels on the 'wasm' backend. Returns why not where they cannot run
 * (no SIMD, tfjs's memory not reachable); models then compose the same results from tfjs ops.
 */
export async function registerFusedKernels(): Promise<string | undefined> {
  const backend = tf.findBackend('wasm') as BackendWasm | null;
  const memory = backend ? backendMemory(backend) : undefined;
  if (memory === undefined) return "tfjs-backend-wasm's memory is not reachable";
  let exports: Record<string, KernelExport>;
  try {
    const instance = new wasmApi.Instance(new wasmApi.Module(await channelKernelsBinary()), { env: { memory } });
    exports = instance.exports as Record<string, KernelExport>;
  } catch (error) {
    return `the fused kernels do not compile here: ${(error as Error).message}`;
  }
  const kernelFuncs: [string, KernelFunc][] = [
    ...KERNELS.map((kernel): [string, KernelFunc] => [
      kernel.kernelName,
      kernelFunc(kernel, exports[kernel.kernelName]!),
    ]),
    [FUSED_KERNELS.channelSums, channelSumsKernel(exports[FUSED_KERNELS.channelSums]!)],
  ];
  for (const [kernelName, func] of kernelFuncs) {
    if (tf.getKernel(kernelName, 'wasm') === undefined)
      tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: func });
  }
  return undefined;
}
