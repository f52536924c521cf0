/**
 * Small ONNX graphs run synchronously by onnxruntime-node on tensors of the wasm backend: the
 * machinery under the onnxruntime kernels (convolutions.ts).
 *
 * onnxruntime-node's InferenceSession.run is asynchronous only in form: it defers the binding's
 * synchronous run with setImmediate (onnxruntime-node/dist/backend.js). tfjs kernels must be
 * synchronous, so we call the binding directly. Inputs are views of the wasm heap and outputs
 * are tensors the wasm backend allocated, so no data is copied on our side.
 */
import { createRequire } from 'node:module';
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as ort from 'onnxruntime-node';
import {
  encodeOnnxModel,
  int64Tensor,
  intsAttribute,
  tensorInfo,
  type OnnxAttribute,
  type OnnxNode,
  type OnnxTensor,
} from '../../onnx/proto.js';

/** The part of onnxruntime-node's native InferenceSession we use (onnxruntime-node/dist/binding.d.ts). */
interface NativeSession {
  loadModel(
    buffer: ArrayBufferLike,
    byteOffset: number,
    byteLength: number,
    options: ort.InferenceSession.SessionOptions,
  ): void;
  run(
    feeds: Record<string, ort.Tensor>,
    fetches: Record<string, ort.Tensor | null>,
    options: ort.InferenceSession.RunOptions,
  ): Record<string, ort.Tensor>;
  endProfiling(): void;
  dispose(): void;
}

interface NativeBinding {
  binding: { InferenceSession: new () => NativeSession };
  initOrt(): void;
}

let nativeBinding: NativeBinding | undefined;

function binding(): NativeBinding {
  if (nativeBinding === undefined) {
    nativeBinding = createRequire(import.meta.url)('onnxruntime-node/dist/binding.js') as NativeBinding;
    nativeBinding.initOrt();
  }
  return nativeBinding;
}

export const NCHWC_DOMAIN = 'com.microsoft.nchwc';
const OPSET = 13;

/** An ONNX graph under construction: values get generated names; constants become initializers. */
export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private count = 0;

  op(opType: string, inputs: string[], attributes: OnnxAttribute[] = [], domain?: string): string {
    return this.opOutputs(opType, inputs, 1, attributes, domain)[0]!;
  }

  /** A node with `count` outputs (Split's pieces). */
  opOutputs(
    opType: string,
    inputs: string[],
    count: number,
    attributes: OnnxAttribute[] = [],
    domain?: string,
  ): string[] {
    const outputs = Array.from({ length: count }, () => `v${this.count++}`);
    this.nodes.push({
      name: outputs[0]!,
      op_type: opType,
      input: inputs,
      output: outputs,
      attribute: attributes,
      ...(domain ? { domain } : {}),
    });
    return outputs;
  }

  int64s(values: number[]): string {
    const name = `c${this.count++}`;
    this.initializers.push(int64Tensor(name, values));
    return name;
  }

  transpose(value: string, perm: number[]): string {
    return this.op('Transpose', [value], [intsAttribute('perm', perm)]);
  }

  reshape(value: string, shape: number[]): string {
    return this.op('Reshape', [value, this.int64s(shape)]);
  }

  slice(value: string, axes: number[], starts: number[], ends: number[], steps?: number[]): string {
    const inputs = [value, this.int64s(starts), this.int64s(ends), this.int64s(axes)];
    if (steps) inputs.push(this.int64s(steps));
    return this.op('Slice', inputs);
  }
}

/** A graph with its float32 inputs and outputs, each named and shaped. */
export interface KernelGraph {
  g: GraphBuilder;
  inputs: [string, number[]][];
  outputs: [string, number[]][];
}

/** A compiled graph: one onnxruntime session. */
export class OnnxProgram {
  private readonly session: NativeSession;

  /** `options` adds to or replaces the session options below (a training step spins, for one). */
  constructor(
    private readonly graph: KernelGraph,
    threads: number,
    options: ort.InferenceSession.SessionOptions = {},
  ) {
    const bytes = encodeOnnxModel({
      ir_version: 8,
      opset_import: [
        { domain: '', version: OPSET },
        { domain: NCHWC_DOMAIN, version: 1 },
      ],
      producer_name: 'Mw Studio kernels',
      graph: {
        name: 'kernel',
        node: graph.g.nodes,
        initializer: graph.g.initializers,
        input: graph.inputs.map(([name, shape]) => tensorInfo(name, shape)),
        output: graph.outputs.map(([name, shape]) => tensorInfo(name, shape)),
      },
    });
    this.session = new (binding().binding.InferenceSession)();
    this.session.loadModel(bytes.buffer, bytes.byteOffset, bytes.byteLength, {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: threads,
      executionMode: 'sequential',
      // Without spinning, onnxruntime's idle threads sleep instead of competing with the
      // single-threaded wasm work between kernel calls.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
      ...options,
    });
  }

  get outputShapes(): number[][] {
    return this.graph.outputs.map(([, shape]) => shape);
  }

  /** Runs on float32 arrays in the inputs' order, writing into `outs` in the outputs' order. */
  run(values: Float32Array[], outs: Float32Array[]): void {
    const feeds: Record<string, ort.Tensor> = {};
    this.graph.inputs.forEach(([name, shape], i) => (feeds[name] = new ort.Tensor('float32', values[i]!, shape)));
    const fetches: Record<string, ort.Tensor> = {};
    this.graph.outputs.forEach(([name, shape], i) => (fetches[name] = new ort.Tensor('float32', outs[i]!, shape)));
    this.session.run(feeds, fetches, {});
  }

  /** Writes the profile of a session opened with `enableProfiling` (a JSON file named by its prefix). */
  endProfiling(): void {
    this.session.endProfiling();
  }

  dispose(): void {
    this.session.dispose();
  }
}

/** Compiled programs by key, oldest first: a long session with many shapes drops the oldest. */
export class ProgramCache {
  private readonly programs = new Map<string, OnnxProgram>();

  constructor(
    readonly threads: number,
    private readonly capacity = 256,
  ) {}

  get(key: string, build: () => KernelGraph): OnnxProgram {
    let program = this.programs.get(key);
    if (program === undefined) {
      program = new OnnxProgram(build(), this.threads);
      this.programs.set(key, program);
      if (this.programs.size > this.capacity) {
        const [oldestKey, oldest] = this.programs.entries().next().value as [string, OnnxProgram];
        oldest.dispose();
        this.programs.delete(oldestKey);
      }
    }
    return program;
  }

  dispose(): void {
    for (const program of this.programs.values()) program.dispose();
    this.programs.clear();
  }
}

/**
 * Runs `program` on the wasm backend's tensors `inputs` and returns its outputs as new wasm
 * tensors. Outputs are allocated first: growing the wasm heap detaches earlier views of it.
 */
export function runOnWasm(backend: BackendWasm, program: OnnxProgram, inputs: TensorInfo[]): TensorInfo[] {
  const outputs = program.outputShapes.map((shape) => backend.makeOutput(shape, 'float32'));
  const heap = (info: TensorInfo) => backend.typedArrayFromHeap(info) as Float32Array;
  program.run(inputs.map(heap), outputs.map(heap));
  return outputs;
}

/** How many calls ran in onnxruntime and how many fell back to the replaced kernels, since the process started. */
const calls = { onnx: 0, fallback: 0 };

export function onnxKernelCalls(): { onnx: number; fallback: number } {
  return { ...calls };
}

/**
 * What a kernel call runs: one program on the call's tensors, or a custom sequence that returns
 * its output (for programs that read the wasm heap at offsets, convolutions.ts).
 */
export type KernelPlan = { program: OnnxProgram; inputs: TensorInfo[] } | { run(backend: BackendWasm): TensorInfo };

/** A kernel that runs `plan`'s program when it returns one, else `fallback` (the kernel it replaces). */
export function onnxKernel(
  plan: (args: Parameters<KernelFunc>[0]) => KernelPlan | undefined,
  fallback: KernelFunc,
): KernelFunc {
  return (args) => {
    const planned = plan(args);
    if (planned === undefined) {
      calls.fallback++;
      return fallback(args);
    }
    calls.onnx++;
    const backend = args.backend as BackendWasm;
    if ('run' in planned) return planned.run(backend);
    const outputs = runOnWasm(backend, planned.program, planned.inputs);
    return outputs.length === 1 ? outputs[0]! : outputs;
  };
}
