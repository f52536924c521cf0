/**
 * Fast training kernels for the portable backends (wasm, and cpu where it pays off).
 *
 * The tfjs wasm backend ships no Conv2DBackpropFilter and no depthwise backprop kernels at all,
 * and its Conv2DBackpropInput is a plain loop (~1 GFLOP/s). Each gradient here is rewritten as
 * a forward convolution plus cheap data movement, so the heavy lifting runs in the backend's own
 * optimised Conv2D / DepthwiseConv2dNative (XNNPACK on wasm). Every step calls an existing kernel
 * of the same backend, so one implementation serves wasm and cpu alike.
 *
 * Conventions (tfjs, NHWC): x [N,H,W,Cin], conv filter [kh,kw,Cin,Cout], depthwise filter
 * [kh,kw,C,M] with output channel c*M+m, dy [N,Ho,Wo,Cout]. Pad amounts always come from
 * `backend_util.computeConv2DInfo`, exactly as the stock kernels compute them, so 'same' with an
 * even size and stride 2 (asymmetric padding), explicit paddings and numeric pads with a rounding
 * mode all agree with the reference kernels.
 *
 * Measured with scripts/bench-kernels.ts (Node 20, tfjs 4.22.0, wasm = SIMD build on 1 thread, on a
 * 2-core AMD EPYC VM), GFLOP/s of the forward convolution's work, stock tfjs kernel -> ours:
 *
 *   x [128,28,28,16], 3x3, 16->16 channels (depthwise: multiplier 1), stride 1, 'same'
 *     wasm  Conv2DBackpropFilter                 missing -> 12.4
 *     wasm  Conv2DBackpropInput                     2.30 -> 25.7
 *     wasm  DepthwiseConv2dNativeBackpropFilter  missing -> 0.68
 *     wasm  DepthwiseConv2dNativeBackpropInput   missing -> 5.95
 *     cpu   Conv2DBackpropFilter                    0.01 -> 0.47
 *     cpu   Conv2DBackpropInput                     0.93 -> 0.58  (stock kept)
 *     cpu   DepthwiseConv2dNativeBackpropFilter     0.01 -> 0.08
 *     cpu   DepthwiseConv2dNativeBackpropInput      0.32 -> 0.18  (stock kept)
 *     (forward Conv2D for scale: wasm 20.0, cpu 0.70; DepthwiseConv2dNative: wasm 10.1, cpu 0.42)
 *
 *   same with N=32 and stride 2 (the input gradient runs on a zero-spread dy: 4x the work)
 *     wasm  Conv2DBackpropFilter                 missing -> 11.4
 *     wasm  Conv2DBackpropInput                     1.91 -> 5.88
 *     wasm  DepthwiseConv2dNativeBackpropFilter  missing -> 0.66
 *     wasm  DepthwiseConv2dNativeBackpropInput   missing -> 1.20
 *     cpu   Conv2DBackpropInput                     0.80 -> 0.14  (stock kept)
 *     cpu   DepthwiseConv2dNativeBackpropInput      0.18 -> 0.04  (stock kept)
 *
 * The depthwise filter gradient is the slow one: it is a depthwise convolution with an Ho x Wo
 * kernel and only kh x kw outputs, a shape XNNPACK does not handle quickly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import type {
  Conv2DBackpropFilterAttrs,
  Conv2DBackpropInputAttrs,
  DepthwiseConv2dNativeBackpropFilterAttrs,
  DepthwiseConv2dNativeBackpropInputAttrs,
  KernelBackend,
  KernelConfig,
  KernelFunc,
  NamedAttrMap,
  TensorInfo,
} from '@tensorflow/tfjs-core';

export type PortableBackendName = 'wasm' | 'cpu';

type Shape4D = [number, number, number, number];
type Conv2DInfo = ReturnType<typeof backend_util.computeConv2DInfo>;

/** Runs one existing kernel of the backend the gradient is being computed on. */
type RunKernel = (name: string, inputs: Record<string, TensorInfo>, attrs?: NamedAttrMap) => TensorInfo;

type GradientBody = (run: RunKernel, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap) => TensorInfo;

/**
 * Turns a composition of kernels into a KernelFunc. `run` executes a kernel of `backendName` and
 * records its output; every recorded output except the returned one is freed afterwards (also
 * when a step throws), so a gradient call leaves exactly one new data buffer behind.
 * Freeing goes through `backend.disposeData`, which decrements the buffer's reference count:
 * Reshape outputs share their input's buffer, so freeing both is correct.
 */
function composedKernel(backendName: PortableBackendName, body: GradientBody): KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const kernelBackend = backend as KernelBackend;
    const intermediates: TensorInfo[] = [];
    const run: RunKernel = (name, kernelInputs, kernelAttrs = {}) => {
      const kernel = tf.getKernel(name, backendName) as KernelConfig | undefined;
      if (kernel === undefined) {
        throw new Error(`Kernel '${name}' is not registered for backend '${backendName}'.`);
      }
      const out = kernel.kernelFunc({ inputs: kernelInputs, backend, attrs: kernelAttrs });
      if (Array.isArray(out)) throw new Error(`Kernel '${name}' returned several outputs; expected one.`);
      intermediates.push(out);
      return out;
    };
    let result: TensorInfo | undefined;
    try {
      result = body(run, requireInputs(inputs), attrs ?? {});
      return result;
    } finally {
      for (const info of intermediates) {
        if (info !== result) kernelBackend.disposeData(info.dataId);
      }
    }
  };
}

function requireInputs(inputs: Record<string, TensorInfo | undefined>): Record<string, TensorInfo> {
  const present: Record<string, TensorInfo> = {};
  for (const [name, info] of Object.entries(inputs)) {
    if (info === undefined) throw new Error(`Gradient kernel input '${name}' is missing.`);
    present[name] = info;
  }
  return present;
}

function input(inputs: Record<string, TensorInfo>, name: string): TensorInfo {
  const info = inputs[name];
  if (info === undefined) throw new Error(`Gradient kernel input '${name}' is missing.`);
  return info;
}

function as4D(shape: readonly number[], what: string): Shape4D {
  const [a, b, c, d] = shape;
  if (shape.length !== 4 || a === undefined || b === undefined || c === undefined || d === undefined) {
    throw new Error(`${what} must be rank 4, got shape [${shape.join(', ')}].`);
  }
  return [a, b, c, d];
}

/** Our compositions assume NHWC, unit dilation; say so clearly instead of computing garbage. */
function checkSupported(kernel: string, info: Conv2DInfo): void {
  if (info.dataFormat !== 'channelsLast') {
    throw new Error(`${kernel}: only NHWC (channelsLast) is supported by the portable gradient kernels.`);
  }
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    throw new Error(`${kernel}: dilation > 1 is not supported by the portable gradient kernels.`);
  }
}

/**
 * Pads (positive amounts, with zeros) or crops (negative amounts) each axis of `x`.
 * Returns `x` itself when nothing changes.
 */
function padOrCrop(run: RunKernel, x: TensorInfo, before: number[], after: number[]): TensorInfo {
  let out = x;
  if (before.some((p) => p < 0) || after.some((p) => p < 0)) {
    const begin = before.map((p) => Math.max(0, -p));
    const size = out.shape.map((dim, i) => dim - begin[i]! - Math.max(0, -after[i]!));
    out = run('Slice', { x: out }, { begin, size });
  }
  if (before.some((p) => p > 0) || after.some((p) => p > 0)) {
    const paddings = before.map((p, i) => [Math.max(0, p), Math.max(0, after[i]!)]);
    out = run('PadV2', { x: out }, { paddings, constantValue: 0 });
  }
  return out;
}

/**
 * The forward pass reads padded-input rows 0 .. (Ho-1)*sh + kh - 1 (likewise columns). Returns
 * x padded/cropped to exactly that window, so a valid correlation with dy dilated by the
 * stride yields exactly kh x kw filter taps.
 */
function inputWindow(run: RunKernel, x: TensorInfo, info: Conv2DInfo): TensorInfo {
  const rows = (info.outHeight - 1) * info.strideHeight + info.filterHeight;
  const cols = (info.outWidth - 1) * info.strideWidth + info.filterWidth;
  const { top, left } = info.padInfo;
  return padOrCrop(run, x, [0, top, left, 0], [0, rows - top - info.inHeight, cols - left - info.inWidth, 0]);
}

/**
 * Prepares dy for the input gradient: a stride-s convolution's input gradient is a stride-1 full
 * correlation of dy, with s-1 zeros inserted between its rows/columns, and the flipped filter.
 * Zeros are inserted by viewing dy as [N,Ho,1,Wo,1,C] and padding the unit axes to s. The result
 * is padded/cropped so that a valid kh x kw correlation produces exactly H x W outputs.
 */
function spreadAndPadDy(run: RunKernel, dy: TensorInfo, info: Conv2DInfo): TensorInfo {
  const [n, outH, outW, c] = as4D(dy.shape, 'dy');
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  let spread = dy;
  if (sh > 1 || sw > 1) {
    const unitAxes = run('Reshape', { x: dy }, { shape: [n, outH, 1, outW, 1, c] });
    const zeros = run(
      'PadV2',
      { x: unitAxes },
      {
        paddings: [
          [0, 0],
          [0, 0],
          [0, sh - 1],
          [0, 0],
          [0, sw - 1],
          [0, 0],
        ],
        constantValue: 0,
      },
    );
    spread = run('Reshape', { x: zeros }, { shape: [n, outH * sh, outW * sw, c] });
  }
  const { top, left } = info.padInfo;
  const kh = info.filterHeight;
  const kw = info.filterWidth;
  return padOrCrop(
    run,
    spread,
    [0, kh - 1 - top, kw - 1 - left, 0],
    [0, info.inHeight + top - outH * sh, info.inWidth + left - outW * sw, 0],
  );
}

/** Attributes of the stride-1, unpadded forward convolutions every gradient reduces to. */
function stride1Valid(dilations: [number, number]): NamedAttrMap {
  return { strides: [1, 1], pad: 'valid', dilations };
}

const conv2DBackpropFilter: GradientBody = (run, inputs, attrs) => {
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  const x = input(inputs, 'x');
  const dy = input(inputs, 'dy');
  const info = backend_util.computeConv2DInfo(
    as4D(x.shape, 'x'),
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(dataFormat),
  );
  checkSupported('Conv2DBackpropFilter', info);
  // dF[a,b,ci,co] = sum_{n,i,j} xpad[n, i*sh+a, j*sw+b, ci] * dy[n,i,j,co]: a valid conv of
  // xpad as a batch of Cin images with N channels, by dy as a [Ho,Wo,N,Cout] filter dilated by
  // the stride. Output [Cin,kh,kw,Cout] is then reordered to the filter layout.
  const images = run('Transpose', { x: inputWindow(run, x, info) }, { perm: [3, 1, 2, 0] });
  const dyFilter = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
  const grad = run(
    'Conv2D',
    { x: images, filter: dyFilter },
    {
      ...stride1Valid([info.strideHeight, info.strideWidth]),
      dataFormat: 'NHWC',
    },
  );
  return run('Transpose', { x: grad }, { perm: [1, 2, 0, 3] });
};

const conv2DBackpropInput: GradientBody = (run, inputs, attrs) => {
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as Conv2DBackpropInputAttrs;
  const dy = input(inputs, 'dy');
  const filter = input(inputs, 'filter');
  const info = backend_util.computeConv2DInfo(
    inputShape,
    as4D(filter.shape, 'filter'),
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(dataFormat),
  );
  checkSupported('Conv2DBackpropInput', info);
  // Correlate the spread dy with the spatially flipped filter, in/out channels swapped.
  const flipped = run('Reverse', { x: filter }, { dims: [0, 1] });
  const swapped = run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] });
  return run(
    'Conv2D',
    { x: spreadAndPadDy(run, dy, info), filter: swapped },
    {
      ...stride1Valid([1, 1]),
      dataFormat: 'NHWC',
    },
  );
};

const depthwiseBackpropFilter: GradientBody = (run, inputs, attrs) => {
  const { strides, dilations, pad, dimRoundingMode, filterShape } =
    attrs as unknown as DepthwiseConv2dNativeBackpropFilterAttrs;
  const x = input(inputs, 'x');
  const dy = input(inputs, 'dy');
  const info = backend_util.computeConv2DInfo(
    as4D(x.shape, 'x'),
    filterShape,
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
  checkSupported('DepthwiseConv2dNativeBackpropFilter', info);
  const [n, , , c] = as4D(x.shape, 'x');
  const [kh, kw, , m] = filterShape;
  // Same idea as the dense filter gradient, but channels stay separate: fold the batch into the
  // channel axis (x as one image with N*C channels, dy as an [Ho,Wo,N*C,M] depthwise filter),
  // run one depthwise conv dilated by the stride, then sum the N copies of each filter tap.
  const window = inputWindow(run, x, info);
  const [, rows, cols] = as4D(window.shape, 'window');
  const batchLast = run('Transpose', { x: window }, { perm: [1, 2, 0, 3] });
  const image = run('Reshape', { x: batchLast }, { shape: [1, rows, cols, n * c] });
  const dyBatchLast = run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
  const dyFilter = run('Reshape', { x: dyBatchLast }, { shape: [info.outHeight, info.outWidth, n * c, m] });
  const perImage = run(
    'DepthwiseConv2dNative',
    { x: image, filter: dyFilter },
    stride1Valid([info.strideHeight, info.strideWidth]),
  );
  const split = run('Reshape', { x: perImage }, { shape: [kh, kw, n, c, m] });
  return run('Sum', { x: split }, { axis: [2], keepDims: false });
};

const depthwiseBackpropInput: GradientBody = (run, inputs, attrs) => {
  const { strides, dilations, pad, dimRoundingMode, inputShape } =
    attrs as unknown as DepthwiseConv2dNativeBackpropInputAttrs;
  const dy = input(inputs, 'dy');
  const filter = input(inputs, 'filter');
  const [kh, kw, c, m] = as4D(filter.shape, 'filter');
  const info = backend_util.computeConv2DInfo(
    inputShape,
    [kh, kw, c, m],
    strides,
    dilations,
    pad,
    dimRoundingMode,
    true,
  );
  checkSupported('DepthwiseConv2dNativeBackpropInput', info);
  // Each of the C*M dy channels is correlated with its own flipped tap set; the M channels that
  // came from the same input channel are then summed.
  const flipped = run('Reverse', { x: filter }, { dims: [0, 1] });
  const perChannel = run('Reshape', { x: flipped }, { shape: [kh, kw, c * m, 1] });
  const grad = run(
    'DepthwiseConv2dNative',
    { x: spreadAndPadDy(run, dy, info), filter: perChannel },
    stride1Valid([1, 1]),
  );
  if (m === 1) return grad;
  const [n, h, w] = inputShape;
  const split = run('Reshape', { x: grad }, { shape: [n, h, w, c, m] });
  return run('Sum', { x: split }, { axis: [4], keepDims: false });
};

const GRADIENT_BODIES: Record<string, GradientBody> = {
  Conv2DBackpropFilter: conv2DBackpropFilter,
  Conv2DBackpropInput: conv2DBackpropInput,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput,
};

/** Names of the gradient kernels this module implements. */
export const GRADIENT_KERNEL_NAMES = Object.keys(GRADIENT_BODIES);

/**
 * Which of our kernels replace the stock ones, per backend. Only kernels that measured faster
 * than what the backend already has (or that the backend lacks) are registered; see
 * scripts/bench-kernels.ts for the figures.
 */
const REPLACED_ON: Record<PortableBackendName, readonly string[]> = {
  wasm: GRADIENT_KERNEL_NAMES,
  // The cpu backend's own input gradients are direct loops that beat its slow forward Conv2D.
  cpu: ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter'],
};

/** Our kernel configs for `backendName`, registered or not (the benchmark times all of them). */
export function gradientKernelConfigs(backendName: PortableBackendName): KernelConfig[] {
  return Object.entries(GRADIENT_BODIES).map(([kernelName, body]) => ({
    kernelName,
    backendName,
    kernelFunc: composedKernel(backendName, body),
  }));
}

const registered = new Map<PortableBackendName, string[]>();

/**
 * Registers the fast gradient kernels on `backendName`, replacing stock kernels where ours are
 * faster. Safe to call repeatedly. Returns the names of the kernels now served by this module.
 */
export function registerGradientKernels(backendName: PortableBackendName): string[] {
  const already = registered.get(backendName);
  if (already !== undefined) return already;
  const names = REPLACED_ON[backendName];
  for (const config of gradientKernelConfigs(backendName)) {
    if (!names.includes(config.kernelName)) continue;
    // registerKernel refuses to overwrite silently (it warns), so drop the stock kernel first.
    if (tf.getKernel(config.kernelName, backendName) !== undefined) {
      tf.unregisterKernel(config.kernelName, backendName);
    }
    tf.registerKernel(config);
  }
  registered.set(backendName, [...names]);
  return [...names];
}
