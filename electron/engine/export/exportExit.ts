/**
 * Exporting a trained run's exit as a standalone model: the backbone up to that exit and its
 * head, as a TensorFlow.js layers model or an ONNX model (float32, or int8 in QDQ form), alone or
 * ('multi', 'multi-onnx-int8') with every exit up to it as outputs plus early-exit metadata.
 * Each export is checked against the trained network before anything is written, re-scored on
 * the run's held-out images by loading the written file itself, carries a model card with its
 * sizes and latencies, and lands in its folder whole or not at all.
 */
import { join, resolve } from 'node:path';
import { EXPORT_FORMATS, type ExportFormat, type ExportResult } from '../../../shared/api.js';
import { describeExitRefs, findExit, type ExitRef } from '../../../shared/exitRef.js';
import { EXPORT_FORMAT_KINDS } from '../../../shared/deployment.js';
import { exitLabel } from '../../../shared/format.js';
import type { MwNetwork } from '../models/index.js';
import type { ExitPoint } from '../models/network.js';
import { exportGraph, type ExportGraph } from '../models/inferenceGraph.js';
import { onnxModelOf } from '../models/onnxSubModel.js';
import { loadTrainedNetwork } from '../runs/trained.js';
import { ExportError } from '../errors.js';
import { int8Model } from './deployment.js';
import { exportImages, type ExportImages } from './heldOut.js';
import type { ExportJob } from './job.js';
import { preprocessingOf } from './buildModelCard.js';
import { writeLayersExport, writeOnnxExport } from './writeModel.js';

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
