/**
 * Every imported operation as the compiled step writes it (train/ort/importedLayers.ts), run by
 * onnxruntime, against its tfjs trace (models/import/ops.ts): the forward value, the gradient of
 * each input and of each parameter, for one gradient of the output and for two stacked on the batch
 * axis (multi-way's exits, train/ort/step.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../electron/engine/backend/index.js';
import { OnnxProgram, onnxConvolutionSupport } from '../../electron/engine/backend/ortConvolutions/index.js';
import type { GraphOp } from '../../electron/engine/models/import/ops.js';
import { GradSink, type Param } from '../../electron/engine/models/layers.js';
import { traceImportedOp } from '../../electron/engine/train/ort/importedLayers.js';
import { GraphGradSink, LayerEmitter, StepGraph } from '../../electron/engine/train/ort/layers.js';
import { expectClose, randomTensor } from './helpers.js';
import { IMPORTED_OP_CASES, POOL_CASES, awayFromKinks } from './import/opCases.js';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('imported operations in the step graph equal their tfjs trace', () => {
  const poolCases = POOL_CASES.map(([name, makeOp, shape]): [string, () => GraphOp, number[][]] => [
    name,
    makeOp,
    [shape],
  ]);
  it.each([...IMPORTED_OP_CASES, ...poolCases])('%s', (_, makeOp, shapes) => {
    const op = makeOp();
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const xs = shapes.map((shape, i) => awayFromKinks(shape, 10 + i));
      const traced = op.trace(xs);
      // Two gradients of the output, as two exits' backward passes would bring.
      const dys = [randomTensor(traced.y.shape, 98), randomTensor(traced.y.shape, 99)];
      const sinks = dys.map(() => new GradSink());
      const dxs = dys.map((dy, k) => traced.backward(dy, sinks[k]!));

      // The same in the graph: inputs, parameters and gradients are graph inputs.
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
      const expected: tf.Tensor[] = [traced.y];
      const outputs: string[] = [emitted.y.name];
      const compare = (value: string, shape: number[], tensor: tf.Tensor) => {
        outputs.push(g.reshape(value, shape));
        expected.push(tensor);
      };
      // One backward pass with the first gradient, and one with both stacked on the batch axis.
      const single = new GraphGradSink(g);
      const stacked = new GraphGradSink(g);
      stacked.rows = [0, 1];
      const singleDxs = emitted.backward(feed('dy', dys[0]!), single);
      const stackedDxs = emitted.backward(feed('dys', tf.concat(dys)), stacked);
      dxs[0]!.forEach((dx, i) => {
        expect(singleDxs[i] === null).toBe(dx === null);
        expect(stackedDxs[i] === null).toBe(dx === null);
        if (dx === null) return;
        compare(singleDxs[i]!, dx.shape, dx);
        const both = tf.concat([dx, dxs[1]![i]!]);
        compare(stackedDxs[i]!, both.shape, both);
      });
      for (const p of op.params) {
        compare(single.gradsOf(0).get(p)!, p.variable.shape, sinks[0]!.get(p)!);
        sinks.forEach((sink, k) => compare(stacked.gradsOf(k).get(p)!, p.variable.shape, sink.get(p)!));
      }
      const program = new OnnxProgram(
        {
          g,
          inputs: feeds.map(([name, t]) => [name, t.shape]),
          outputs: outputs.map((name, i) => [name, expected[i]!.shape]),
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
