/**
 * The importer against PyTorch: six torchvision models (random weights, eval mode) exported by
 * torch.onnx.export at opsets 11 to 17, with batch norm folded into the convolutions or kept as
 * nodes. The imported network's features at every exit candidate equal the torchvision module's
 * output there (forward hooks), and its logits (original classifier kept) equal torch's.
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importBackbone } from '../../electron/engine/models/import/backbone.js';
import { ParamFactory } from '../../electron/engine/models/layers.js';
import { Random } from '../../electron/engine/random.js';
import { initBackend } from '../../electron/engine/backend/index.js';
import { expectClose } from './helpers.js';
import { exportTorchvision, type ExportRequest, type Exports } from './import/torchvision.js';

const SIZE = 64;
const BATCH = 2;
const MODELS: Omit<ExportRequest, 'size' | 'batch'>[] = [
  { name: 'resnet18', opset: 11, fold: false },
  { name: 'resnet18', opset: 13, fold: true },
  { name: 'resnet50', opset: 16, fold: true },
  { name: 'mobilenet_v2', opset: 12, fold: false },
  { name: 'mobilenet_v2', opset: 17, fold: true },
  { name: 'mobilenet_v3_small', opset: 11, fold: false },
  { name: 'mobilenet_v3_small', opset: 14, fold: true },
  { name: 'densenet121', opset: 15, fold: true },
  { name: 'efficientnet_b0', opset: 17, fold: false },
  { name: 'efficientnet_b0', opset: 13, fold: true },
];

let exports: Exports | undefined;

beforeAll(async () => {
  // wasm: the backend a user's machine trains on without native packages, and fast enough for ResNet-50 here.
  await initBackend('wasm');
  exports = exportTorchvision(
    MODELS.map((m) => ({ ...m, size: SIZE, batch: BATCH })),
    'the ONNX importer against PyTorch',
  );
});

afterAll(() => exports?.dispose());

describe('imported torchvision models equal PyTorch', () => {
  it.each(MODELS.map((m) => [`${m.name} opset ${m.opset}, batch norm ${m.fold ? 'folded' : 'kept'}`, m] as const))(
    '%s',
    (_, request) => {
      if (!exports) return;
      const model = exports.models.find((m) => m.name === request.name && m.opset === request.opset)!;
      const before = tf.memory().numTensors;
      const backbone = importBackbone(readFileSync(model.onnx), new ParamFactory(new Random(0)));
      expect(backbone.inputShape).toEqual([SIZE, SIZE, 3]);
      const { candidates, blocks, classifier } = backbone;
      expect(candidates.length).toBeGreaterThanOrEqual(4);
      expect(candidates.map((c) => c.id)).toEqual(candidates.map((_, i) => i + 1));
      // Compute never shrinks along the network, and each candidate adds parameters or compute
      // (densenet121's last candidate adds only its final batch norm, counted as parameters).
      candidates.slice(1).forEach((c, i) => {
        const previous = candidates[i]!;
        expect(c.macs).toBeGreaterThanOrEqual(previous.macs);
        expect(c.macs + c.params).toBeGreaterThan(previous.macs + previous.params);
      });
      tf.tidy(() => {
        const input = exports!.read(`${model.tag}.input.bin`, [BATCH, 3, SIZE, SIZE]);
        let h: tf.Tensor = tf.transpose(input, [0, 2, 3, 1]);
        let compared = 0;
        blocks.forEach((block, k) => {
          h = block.forward(h);
          const candidate = candidates[k]!;
          const [c, height, width] = candidate.shape;
          expect(h.shape).toEqual([BATCH, height, width, c]);
          const reference = candidate.module ? model.features[candidate.module] : undefined;
          if (reference) {
            expectClose(h, exports!.read(reference.file, reference.shape), 1e-4);
            compared++;
          }
        });
        // Every candidate but possibly the last (after a functional ReLU, no module) has torch's output beside it.
        expect(compared).toBeGreaterThanOrEqual(candidates.length - 1);
        expectClose(classifier!.forward(h), exports!.read(`${model.tag}.logits.bin`, model.logitsShape), 1e-4);
      });
      for (const block of [...blocks, classifier!])
        for (const p of [...block.params, ...block.buffers]) p.variable.dispose();
      expect(tf.memory().numTensors).toBe(before);
    },
  );
});
