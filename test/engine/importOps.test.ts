/**
 * Every operation of an imported graph (models/import/ops.ts): its explicit backward equals tfjs
 * autodiff of its forward, for the inputs and the parameters, on the wasm backend (whose pooling
 * gradients are its own kernels) and on cpu. Inputs avoid the kinks of the piecewise operations.
 * Pooling's backward also equals PyTorch's where tfjs's kernels differ from it: tied maxima and
 * windows of zeros (after a ReLU), and average pools over padding.
 */
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { describe, it } from 'vitest';
import { initBackend } from '../../electron/engine/backend/index.js';
import { GradSink } from '../../electron/engine/models/layers.js';
import type { GraphOp } from '../../electron/engine/models/import/ops.js';
import { PYTHON3_TORCHVISION, locate } from '../requirements.js';
import { expectClose, randomTensor } from './helpers.js';
import { IMPORTED_OP_CASES, POOL_CASES, awayFromKinks } from './import/opCases.js';

function checkAgainstAutodiff(op: GraphOp, inputs: tf.Tensor[]): void {
  tf.tidy(() => {
    const traced = op.trace(inputs);
    const r = randomTensor(traced.y.shape, 99);
    const sink = new GradSink();
    const grads = traced.backward(r, sink);
    const params = op.params.map((p) => p.variable);
    const loss = (...xs: tf.Tensor[]) => tf.sum(tf.mul(op.forward(xs), r)) as tf.Scalar;
    tf.grads(loss)(inputs).forEach((expected, i) => expectClose(grads[i]!, expected, 1e-4));
    if (params.length) {
      const { grads: paramGrads } = tf.variableGrads(() => loss(...inputs), params);
      op.params.forEach((p) => expectClose(sink.get(p)!, paramGrads[p.variable.name]!, 1e-4));
    }
  });
}

describe.each(['wasm', 'cpu'] as const)('imported operations on %s: backward equals autodiff', (backend) => {
  it.each(IMPORTED_OP_CASES)('%s', async (_, makeOp, shapes) => {
    await initBackend(backend);
    const op = makeOp();
    const inputs = shapes.map((shape, i) => awayFromKinks(shape, 10 + i));
    checkAgainstAutodiff(op, inputs);
    tf.dispose(inputs);
  });
});

/** PyTorch's input gradients of max_pool2d / avg_pool2d (count_include_pad off, as the importer requires) at x, for dy. */
const TORCH_POOL_GRADS = `
import json, sys, torch
import torch.nn.functional as F
grads = []
for r in json.loads(sys.argv[1]):
    x = torch.tensor(r['x']).reshape(r['shape']).permute(0, 3, 1, 2).requires_grad_()
    args = dict(kernel_size=r['window'], stride=r['stride'], padding=r['pad'])
    y = F.max_pool2d(x, **args) if r['kind'] == 'max' else F.avg_pool2d(x, count_include_pad=False, **args)
    y.backward(torch.tensor(r['dy']).reshape([y.shape[0], y.shape[2], y.shape[3], y.shape[1]]).permute(0, 3, 1, 2))
    grads.append(x.grad.permute(0, 2, 3, 1).reshape(-1).tolist())
print(json.dumps(grads))
`;

describe("pooling's backward equals PyTorch's", () => {
  it('max and average pools of every stride and padding, on tied maxima and windows of ReLU zeros', async () => {
    const python = locate(PYTHON3_TORCHVISION, "pooling's backward against PyTorch");
    if (!python) return;
    await initBackend('wasm');
    tf.tidy(() => {
      const cases = POOL_CASES.map(([, makeOp, shape], i) => {
        const op = makeOp();
        // Halves of a ReLU'd input: many ties, and whole windows of zeros.
        const x = tf.relu(tf.div(tf.round(tf.mul(randomTensor(shape, 21 + i), 2)), 2));
        const traced = op.trace([x]);
        const dy = randomTensor(traced.y.shape, 42 + i);
        return { op, x, dy, dx: traced.backward(dy, new GradSink())[0]! };
      });
      const requests = cases.map(({ op, x, dy }) => ({
        x: Array.from(x.dataSync()),
        shape: x.shape,
        dy: Array.from(dy.dataSync()),
        kind: op.kind,
        window: op.window,
        stride: op.stride,
        pad: op.pad,
      }));
      const run = spawnSync(python, ['-c', TORCH_POOL_GRADS, JSON.stringify(requests)], { encoding: 'utf8' });
      if (run.status !== 0) throw new Error(`PyTorch failed: ${run.stderr}`);
      const expected = JSON.parse(run.stdout) as number[][];
      cases.forEach(({ x, dx }, i) => expectClose(dx, tf.tensor(expected[i]!, x.shape), 1e-6));
    });
  });
});
