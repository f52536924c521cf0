/**
 * Exporting a trained run's exit as a standalone model: the backbone up to that exit and its
 * head, as a TensorFlow.js layers model, an ONNX model, or ('multi') a tfjs model with every exit
 * up to it as outputs plus early-exit metadata. Each export is checked against the trained
 * network before anything is written, carries a model card, and lands in its folder whole or
 * not at all.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type * as ort from 'onnxruntime-node';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { EXPORT_FORMATS, type ExportFormat, type ExportResult } from '../../../shared/api.js';
import { exitLabel } from '../../../shared/format.js';
import type { MwNetwork } from '../models/index.js';
import type { ExitPoint } from '../models/network.js';
import { loadTrainedNetwork } from '../runs/trained.js';
import { ExportError } from '../errors.js';
import { EXPORT_FILES, writeExportFolder, writeFileFlushed } from './folder.js';
import { exportGraph, type ExportGraph } from '../models/inferenceGraph.js';
import { buildModelCard, modelCardMarkdown, preprocessingOf, type CardInput, type ModelCard } from './modelCard.js';
import { onnxModelBytes } from '../models/onnxModel.js';
import { onnxLatency, onnxRuntimeInfo, openOnnxSession, runOnnx } from '../onnx/runtime.js';
import { buildLayersModel } from './tfjsModel.js';
import { layersFolderHandler, loadLayersModelFromFolder } from './tfjsFiles.js';

export { ExportError } from '../errors.js';
export { EXPORT_FILES } from './folder.js';
export { layersFolderHandler } from './tfjsFiles.js';
export type { ModelCard } from './modelCard.js';

export interface ExportRequest {
  /** Run folder. */
  run: string;
  /** Exit index, shallowest first; the final output is the last. */
  exit: number;
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
  if (request.threshold === undefined) return request.format === 'multi' ? DEFAULT_EARLY_EXIT_THRESHOLD : undefined;
  if (request.format !== 'multi') throw new ExportError(`threshold applies to the multi format only, not to ${request.format}`);
  if (!(request.threshold > 0 && request.threshold <= 1)) throw new ExportError(`threshold must be a probability in (0, 1], not ${request.threshold}`);
  return request.threshold;
}

function exitToExport(net: MwNetwork, network: string, exit: number): ExitPoint {
  const point = Number.isInteger(exit) ? net.exits[exit] : undefined;
  if (!point) {
    const exits = net.exits.map((e) => `${e.index} = ${exitLabel(e)}`).join(', ');
    throw new ExportError(`exit ${exit} is outside the network: ${network} has exits ${exits}`);
  }
  return point;
}

/**
 * Runs the trained network and the exported model (`run`: logits per exported exit) on the same
 * random images and returns their largest difference; fails when it is more than rounding.
 */
async function verify(net: MwNetwork, graph: ExportGraph, run: (images: tf.Tensor4D) => Promise<Float32Array[]>): Promise<ModelCard['verification']> {
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
      throw new ExportError(`the exported model does not reproduce the trained network (logits differ by up to ${maxAbsDiff}); nothing was written`);
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
    model: EXPORT_FILES.layersModel,
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
  card: Omit<CardInput, 'files' | 'verification'>;
}

async function writeLayersExport(job: ExportJob, earlyExitThreshold: number | undefined): Promise<string[]> {
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
    const earlyExit = earlyExitThreshold === undefined ? undefined : { file: EXPORT_FILES.earlyExit, threshold: earlyExitThreshold };
    const files = [EXPORT_FILES.layersModel, EXPORT_FILES.layersWeights, ...(earlyExit ? [earlyExit.file] : [])];
    const card = buildModelCard({ ...job.card, files, verification, ...(earlyExit ? { earlyExit } : {}) });
    return await writeExportFolder(job.destination, async (dir) => {
      await model.save(layersFolderHandler(dir));
      if (earlyExit) await writeFileFlushed(join(dir, earlyExit.file), `${JSON.stringify(earlyExitMetadata(card, earlyExit.threshold), null, 2)}\n`);
      await writeCard(dir, card);
    });
  } finally {
    model.dispose();
  }
}

async function writeOnnxExport(job: ExportJob): Promise<string[]> {
  const { start } = job.card;
  const bytes = await onnxModelBytes(job.graph, {
    name: job.name,
    description: `${start.network}, ${job.graph.outputs.map((o) => exitLabel(o.exit)).join(', ')}: logits for ${start.dataset.name}`,
    metadata: {
      classes: JSON.stringify(start.dataset.classes),
      preprocessing: JSON.stringify(job.card.preprocessing),
    },
  });
  const session = await openOnnxSession(bytes, 'the exported ONNX model');
  try {
    const verification = await verify(job.net, job.graph, async (images) => runOnnx(session, (await images.data()) as Float32Array, job.graph.input.shape));
    const batch1 = await onnxLatency(session, job.graph.input.shape);
    const card = buildModelCard({ ...job.card, files: [EXPORT_FILES.onnxModel], verification, onnxLatency: { ...onnxRuntimeInfo(), batch1: [batch1] } });
    return await writeExportFolder(job.destination, async (dir) => {
      await writeFileFlushed(join(dir, EXPORT_FILES.onnxModel), bytes);
      await writeCard(dir, card);
    });
  } finally {
    await session.release();
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
    const graph = exportGraph(net, request.format === 'multi' ? net.exits.slice(0, exit.index + 1).map((e) => e.index) : [exit.index]);
    const folderName = exportFolderName(exit, request.format);
    const job: ExportJob = {
      net,
      graph,
      name: folderName,
      destination: resolve(request.destination ?? join(folder.dir, 'exports', folderName)),
      card: {
        start,
        summary: await folder.summary(),
        format: request.format,
        exits: graph.outputs.map((o) => ({ exit: o.exit, output: o.value })),
        preprocessing: preprocessingOf(start, graph.input.name),
      },
    };
    const files = request.format === 'onnx' ? await writeOnnxExport(job) : await writeLayersExport(job, threshold);
    return { files, directory: job.destination };
  } finally {
    net.dispose();
  }
}

export type ExportedModel = { format: 'tfjs'; model: tfl.LayersModel } | { format: 'onnx'; session: ort.InferenceSession };

/** Loads an export folder back (tfjs/multi: a LayersModel; onnx: an onnxruntime session), every failure an ExportError naming the file. */
export async function loadExportedModel(dir: string): Promise<ExportedModel> {
  const has = async (file: string) => (await stat(join(dir, file)).catch(() => undefined))?.isFile() === true;
  if (await has(EXPORT_FILES.onnxModel)) return { format: 'onnx', session: await openOnnxSession(join(dir, EXPORT_FILES.onnxModel)) };
  if (await has(EXPORT_FILES.layersModel)) return { format: 'tfjs', model: await loadLayersModelFromFolder(dir) };
  throw new ExportError(`${dir}: no exported model here (neither ${EXPORT_FILES.layersModel} nor ${EXPORT_FILES.onnxModel})`);
}
