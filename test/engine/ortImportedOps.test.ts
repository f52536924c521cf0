/**
 * Every imported operation as the compiled step writes it (train/ort/importedLayers.ts), run by
 * onnxruntime, against its tfjs trace (models/import/ops.ts): the forward value, the gradient of
 * each input and of each parameter.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../electron/engine/backend/index.js';
import { OnnxProgram, onnxConvolutionSupport } from '../../electron/engine/backend/ortConvolutions/index.js';
import { GradSink, type Param } from '../../electron/engine/models/layers.js';
import { traceImportedOp } from '../../electron/engine/train/ort/importedLayers.js';
import { GraphGradSink, LayerEmitter, StepGraph } from '../../electron/engine/train/ort/layers.js';
import { expectClose, randomTensor } from './helpers.js';
import { IMPORTED_OP_CASES, awayFromKinks } from './import/opCases.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('imported operations in the step graph equal their tfjs trace', () => {
  it.each(IMPORTED_OP_CASES)('%s', (_, makeOp, shapes) => {
    const op = makeOp();
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const xs = shapes.map((shape, i) => awayFromKinks(shape, 10 + i));
      const traced = op.trace(xs);
      const dy = randomTensor(traced.y.shape, 99);
      const sink = new GradSink();
      const dxs = traced.backward(dy, sink);

      // The same in the graph: inputs, parameters and dy are graph inputs.
      const g = new StepGraph();
      const feeds: [string, tf.Tensor][] = [];
      const feed = (name: string, t: tf.Tensor) => {
        feeds.push([name, t]);
        return name;
      };
      const params = new Map<Param, string>();
      const layers = new LayerEmitter(
        g,
        {
          read: (p) => params.get(p) ?? params.set(p, feed(`p${params.size}`, p.variable)).get(p)!,
          write: () => undefined,
        },
        onnxConvolutionSupport().block,
      );
      const emitted = traceImportedOp(
        layers,
        op,
        xs.map((x, i) => ({ name: feed(`x${i}`, x), shape: x.shape })),
      );
      expect(emitted.y.shape).toEqual(traced.y.shape);
      const graphSink = new GraphGradSink(g);
      const graphDxs = emitted.backward(feed('dy', dy), graphSink);
      const expected: tf.Tensor[] = [traced.y];
      const outputs: string[] = [emitted.y.name];
      dxs.forEach((dx, i) => {
        expect(graphDxs[i] === null).toBe(dx === null);
        if (dx === null) return;
        expected.push(dx);
        outputs.push(graphDxs[i]!);
      });
      for (const p of op.params) {
        expected.push(sink.get(p)!);
        outputs.push(graphSink.grads.get(p)!);
      }
      const program = new OnnxProgram(
        {
          g,
          inputs: feeds.map(([name, t]) => [name, t.shape]),
          // Identity: an output may also be a graph input (a gradient passed through unchanged).
          outputs: outputs.map((name, i) => [g.op('Identity', [name]), expected[i]!.shape]),
        },
        1,
      );
      const results = expected.map((t) => new Float32Array(t.size));
      program.run(
        feeds.map(([, t]) => t.dataSync() as Float32Array),
        results,
      );
      program.dispose();
      results.forEach((values, i) => expectClose(tf.tensor(values, expected[i]!.shape), expected[i]!, 1e-5));
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
