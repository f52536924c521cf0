/**
 * Exporting a trained run's exit as a standalone model: the backbone up to that exit and its
 * head, as a TensorFlow.js layers model or an ONNX model (float32, or int8 in QDQ form), alone or
 * ('multi', 'multi-onnx-int8') with every exit up to it as outputs plus early-exit metadata.
 * Each export is checked against the trained network before anything is written, re-scored on
 * the run's held-out images by loading the written file itself, carries a model card with its
 * sizes and latencies, and lands in its folder whole or not at all.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type * as ort from 'onnxruntime-node';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { EXPORT_FORMATS, type ExportFormat, type ExportResult } from '../../../shared/api.js';
import { describeExitRefs, findExit, type ExitRef } from '../../../shared/exitRef.js';
import { EXPORT_FORMAT_KINDS } from '../../../shared/deployment.js';
import { exitLabel } from '../../../shared/format.js';
import type { MwNetwork } from '../models/index.js';
import type { ExitPoint } from '../models/network.js';
import { loadTrainedNetwork } from '../runs/trained.js';
import { ExportError } from '../errors.js';
import { EXPORT_FILES, writeExportFolder, writeFileFlushed } from './folder.js';
import { exportGraph, type ExportGraph } from '../models/inferenceGraph.js';
import { buildModelCard, modelCardMarkdown, preprocessingOf, type CardInput, type ModelCard } from './modelCard.js';
import { onnxModelOf } from '../models/onnxSubModel.js';
import { encodeOnnxModel } from '../onnx/proto.js';
import { onnxLatency, onnxRuntimeInfo, openOnnxSession, runOnnx } from '../onnx/runtime.js';
import { buildLayersModel } from './tfjsModel.js';
import { layersFolderHandler, loadLayersModelFromFolder, type WeightPrecision } from './tfjsFiles.js';
import { exportImages, heldOutTop1, tfjsRunner, type ExportImages, type ExportedRunner } from './heldOut.js';
import { deploymentReport, int8Model, onnxRunner, type ScoredExport } from './deployment.js';
import type { OnnxModel } from '../onnx/proto.js';
import { checkAgainstCard, fileChecksums } from './checksums.js';
import { writeDemo } from './demo.js';
import { predictWith, readPredictCard, type Prediction } from './predict.js';

export { ExportError } from '../errors.js';
export { DEMO_FILES, EXPORT_FILES } from './folder.js';
export { layersFolderHandler } from './tfjsFiles.js';
export type { ModelCard } from './modelCard.js';
export { argmax } from './heldOut.js';
export type { Prediction } from './predict.js';

export interface ExportRequest {
  /** Run folder. */
  run: string;
  /** The exit's block number, or 'final'. */
  exit: ExitRef;
  format: ExportFormat;
  /** Folder to create (or replace, when it holds a previous export); default `<run>/exports/<exit>-<format>`. */
  destination?: string;
  /** 'multi' only: the max-softmax probability at which an exit answers (default 0.9). */
  threshold?: number;
}

const DEFAULT_EARLY_EXIT_THRESHOLD = 0.9;

/** The verification input: a few random images, the same every export. */
const PROBE_IMAGES = 4;
const PROBE_SEED = 7;
/** Largest logit difference allowed, relative to the largest logit (at least 1): float rounding, not a bug. */
const VERIFY_TOLERANCE = 1e-3;

/** "exit-block2-onnx", "final-tfjs". */
function exportFolderName(exit: ExitPoint, format: ExportFormat): string {
  return `${exit.final ? 'final' : `exit-block${exit.block}`}-${format}`;
}

function checkRequest(request: ExportRequest): number | undefined {
  if (!EXPORT_FORMATS.includes(request.format)) {
    throw new ExportError(`format must be one of ${EXPORT_FORMATS.join(', ')}, not "${String(request.format)}"`);
  }
  const { multiExit } = EXPORT_FORMAT_KINDS[request.format];
  if (request.threshold === undefined) return multiExit ? DEFAULT_EARLY_EXIT_THRESHOLD : undefined;
  if (!multiExit) throw new ExportError(`threshold applies to the multi-exit formats only, not to ${request.format}`);
  if (!(request.threshold > 0 && request.threshold <= 1))
    throw new ExportError(`threshold must be a probability in (0, 1], not ${request.threshold}`);
  return request.threshold;
}

function exitToExport(net: MwNetwork, network: string, exit: ExitRef): ExitPoint {
  const point = findExit(net.exits, exit);
  if (!point)
    throw new ExportError(
      `exit ${exit} is not in the network: ${network} has exits after blocks ${describeExitRefs(net.exits)}`,
    );
  return point;
}

/**
 * Runs the trained network and the exported model (`run`: logits per exported exit) on the same
 * random images and returns their largest difference; fails when it is more than rounding.
 */
async function verify(
  net: MwNetwork,
  graph: ExportGraph,
  run: (images: tf.Tensor4D) => Promise<Float32Array[]>,
): Promise<ModelCard['verification']> {
  const images = tf.randomNormal([PROBE_IMAGES, ...graph.input.shape], 0, 1, 'float32', PROBE_SEED) as tf.Tensor4D;
  try {
    const all = tf.tidy(() => net.predict(images, { upToExit: graph.outputs.at(-1)!.exit.index }));
    const expected = await Promise.all(graph.outputs.map((o) => all[o.exit.index]!.data()));
    tf.dispose(all);
    const actual = await run(images);
    let maxAbsDiff = 0;
    let scale = 1;
    expected.forEach((values, k) =>
      values.forEach((v, i) => {
        scale = Math.max(scale, Math.abs(v));
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - actual[k]![i]!));
      }),
    );
    if (!(maxAbsDiff <= VERIFY_TOLERANCE * scale)) {
      throw new ExportError(
        `the exported model does not reproduce the trained network (logits differ by up to ${maxAbsDiff}); nothing was written`,
      );
    }
    return { images: PROBE_IMAGES, maxAbsDiff };
  } finally {
    images.dispose();
  }
}

async function writeCard(dir: string, card: ModelCard): Promise<void> {
  await writeFileFlushed(join(dir, EXPORT_FILES.cardJson), `${JSON.stringify(card, null, 2)}\n`);
  await writeFileFlushed(join(dir, EXPORT_FILES.cardMarkdown), modelCardMarkdown(card));
}

/** early-exit.json: how a runtime picks its answer from the multi-output model. */
function earlyExitMetadata(card: ModelCard, threshold: number): object {
  return {
    model: EXPORT_FORMAT_KINDS[card.format].runtime === 'onnx' ? EXPORT_FILES.onnxModel : EXPORT_FILES.layersModel,
    threshold,
    rule: 'apply softmax to each output in order and answer with the first exit whose highest probability is >= threshold; otherwise with the last',
    exits: card.exits.map(({ output, index, block, layer, final, params, macs, top1 }) => ({
      output,
      index,
      block,
      layer,
      final,
      params,
      macs,
      ...(top1 !== undefined ? { top1 } : {}),
    })),
    classes: card.dataset.classes,
    preprocessing: card.preprocessing,
  };
}

interface ExportJob {
  net: MwNetwork;
  graph: ExportGraph;
  name: string;
  destination: string;
  images: ExportImages;
  /** The sub-model as ONNX, float32 and int8: the export itself when it is ONNX, sizes and latencies always. */
  onnx: { float32: OnnxModel; int8: OnnxModel };
  earlyExitThreshold: number | undefined;
  card: Omit<CardInput, 'files' | 'sha256' | 'verification' | 'deployment' | 'exportedTop1'>;
}

/** The early-exit file of a multi-exit export, written beside its model. */
function earlyExitOf(job: ExportJob): ModelCard['earlyExit'] {
  return job.earlyExitThreshold === undefined
    ? undefined
    : { file: EXPORT_FILES.earlyExit, threshold: job.earlyExitThreshold };
}

/** Top-1 of every output of the written model on the held-out images. */
function rescore(job: ExportJob, run: ExportedRunner): Promise<number[]> {
  return heldOutTop1(job.images.dataset, job.images.heldOut, run);
}

/** Writes the card (and the early-exit file) of a model already in `dir`, scored as `scored` says. */
async function finishFolder(
  job: ExportJob,
  dir: string,
  files: string[],
  verification: ModelCard['verification'],
  scored: ScoredExport,
  extra: Partial<CardInput> = {},
): Promise<ExportResult['deployment']> {
  const earlyExit = earlyExitOf(job);
  const deployment = await deploymentReport({
    graph: job.graph,
    name: job.name,
    summary: job.card.summary,
    heldOut: job.images.heldOut,
    onnx: job.onnx,
    scored,
  });
  const card = buildModelCard({
    ...job.card,
    ...extra,
    files: [...files, ...(earlyExit ? [earlyExit.file] : [])],
    sha256: await fileChecksums(dir, files),
    verification,
    deployment,
    exportedTop1: scored.top1,
    ...(earlyExit ? { earlyExit } : {}),
  });
  if (earlyExit)
    await writeFileFlushed(
      join(dir, earlyExit.file),
      `${JSON.stringify(earlyExitMetadata(card, earlyExit.threshold), null, 2)}\n`,
    );
  await writeCard(dir, card);
  await writeDemo(dir, card);
  return deployment;
}

async function writeLayersExport(job: ExportJob, precision: WeightPrecision): Promise<ExportResult> {
  const model = buildLayersModel(job.graph, job.name);
  try {
    const verification = await verify(job.net, job.graph, async (images) => {
      const outputs = [model.predict(images)].flat();
      try {
        return (await Promise.all(outputs.map((t) => t.data()))) as Float32Array[];
      } finally {
        tf.dispose(outputs);
      }
    });
    let deployment: ExportResult['deployment'] | undefined;
    const files = await writeExportFolder(job.destination, async (dir) => {
      await model.save(layersFolderHandler(dir, precision));
      const written = await loadLayersModelFromFolder(dir);
      let top1: number[];
      try {
        top1 = await rescore(
          job,
          tfjsRunner((x) => written.predict(x), job.graph.input.shape),
        );
      } finally {
        written.dispose();
      }
      // A float16 file is judged against the float32 model it was made from.
      const scored =
        precision === 'float16'
          ? {
              float32: await rescore(
                job,
                tfjsRunner((x) => model.predict(x), job.graph.input.shape),
              ),
              float16: top1,
            }
          : { float32: top1 };
      deployment = await finishFolder(job, dir, [EXPORT_FILES.layersModel, EXPORT_FILES.layersWeights], verification, {
        top1: scored,
      });
    });
    return { files, directory: job.destination, deployment: deployment! };
  } finally {
    model.dispose();
  }
}

/** The sub-model as a float32 ONNX model and its int8 form, with the classes and preprocessing as metadata. */
async function onnxModels(
  graph: ExportGraph,
  name: string,
  card: ExportJob['card'],
  dataset: ExportImages['dataset'],
): Promise<ExportJob['onnx']> {
  const { start } = card;
  const float32 = await onnxModelOf(graph, {
    name,
    description: `${start.network}, ${graph.outputs.map((o) => exitLabel(o.exit)).join(', ')}: logits for ${start.dataset.name}`,
    metadata: {
      classes: JSON.stringify(start.dataset.classes),
      preprocessing: JSON.stringify(card.preprocessing),
    },
  });
  return { float32, int8: await int8Model(float32, dataset, graph.input.shape) };
}

async function writeOnnxExport(job: ExportJob, int8: boolean): Promise<ExportResult> {
  const shape = job.graph.input.shape;
  const floatSession = await openOnnxSession(encodeOnnxModel(job.onnx.float32), 'the exported ONNX model');
  try {
    const verification = await verify(job.net, job.graph, async (images) =>
      runOnnx(floatSession, (await images.data()) as Float32Array, shape),
    );
    const batch1 = await onnxLatency(floatSession, shape);
    const bytes = encodeOnnxModel(int8 ? job.onnx.int8 : job.onnx.float32);
    let deployment: ExportResult['deployment'] | undefined;
    const files = await writeExportFolder(job.destination, async (dir) => {
      await writeFileFlushed(join(dir, EXPORT_FILES.onnxModel), bytes);
      // Scored from the file just written, not from the bytes in memory: what the user gets.
      const written = await openOnnxSession(join(dir, EXPORT_FILES.onnxModel));
      try {
        const top1 = await rescore(job, onnxRunner(written, shape));
        const scored = int8
          ? { float32: await rescore(job, onnxRunner(floatSession, shape)), int8: top1 }
          : { float32: top1 };
        const extra = int8 ? {} : { onnxLatency: { ...onnxRuntimeInfo(), batch1: [batch1] } };
        deployment = await finishFolder(job, dir, [EXPORT_FILES.onnxModel], verification, { top1: scored }, extra);
      } finally {
        await written.release();
      }
    });
    return { files, directory: job.destination, deployment: deployment! };
  } finally {
    await floatSession.release();
  }
}

/**
 * Exports exit `request.exit` of the run in `request.run` (for 'multi': every exit up to it).
 * Errors: ExportError for a bad request or destination, FileError for an unreadable run.
 */
export async function exportExit(request: ExportRequest): Promise<ExportResult> {
  const threshold = checkRequest(request);
  const { net, start, folder } = await loadTrainedNetwork(request.run);
  try {
    const exit = exitToExport(net, start.network, request.exit);
    const kind = EXPORT_FORMAT_KINDS[request.format];
    const graph = exportGraph(
      net,
      kind.multiExit ? net.exits.slice(0, exit.index + 1).map((e) => e.index) : [exit.index],
    );
    const folderName = exportFolderName(exit, request.format);
    const card: ExportJob['card'] = {
      start,
      summary: await folder.summary(),
      format: request.format,
      exits: graph.outputs.map((o) => ({ exit: o.exit, output: o.value })),
      preprocessing: preprocessingOf(start, graph.input.name),
    };
    const images = await exportImages(start.config);
    const job: ExportJob = {
      net,
      graph,
      name: folderName,
      destination: resolve(request.destination ?? join(folder.dir, 'exports', folderName)),
      images,
      onnx: await onnxModels(graph, folderName, card, images.dataset),
      earlyExitThreshold: threshold,
      card,
    };
    return kind.runtime === 'onnx'
      ? await writeOnnxExport(job, kind.weights === 'int8')
      : await writeLayersExport(job, kind.weights === 'float16' ? 'float16' : 'float32');
  } finally {
    net.dispose();
  }
}

export type ExportedModel =
  { format: 'tfjs'; model: tfl.LayersModel } | { format: 'onnx'; session: ort.InferenceSession };

/**
 * Loads an export folder back (tfjs/multi: a LayersModel; ONNX: an onnxruntime session), every
 * failure an ExportError naming the file. Files that load but differ from their model card's
 * checksums are refused too.
 */
export async function loadExportedModel(dir: string): Promise<ExportedModel> {
  const has = async (file: string) => (await stat(join(dir, file)).catch(() => undefined))?.isFile() === true;
  let loaded: ExportedModel;
  if (await has(EXPORT_FILES.onnxModel))
    loaded = { format: 'onnx', session: await openOnnxSession(join(dir, EXPORT_FILES.onnxModel)) };
  else if (await has(EXPORT_FILES.layersModel))
    loaded = { format: 'tfjs', model: await loadLayersModelFromFolder(dir) };
  else
    throw new ExportError(
      `${dir}: no exported model here (neither ${EXPORT_FILES.layersModel} nor ${EXPORT_FILES.onnxModel})`,
    );
  try {
    await checkAgainstCard(dir);
  } catch (error) {
    if (loaded.format === 'onnx') await loaded.session.release();
    else loaded.model.dispose();
    throw error;
  }
  return loaded;
}

/** Loads the export folder `dir` and predicts each image file (PNG or JPEG) with it. */
export async function predictImages(dir: string, files: readonly string[], topK?: number): Promise<Prediction[]> {
  const card = await readPredictCard(dir);
  const model = await loadExportedModel(dir);
  try {
    return await predictWith(model, card, files, topK);
  } finally {
    if (model.format === 'onnx') await model.session.release();
    else model.model.dispose();
  }
}
