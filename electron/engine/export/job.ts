/**
 * An export in progress (what it knows of the run and its model), and what it writes beside the
 * model: the model card, the early-exit file of a multi-exit export, and the demo page.
 */
import { join } from 'node:path';
import type { ExportResult } from '../../../shared/api.js';
import { EXPORT_FORMAT_KINDS } from '../../../shared/deployment.js';
import type { MwNetwork } from '../models/index.js';
import type { ExportGraph } from '../models/inferenceGraph.js';
import type { OnnxModel } from '../onnx/proto.js';
import { fileChecksums } from './checksums.js';
import { deploymentReport, type ScoredExport } from './deployment.js';
import { writeDemo } from './demo.js';
import { EXPORT_FILES, writeFileFlushed } from './folder.js';
import { heldOutTop1, type ExportedRunner, type ExportImages } from './heldOut.js';
import { buildModelCard, type CardInput } from './buildModelCard.js';
import type { EarlyExitFile, ModelCard } from './modelCard.js';
import { modelCardMarkdown } from './modelCardMarkdown.js';

async function writeCard(dir: string, card: ModelCard): Promise<void> {
  await writeFileFlushed(join(dir, EXPORT_FILES.cardJson), `${JSON.stringify(card, null, 2)}\n`);
  await writeFileFlushed(join(dir, EXPORT_FILES.cardMarkdown), modelCardMarkdown(card));
}

/** early-exit.json: how a runtime picks its answer from the multi-output model. */
function earlyExitMetadata(card: ModelCard, threshold: number): EarlyExitFile {
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

export interface ExportJob {
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
export function rescore(job: ExportJob, run: ExportedRunner): Promise<number[]> {
  return heldOutTop1(job.images.dataset, job.images.heldOut, run);
}

/** Writes the card (and the early-exit file) of a model already in `dir`, scored as `scored` says. */
export async function finishFolder(
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
