/**
 * What deployment asks of an export, measured at export time: the exported file's own top-1 on
 * the run's held-out images against the engine's figure, the on-disk size of every format
 * (ONNX float32 and int8, tfjs float32 and float16 weights), and onnxruntime batch-1 latency of
 * float32 against int8 on this machine.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as ort from 'onnxruntime-node';
import { ACCURACY_TOLERANCE_POINTS, type DeploymentReport } from '../../../shared/deployment.js';
import { exitLabel, formatPercent } from '../../../shared/format.js';
import type { RunSummary } from '../../../shared/metrics.js';
import type { Dataset } from '../data/index.js';
import type { ExportGraph } from '../models/inferenceGraph.js';
import { encodeOnnxModel, type OnnxModel } from '../onnx/proto.js';
import { calibrateRanges, quantizeQdq } from '../onnx/quantize.js';
import { onnxLatency, onnxRuntimeInfo, openOnnxSession, runOnnx, type ImageShape } from '../onnx/runtime.js';
import { calibrationBatches, type ExportedRunner, type HeldOutImages } from './heldOut.js';
import { buildLayersModel } from './tfjsModel.js';
import { layersModelFiles, type WeightPrecision } from './tfjsFiles.js';

/** Training images the int8 activation ranges are calibrated on (min-max over all of them). */
export const CALIBRATION_IMAGES = 256;

/** The exported model's top-1 per output (shallowest exit first), by weight precision. */
export interface ScoredExport {
  top1: { float32: number[]; float16?: number[]; int8?: number[] };
}

/** The float ONNX model in QDQ int8 form, its activations calibrated on the run's training images. */
export async function int8Model(floatModel: OnnxModel, dataset: Dataset, shape: ImageShape): Promise<OnnxModel> {
  return quantizeQdq(
    floatModel,
    await calibrateRanges(floatModel, calibrationBatches(dataset, CALIBRATION_IMAGES), shape),
  );
}

export function onnxRunner(session: ort.InferenceSession, shape: ImageShape): ExportedRunner {
  return (images) => runOnnx(session, images, shape);
}

/** Bytes of model.json + weights.bin of the graph as a tfjs layers model with weights in `precision`. */
async function tfjsSizes(graph: ExportGraph, name: string): Promise<Record<WeightPrecision, number>> {
  const model = buildLayersModel(graph, name);
  try {
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (saved) => {
        artifacts = saved;
        return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(saved) };
      }),
    );
    const size = (precision: WeightPrecision) => {
      const { modelJson, weights } = layersModelFiles(artifacts!, precision);
      return Buffer.byteLength(modelJson) + weights.byteLength;
    };
    return { float32: size('float32'), float16: size('float16') };
  } finally {
    model.dispose();
  }
}

async function batch1Latency(model: OnnxModel, shape: ImageShape, label: string) {
  const session = await openOnnxSession(encodeOnnxModel(model), label);
  try {
    return await onnxLatency(session, shape);
  } finally {
    await session.release();
  }
}

/** One line per exported exit and precision whose top-1 is more than the tolerance below the engine's. */
function accuracyWarnings(graph: ExportGraph, summary: RunSummary | undefined, scored: ScoredExport): string[] {
  const warnings: string[] = [];
  graph.outputs.forEach(({ exit }, k) => {
    const engine = summary?.exits[exit.index]?.top1;
    if (engine === undefined) return;
    for (const [precision, top1] of Object.entries(scored.top1)) {
      const exported = top1?.[k];
      if (exported !== undefined && (engine - exported) * 100 > ACCURACY_TOLERANCE_POINTS) {
        warnings.push(
          `${exitLabel(exit)}, ${precision}: the exported file scores ${formatPercent(exported, 2)} top-1, ` +
            `${((engine - exported) * 100).toFixed(2)} points below the engine's ${formatPercent(engine, 2)}`,
        );
      }
    }
  });
  return warnings;
}

export interface DeploymentInput {
  graph: ExportGraph;
  /** The model's name, which its files hold (so sizes are exact). */
  name: string;
  summary: RunSummary | undefined;
  heldOut: HeldOutImages;
  onnx: { float32: OnnxModel; int8: OnnxModel };
  scored: ScoredExport;
}

export async function deploymentReport({
  graph,
  name,
  summary,
  heldOut,
  onnx,
  scored,
}: DeploymentInput): Promise<DeploymentReport> {
  const shape = graph.input.shape;
  const chosen = graph.outputs.length - 1;
  const engine = summary?.exits[graph.outputs[chosen]!.exit.index]?.top1;
  const tfjs = await tfjsSizes(graph, name);
  return {
    accuracy: {
      split: heldOut.split,
      images: heldOut.set.count,
      float32: scored.top1.float32[chosen]!,
      ...(scored.top1.float16 ? { float16: scored.top1.float16[chosen]! } : {}),
      ...(scored.top1.int8 ? { int8: scored.top1.int8[chosen]! } : {}),
      ...(engine !== undefined ? { engine } : {}),
    },
    warnings: accuracyWarnings(graph, summary, scored),
    sizes: {
      onnxFloat32: encodeOnnxModel(onnx.float32).byteLength,
      onnxInt8: encodeOnnxModel(onnx.int8).byteLength,
      tfjsFloat32: tfjs.float32,
      tfjsFloat16: tfjs.float16,
    },
    onnxruntimeBatch1: {
      float32: await batch1Latency(onnx.float32, shape, 'the float32 ONNX model'),
      int8: await batch1Latency(onnx.int8, shape, 'the int8 ONNX model'),
      ...onnxRuntimeInfo(),
    },
  };
}
