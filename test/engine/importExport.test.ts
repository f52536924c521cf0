/**
 * Exporting an imported network: a run on torchvision's mobilenet_v2 (batch norm kept as nodes)
 * trained a few steps on colour Fashion-MNIST, exported in every format (tfjs with float32 and
 * float16 weights, ONNX, int8 ONNX, multi-exit and multi-exit int8), each file loaded back with
 * its own runtime and re-scored against the run's figure, its logits against the engine's; and
 * the export graph of the other torchvision models (pooling, concatenation, squeeze-and-
 * excitation, hard-swish, folded batch norms) through onnxruntime and tf.loadLayersModel.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCURACY_TOLERANCE_POINTS, EXPORT_FORMAT_KINDS, EXPORT_FORMATS } from '../../shared/deployment.js';
import type { RunSummary } from '../../shared/metrics.js';
import type { RunConfigInput } from '../../shared/spec.js';
import { initBackend, summarizeBackend } from '../../electron/engine/backend/index.js';
import {
  argmax,
  EXPORT_FILES,
  ExportError,
  exportExit,
  loadExportedModel,
  type ModelCard,
} from '../../electron/engine/export/index.js';
import { buildLayersModel } from '../../electron/engine/export/tfjsModel.js';
import { importBackbone } from '../../electron/engine/models/import/backbone.js';
import { buildImportedNetwork } from '../../electron/engine/models/import/network.js';
import { ParamFactory } from '../../electron/engine/models/layers.js';
import { exportGraph } from '../../electron/engine/models/inferenceGraph.js';
import type { MwNetwork } from '../../electron/engine/models/index.js';
import { onnxModelBytes } from '../../electron/engine/models/onnxSubModel.js';
import {
  decodeOnnxModel,
  floatTensor,
  int64Tensor,
  intsAttribute,
  type OnnxNode,
} from '../../electron/engine/onnx/proto.js';
import { openOnnxSession, runOnnx } from '../../electron/engine/onnx/runtime.js';
import { Random } from '../../electron/engine/random.js';
import { loadTrainedNetwork } from '../../electron/engine/runs/trained.js';
import { openRun } from '../../electron/engine/session.js';
import { runTestImages } from './helpers.js';
import { chainModel, weights } from './import/chain.js';
import { writeFashionFolder } from './import/fashionFolder.js';
import { exportTorchvision, type ExportRequest, type Exports } from './import/torchvision.js';

const SIZE = 32;
const TRAINED: ExportRequest = { name: 'mobilenet_v2', opset: 13, fold: false, size: SIZE, batch: 1 };
/** Each brings operators the trained one lacks: max pooling and residual sums (resnet18, folded, opset 11), dense blocks, average pooling and standalone batch norms (densenet121), squeeze-and-excitation with sigmoid (efficientnet_b0) and hard-swish (mobilenet_v3_small at opset 17, where it is one operator). */
const GRAPH_ONLY: ExportRequest[] = [
  { name: 'resnet18', opset: 11, fold: true, size: SIZE, batch: 1 },
  { name: 'densenet121', opset: 13, fold: true, size: SIZE, batch: 1 },
  { name: 'efficientnet_b0', opset: 13, fold: false, size: SIZE, batch: 1 },
  { name: 'mobilenet_v3_small', opset: 17, fold: true, size: SIZE, batch: 1 },
];
const CLASSES = 4;
const TEST_IMAGES = 20 * CLASSES;
/** Candidates 5 and 12 of mobilenet_v2 (features.5, features.12), and the final output (19). */
const EXITS = [5, 12];
/** Largest logit difference between an exported float model and the network, relative to the largest logit (at least 1). */
const TOLERANCE = 1e-4;
/** The least share of test images whose int8 top-1 equals the float network's. */
const INT8_AGREEMENT = 0.9;

let exports: Exports | undefined;
let root: string;
let dir: string;
let summary: RunSummary;
let net: MwNetwork;
let images: tf.Tensor4D;
let labels: Uint8Array;

beforeAll(async () => {
  const backend = await initBackend('wasm');
  exports = exportTorchvision([TRAINED, ...GRAPH_ONLY], 'exporting imported torchvision backbones');
  if (!exports) return;
  root = await mkdtemp(join(tmpdir(), 'mw-import-export-'));
  const config: RunConfigInput = {
    dataset: await writeFashionFolder(root, { classes: CLASSES, train: 24, test: TEST_IMAGES / CLASSES }),
    imageSize: SIZE,
    arch: { family: 'imported', backbone: exports.models[0]!.onnx, exits: EXITS },
    method: 'multiway',
    gamma: 2,
    epochs: 2,
    batchSize: 32,
    lr: 0.05,
    seed: 4,
    validationSplit: 0,
  };
  const trainer = await openRun(
    { kind: 'new', config, runsRoot: join(root, 'runs') },
    { backend: summarizeBackend(backend), latency: { warmup: 1, minRepeats: 2, maxRepeats: 2 } },
  );
  summary = (await trainer.run())!;
  dir = trainer.start.run;
  ({ images, labels } = await runTestImages(trainer.start.config));
  trainer.dispose();
  net = (await loadTrainedNetwork(dir)).net;
}, 600_000);

afterAll(async () => {
  net?.dispose();
  images?.dispose();
  exports?.dispose();
  if (root) await rm(root, { recursive: true, force: true });
});

/** Largest difference relative to the largest reference value (at least 1). */
function relativeDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return worst / scale;
}

/** The network's logits at exit `index` on the test images. */
function networkLogits(index: number): Float32Array {
  return tf.tidy(() => net.predict(images, { upToExit: index, onlyLast: true })[0]!.dataSync() as Float32Array);
}

function topClasses(logits: ArrayLike<number>): number[] {
  const count = images.shape[0];
  const classes = logits.length / count;
  return Array.from({ length: count }, (_, i) => argmax(logits, i * classes, classes));
}

const accuracyOf = (classes: number[]) => classes.filter((c, i) => c === labels[i]).length / classes.length;

/** Logits of every output of an export folder, loaded as a user would load it. */
async function exportedLogits(directory: string): Promise<Float32Array[]> {
  const loaded = await loadExportedModel(directory);
  if (loaded.format === 'onnx') {
    const outputs = await runOnnx(loaded.session, images.dataSync() as Float32Array, [SIZE, SIZE, 3]);
    await loaded.session.release();
    return outputs;
  }
  const outputs = [loaded.model.predict(images)].flat();
  const values = outputs.map((t) => t.dataSync() as Float32Array);
  tf.dispose(outputs);
  loaded.model.dispose();
  return values;
}

async function readCard(directory: string): Promise<ModelCard> {
  return JSON.parse(await readFile(join(directory, EXPORT_FILES.cardJson), 'utf8')) as ModelCard;
}

describe('every export format of an imported mobilenet_v2', () => {
  it.each(EXPORT_FORMATS)("%s re-scores from the written file to the run's figure", async (format) => {
    if (!exports) return;
    const kind = EXPORT_FORMAT_KINDS[format];
    // The multi-exit formats hold every exit up to the final one; the others the exit after candidate 5.
    const exit = kind.multiExit ? 'final' : EXITS[0]!;
    const indices = kind.multiExit ? net.exits.map((e) => e.index) : [0];
    const { directory, deployment } = await exportExit({ run: dir, exit, format });
    const card = await readCard(directory);
    expect(card.deployment).toEqual(deployment);
    expect(card.exits.map((e) => e.block)).toEqual(indices.map((k) => net.exits[k]!.block));
    const chosen = indices.at(-1)!;
    expect(deployment.accuracy).toMatchObject({
      split: 'test',
      images: TEST_IMAGES,
      engine: summary.exits[chosen]!.top1,
    });

    const outputs = await exportedLogits(directory);
    expect(outputs).toHaveLength(indices.length);
    const precision = kind.weights;
    // What the card records is what the written file scores.
    card.exits.forEach((e, k) =>
      expect(e.exportedTop1[precision], `output ${k}`).toBe(accuracyOf(topClasses(outputs[k]!))),
    );
    indices.forEach((index, k) => {
      const expected = networkLogits(index);
      const float = topClasses(expected);
      // The float32 figure is the network's own, and the run's figure within the tolerance.
      expect(card.exits[k]!.exportedTop1.float32).toBe(accuracyOf(float));
      expect(Math.abs(card.exits[k]!.exportedTop1.float32! - summary.exits[index]!.top1) * 100).toBeLessThanOrEqual(
        ACCURACY_TOLERANCE_POINTS,
      );
      if (precision === 'int8') {
        const int8 = topClasses(outputs[k]!);
        expect(int8.filter((c, i) => c === float[i]).length / float.length, `output ${k}`).toBeGreaterThanOrEqual(
          INT8_AGREEMENT,
        );
      } else {
        // float16 weights round to 11 significant bits: their logits are held to the rounding, not to float32's.
        expect(relativeDiff(outputs[k]!, expected), `output ${k}`).toBeLessThanOrEqual(
          precision === 'float16' ? 1e-2 : TOLERANCE,
        );
      }
    });
    if (precision !== 'int8') expect(deployment.warnings).toEqual([]);
  });

  it('folds every batch norm of the backbone into its convolution in the ONNX file (the exit head keeps its own)', async () => {
    if (!exports) return;
    const { directory } = await exportExit({ run: dir, exit: EXITS[0]!, format: 'onnx' });
    const model = decodeOnnxModel(await readFile(join(directory, EXPORT_FILES.onnxModel)));
    const ops = model.graph.node.map((n) => n.op_type);
    expect(new Set(ops)).toEqual(
      new Set([
        'Transpose',
        'Conv',
        'BatchNormalization',
        'Clip',
        'Add',
        'Relu',
        'GlobalAveragePool',
        'Flatten',
        'Gemm',
      ]),
    );
    expect(ops.filter((op) => op === 'BatchNormalization')).toHaveLength(1);
    const groups = model.graph.node
      .filter((n) => n.op_type === 'Conv')
      .map((n) => n.attribute!.find((a) => a.name === 'group')!.i);
    // features.0's stem, then features.1's depthwise (32 channels) and projection.
    expect(groups.slice(0, 3)).toEqual([1, 32, 1]);
  });
});

describe('continuing from an export', () => {
  it("imports the ONNX export of an imported network's exit again as a backbone, with the same predictions", async () => {
    if (!exports) return;
    const { directory } = await exportExit({ run: dir, exit: EXITS[1]!, format: 'onnx' });
    const backbone = importBackbone(
      await readFile(join(directory, EXPORT_FILES.onnxModel)),
      new ParamFactory(new Random(0)),
    );
    const logits = tf.tidy(() => {
      const features = backbone.blocks.reduce((h: tf.Tensor, block) => block.forward(h), images);
      return backbone.classifier!.forward(features).dataSync();
    });
    expect(relativeDiff(logits, networkLogits(1))).toBeLessThanOrEqual(TOLERANCE);
    for (const layer of [...backbone.blocks, backbone.classifier!])
      for (const p of [...layer.params, ...layer.buffers]) p.variable.dispose();
  });
});

/**
 * Every exit of `net` written as an ONNX model (run in onnxruntime) and as a tfjs layers model
 * (saved and loaded back through tfjs's own serialisation, as tf.loadLayersModel reads an
 * export), each giving the network's logits on `x`; nothing left behind.
 */
async function expectExportsGiveNetworkLogits(net: MwNetwork, x: tf.Tensor4D, name: string): Promise<void> {
  const before = tf.memory().numTensors;
  const graph = exportGraph(
    net,
    net.exits.map((e) => e.index),
  );
  const shape = net.description.inputShape;
  const expected = tf.tidy(() => net.predict(x).map((t) => t.dataSync()));
  const session = await openOnnxSession(
    await onnxModelBytes(graph, { name, description: '', metadata: {} }),
    `${name}'s ONNX sub-model`,
  );
  const onnx = await runOnnx(session, x.dataSync() as Float32Array, shape);
  await session.release();
  const built = buildLayersModel(graph, name);
  let saved: tf.io.ModelArtifacts | undefined;
  await built.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  built.dispose();
  const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
  const layers = tf.tidy(() => [loaded.predict(x)].flat().map((t) => t.dataSync()));
  loaded.dispose();
  expect(onnx).toHaveLength(net.exits.length);
  expect(layers).toHaveLength(net.exits.length);
  expected.forEach((logits, k) => {
    expect(relativeDiff(onnx[k]!, logits), `ONNX, exit ${k}`).toBeLessThanOrEqual(TOLERANCE);
    expect(relativeDiff(layers[k]!, logits), `tfjs, exit ${k}`).toBeLessThanOrEqual(TOLERANCE);
  });
  expect(tf.memory().numTensors).toBe(before);
}

describe('the export graph of other torchvision backbones', () => {
  it.each(GRAPH_ONLY.map((m) => m.name))(
    '%s: the ONNX model and the tfjs layers model loaded back give the network’s logits at every exit',
    async (name) => {
      if (!exports) return;
      const model = exports.models.find((m) => m.name === name)!;
      const imported = buildImportedNetwork(readFileSync(model.onnx), { classes: CLASSES, seed: 2, name });
      const x = tf.randomNormal([3, model.size, model.size, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
      await expectExportsGiveNetworkLogits(imported, x, name);
      x.dispose();
      imported.dispose();
    },
  );
});

describe('operators the torchvision models do not use', () => {
  it("a tf2onnx-style chain (explicit Pad, biased stride-2 Conv, per-channel and scalar constants, HardSwish, a max pool over negative values) exports to ONNX and tfjs with the network's logits", async () => {
    const bytes = chainModel(
      9,
      [
        { name: 'pad', op_type: 'Pad', input: ['image', 'pads'], output: ['padded'] },
        {
          name: 'conv1',
          op_type: 'Conv',
          input: ['padded', 'w1', 'b1'],
          output: ['c1'],
          attribute: [intsAttribute('kernel_shape', [3, 3]), intsAttribute('strides', [2, 2])],
        },
        { name: 'scale', op_type: 'Mul', input: ['c1', 'gamma'], output: ['scaled'] },
        { name: 'shift', op_type: 'Add', input: ['scaled', 'beta'], output: ['shifted'] },
        { name: 'offset', op_type: 'Add', input: ['shifted', 'half'], output: ['offset'] },
        { name: 'swish', op_type: 'HardSwish', input: ['offset'], output: ['swish'] },
        {
          name: 'pool',
          op_type: 'MaxPool',
          input: ['swish'],
          output: ['pooled'],
          attribute: [intsAttribute('kernel_shape', [3, 3]), intsAttribute('pads', [1, 1, 1, 1])],
        },
        {
          name: 'conv2',
          op_type: 'Conv',
          input: ['pooled', 'w2'],
          output: ['features'],
          attribute: [intsAttribute('kernel_shape', [1, 1])],
        },
      ],
      [
        int64Tensor('pads', [0, 0, 1, 1, 0, 0, 0, 0]),
        weights('w1', [6, 3, 3, 3], 1),
        weights('b1', [6], 2),
        weights('gamma', [1, 6, 1, 1], 3, 2),
        weights('beta', [6, 1, 1], 4),
        floatTensor('half', [], Float32Array.of(0.5)),
        weights('w2', [8, 6, 1, 1], 5),
      ],
    );
    const net = buildImportedNetwork(bytes, { classes: CLASSES, seed: 3, name: 'chain' });
    const x = tf.randomNormal([3, 9, 9, 3], 0, 1, 'float32', 10) as tf.Tensor4D;
    await expectExportsGiveNetworkLogits(net, x, 'chain');
    x.dispose();
    net.dispose();
  });

  it.each([
    [
      'a clip that does not start at 0',
      { name: 'clip', op_type: 'Clip', input: ['c', 'low', 'high'], output: ['out'] },
      /^backbone\.clip \(clip\) has no TensorFlow\.js layer: a clip to \[-1, 2\] does not start at 0; export this exit as ONNX instead$/,
    ],
    [
      "a max pool over negative values padded where 'same' does not pad",
      {
        name: 'pool',
        op_type: 'MaxPool',
        input: ['c'],
        output: ['out'],
        attribute: [
          intsAttribute('kernel_shape', [3, 3]),
          intsAttribute('strides', [2, 2]),
          intsAttribute('pads', [1, 1, 1, 1]),
        ],
      },
      /^backbone\.pool \(maxPool\) has no TensorFlow\.js layer: padding 1 on a 8x8 input is not what 'same' pads; export this exit as ONNX instead$/,
    ],
  ] as [string, OnnxNode, RegExp][])(
    '%s: exports to ONNX, and tfjs refuses it in one line',
    async (_, node, refusal) => {
      const bytes = chainModel(
        8,
        [
          {
            name: 'conv',
            op_type: 'Conv',
            input: ['image', 'w'],
            output: ['c'],
            attribute: [intsAttribute('kernel_shape', [3, 3]), intsAttribute('pads', [1, 1, 1, 1])],
          },
          node,
        ],
        [
          weights('w', [4, 3, 3, 3], 6),
          floatTensor('low', [], Float32Array.of(-1)),
          floatTensor('high', [], Float32Array.of(2)),
        ],
      );
      const net = buildImportedNetwork(bytes, { classes: CLASSES, seed: 4, name: 'refused' });
      const graph = exportGraph(net, [0]);
      const x = tf.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 11) as tf.Tensor4D;
      const session = await openOnnxSession(
        await onnxModelBytes(graph, { name: 'refused', description: '', metadata: {} }),
        'the ONNX sub-model',
      );
      const [onnx] = await runOnnx(session, x.dataSync() as Float32Array, [8, 8, 3]);
      await session.release();
      const expected = tf.tidy(() => net.predict(x)[0]!.dataSync());
      expect(relativeDiff(onnx!, expected)).toBeLessThanOrEqual(TOLERANCE);
      const before = tf.memory().numTensors;
      const error = (() => {
        try {
          buildLayersModel(graph, 'refused').dispose();
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(ExportError);
      expect((error as Error).message).toMatch(refusal);
      // The layers made before the refusal are disposed with their weights.
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      net.dispose();
    },
  );
});
