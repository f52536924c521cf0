/**
 * Times the convolution gradient kernels on the portable backends: the stock tfjs kernel (where
 * the backend has one) against ours from electron/engine/backend/portableConvGradients.ts.
 *
 *   npx tsx scripts/bench-kernels.ts [batch=128]
 *
 * Shape: x [N,28,28,16], 3x3 filter, 16 -> 16 channels (depthwise: 16 channels, multiplier 1),
 * stride 1, 'same'. GFLOP/s counts 2 * multiply-adds of the forward convolution, which is also
 * the work of each gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import type { KernelBackend, KernelConfig, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { gradientKernelConfigs, type PortableBackendName } from '../electron/engine/backend/portableConvGradients.js';

const N = Number(process.argv[2] ?? 128);
const H = 28;
const W = 28;
const C = 16;
const K = 3;
const xShape: [number, number, number, number] = [N, H, W, C];
const convFilterShape: [number, number, number, number] = [K, K, C, C];
const depthwiseFilterShape: [number, number, number, number] = [K, K, C, 1];
const convFlops = 2 * N * H * W * K * K * C * C;
const depthwiseFlops = 2 * N * H * W * K * K * C;
/** Keep repeating a kernel until this much time is spent (at least twice, after one warm-up). */
const BUDGET_MS = 1500;

interface Case {
  kernel: string;
  flops: number;
  inputs: Record<string, TensorInfo>;
  attrs: NamedAttrMap;
}

function cases(x: tf.Tensor, dy: tf.Tensor, convFilter: tf.Tensor, depthwiseFilter: tf.Tensor): Case[] {
  const common = { strides: [1, 1], pad: 'same', dilations: [1, 1], dataFormat: 'NHWC' };
  return [
    { kernel: 'Conv2D', flops: convFlops, inputs: { x, filter: convFilter }, attrs: common },
    {
      kernel: 'Conv2DBackpropFilter',
      flops: convFlops,
      inputs: { x, dy },
      attrs: { ...common, filterShape: convFilterShape },
    },
    {
      kernel: 'Conv2DBackpropInput',
      flops: convFlops,
      inputs: { dy, filter: convFilter },
      attrs: { ...common, inputShape: xShape },
    },
    { kernel: 'DepthwiseConv2dNative', flops: depthwiseFlops, inputs: { x, filter: depthwiseFilter }, attrs: common },
    {
      kernel: 'DepthwiseConv2dNativeBackpropFilter',
      flops: depthwiseFlops,
      inputs: { x, dy },
      attrs: { ...common, filterShape: depthwiseFilterShape },
    },
    {
      kernel: 'DepthwiseConv2dNativeBackpropInput',
      flops: depthwiseFlops,
      inputs: { dy, filter: depthwiseFilter },
      attrs: { ...common, inputShape: xShape },
    },
  ];
}

/** Best-of-runs GFLOP/s of one kernel implementation. */
function gflops(kernel: KernelConfig, c: Case): number {
  const backend = tf.backend() as KernelBackend;
  const once = (): number => {
    const start = performance.now();
    const out = kernel.kernelFunc({ inputs: c.inputs, backend, attrs: c.attrs }) as TensorInfo;
    const ms = performance.now() - start;
    backend.disposeData(out.dataId);
    return ms;
  };
  once();
  let best = Infinity;
  let spent = 0;
  for (let runs = 0; runs < 2 || spent < BUDGET_MS; runs++) {
    const ms = once();
    best = Math.min(best, ms);
    spent += ms;
  }
  return c.flops / best / 1e6;
}

async function benchBackend(name: PortableBackendName): Promise<void> {
  await tf.setBackend(name);
  const ours = new Map(gradientKernelConfigs(name).map((k) => [k.kernelName, k]));
  const x = tf.randomNormal(xShape);
  const dy = tf.randomNormal(xShape);
  const convFilter = tf.randomNormal(convFilterShape);
  const depthwiseFilter = tf.randomNormal(depthwiseFilterShape);
  for (const c of cases(x, dy, convFilter, depthwiseFilter)) {
    const stock = tf.getKernel(c.kernel, name) as KernelConfig | undefined;
    const mine = ours.get(c.kernel);
    const stockText = stock === undefined ? 'missing' : gflops(stock, c).toFixed(2);
    const mineText = mine === undefined ? '-' : gflops(mine, c).toFixed(2);
    console.log(
      `${name.padEnd(5)} ${c.kernel.padEnd(36)} stock ${stockText.padStart(8)}   ours ${mineText.padStart(8)}`,
    );
  }
  tf.dispose([x, dy, convFilter, depthwiseFilter]);
}

console.log(`GFLOP/s, N=${N}, ${H}x${W}, ${C}->${C} channels, ${K}x${K}, stride 1, 'same'`);
await benchBackend('wasm');
await benchBackend('cpu');
