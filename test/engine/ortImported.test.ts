/**
 * The ort backend's compiled step on imported backbones (train/ort/importedLayers.ts): one step of
 * plain, joint and multi-way BP equals the same step on wasm-ort's path for every weight,
 * batch-norm statistic, momentum buffer and loss, within 1e-4 relative, on torchvision's resnet18
 * (max pooling, projection shortcuts), mobilenet_v3_small (depthwise 5x5 strided convolutions,
 * squeeze-and-excitation, hard swish) and a hand-built graph with the operators those do not use.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Method } from '../../shared/spec.js';
import { initBackend } from '../../electron/engine/backend/index.js';
import type { GraphBlock } from '../../electron/engine/models/import/block.js';
import { buildImportedNetwork } from '../../electron/engine/models/import/network.js';
import { LayerOp } from '../../electron/engine/models/import/ops.js';
import { int64Tensor, intAttribute, intsAttribute, floatTensor } from '../../electron/engine/onnx/proto.js';
import type { Hyperparameters } from '../../electron/engine/train/methods.js';
import { createTrainingMethodOn } from '../../electron/engine/train/ort/chooseMethod.js';
import { OrtTrainingMethod } from '../../electron/engine/train/ort/method.js';
import { chainModel, weights } from './import/chain.js';
import { exportTorchvision, type ExportRequest, type Exports } from './import/torchvision.js';
import { expectCompiledStepMatches } from './ortCompare.js';

const CLASSES = 3;
/** A large weight decay makes the order of the per-exit steps visible in the result. */
const HYPER: Hyperparameters = { lr: 0.02, momentum: 0.9, weightDecay: 0.05, gamma: 2 };
const METHODS: Method[] = ['plain', 'joint', 'multiway'];

const vector = (name: string, size: number, seed: number, scale = 0.5) => weights(name, [size], seed, scale);

/**
 * Pad, a biased stride-2 convolution, batch norm, ReLU6 (a Clip) and a max pool over its zeros
 * (tied maxima, windows of zeros), then two branches: a depthwise convolution with hard swish,
 * and an average pool over padding with a sigmoid; their concatenation gated by a
 * squeeze-and-excitation (pool, biased 1x1 convolution, hard sigmoid, product), scaled and
 * shifted by constants, added back to itself, ReLU, and a convolution with asymmetric pads.
 */
function handBuilt(size: number): Uint8Array {
  const conv = (
    name: string,
    input: string[],
    output: string,
    attributes = [intsAttribute('kernel_shape', [3, 3])],
  ) => ({
    name,
    op_type: 'Conv',
    input,
    output: [output],
    attribute: attributes,
  });
  return chainModel(
    size,
    [
      { name: 'pad', op_type: 'Pad', input: ['image', 'pads'], output: ['padded'] },
      conv('conv1', ['padded', 'w1', 'b1'], 'c1', [
        intsAttribute('kernel_shape', [3, 3]),
        intsAttribute('strides', [2, 2]),
      ]),
      { name: 'bn1', op_type: 'BatchNormalization', input: ['c1', 'gamma1', 'beta1', 'mean1', 'var1'], output: ['n1'] },
      { name: 'relu6', op_type: 'Clip', input: ['n1', 'zero', 'six'], output: ['r1'] },
      {
        name: 'maxpool',
        op_type: 'MaxPool',
        input: ['r1'],
        output: ['p1'],
        attribute: [intsAttribute('kernel_shape', [3, 3]), intsAttribute('pads', [1, 1, 1, 1])],
      },
      conv('depthwise', ['p1', 'wd'], 'd1', [
        intsAttribute('kernel_shape', [3, 3]),
        intsAttribute('pads', [1, 1, 1, 1]),
        intAttribute('group', 8),
      ]),
      { name: 'swish', op_type: 'HardSwish', input: ['d1'], output: ['h1'] },
      {
        name: 'avgpool',
        op_type: 'AveragePool',
        input: ['p1'],
        output: ['a1'],
        attribute: [intsAttribute('kernel_shape', [3, 3]), intsAttribute('pads', [1, 1, 1, 1])],
      },
      { name: 'sigmoid', op_type: 'Sigmoid', input: ['a1'], output: ['s1'] },
      { name: 'cat', op_type: 'Concat', input: ['h1', 's1'], output: ['cat'], attribute: [intAttribute('axis', 1)] },
      { name: 'squeeze', op_type: 'GlobalAveragePool', input: ['cat'], output: ['gp'] },
      conv('excite', ['gp', 'wf', 'bf'], 'f', [intsAttribute('kernel_shape', [1, 1])]),
      { name: 'gate', op_type: 'HardSigmoid', input: ['f'], output: ['gate'] },
      { name: 'se', op_type: 'Mul', input: ['cat', 'gate'], output: ['se'] },
      { name: 'scale', op_type: 'Mul', input: ['se', 'channelScale'], output: ['scaled'] },
      { name: 'shift', op_type: 'Add', input: ['scaled', 'channelShift'], output: ['shifted'] },
      { name: 'residual', op_type: 'Add', input: ['shifted', 'cat'], output: ['sum'] },
      { name: 'relu', op_type: 'Relu', input: ['sum'], output: ['out'] },
      conv('conv2', ['out', 'w2'], 'features', [
        intsAttribute('kernel_shape', [3, 3]),
        intsAttribute('strides', [2, 2]),
        intsAttribute('pads', [1, 0, 0, 1]),
      ]),
    ],
    [
      int64Tensor('pads', [0, 0, 1, 1, 0, 0, 0, 0]),
      weights('w1', [8, 3, 3, 3], 1),
      vector('b1', 8, 2),
      vector('gamma1', 8, 3),
      vector('beta1', 8, 4),
      vector('mean1', 8, 5, 0.1),
      floatTensor('var1', [8], new Float32Array(8).fill(1)),
      floatTensor('zero', [], Float32Array.of(0)),
      floatTensor('six', [], Float32Array.of(6)),
      weights('wd', [8, 1, 3, 3], 6),
      weights('wf', [16, 16, 1, 1], 7),
      vector('bf', 16, 8),
      weights('channelScale', [1, 16, 1, 1], 9, 2),
      weights('channelShift', [16, 1, 1], 10),
      weights('w2', [8, 16, 3, 3], 11),
    ],
  );
}

describe('ort step on a hand-built imported graph matches wasm-ort', () => {
  beforeAll(async () => {
    await initBackend('wasm-ort');
  });

  it.each([...METHODS, 'pairwise' as const])('%s', (method) => {
    const bytes = handBuilt(12);
    expectCompiledStepMatches(() => buildImportedNetwork(bytes, { classes: CLASSES, seed: 3, name: 'hand-built' }), {
      method,
      hyper: HYPER,
      steps: 2,
      batch: 4,
      input: [12, 12, 3],
      classes: CLASSES,
    });
  });

  it('has every operator of a backbone, auxiliary exits, and takes the compiled step on ort', () => {
    const net = buildImportedNetwork(handBuilt(12), { classes: CLASSES, seed: 3, name: 'hand-built' });
    expect(net.exits.length).toBeGreaterThan(1);
    const operations = net.blocks.flatMap((block) => (block as GraphBlock).nodes.map((n) => n.operation));
    const kinds = new Set(
      operations.map((op) => (op instanceof LayerOp ? op.layer.constructor.name : op.constructor.name)),
    );
    // Every imported operation but Flatten and its ChainOp, which end a classifier (dropped) and
    // not a backbone (ortImportedOps.test.ts checks them one by one).
    expect([...kinds].sort()).toEqual([
      'BatchNorm',
      'BinaryOp',
      'ClipOp',
      'ConcatOp',
      'ConstantOperandOp',
      'ConvOp',
      'HardSigmoidOp',
      'HardSwishOp',
      'PadOp',
      'PoolOp',
      'Relu',
      'SigmoidOp',
      'SpatialMeanOp',
    ]);
    const method = createTrainingMethodOn('ort', 'joint', net, HYPER);
    expect(method).toBeInstanceOf(OrtTrainingMethod);
    (method as OrtTrainingMethod).release();
    for (const opt of method.optimizers) opt.disposeState();
    net.dispose();
  });
});

interface TorchvisionCase {
  model: ExportRequest;
  exits: number[];
}

const TORCHVISION: TorchvisionCase[] = [
  { model: { name: 'resnet18', opset: 13, fold: false, size: 64, batch: 4 }, exits: [3, 6] },
  {
    model: { name: 'mobilenet_v3_small', opset: 13, fold: false, size: 64, batch: 4, kwargs: { width_mult: 0.5 } },
    exits: [4, 8],
  },
];

describe('ort step on torchvision backbones matches wasm-ort', () => {
  let exports: Exports | undefined;

  beforeAll(async () => {
    await initBackend('wasm-ort');
    exports = exportTorchvision(
      TORCHVISION.map((c) => c.model),
      "the compiled step on torchvision's backbones",
    );
  });

  afterAll(() => exports?.dispose());

  describe.each(TORCHVISION)('$model.name', ({ model, exits }) => {
    it.each(METHODS)('%s', (method) => {
      if (!exports) return;
      const bytes = readFileSync(exports.models.find((m) => m.name === model.name)!.onnx);
      expectCompiledStepMatches(
        () => buildImportedNetwork(bytes, { exits, classes: CLASSES, seed: 3, name: model.name }),
        { method, hyper: HYPER, steps: 1, batch: model.batch, input: [model.size, model.size, 3], classes: CLASSES },
      );
    });
  });
});
