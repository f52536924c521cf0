/**
 * The model card written beside every export (model-card.json for programs, MODEL_CARD.md for
 * people): what the model is, how it was trained, how well and how fast it runs, and exactly
 * how to prepare its input. buildModelCard.ts fills it in, modelCardMarkdown.ts writes it for people.
 */
import type { Latency } from '../../../shared/metrics.js';
import type { Method } from '../../../shared/spec.js';
import type { ExportFormat } from '../../../shared/api.js';
import type { DeploymentReport } from '../../../shared/deployment.js';

export interface Preprocessing {
  /** Name of the model's input. */
  input: string;
  layout: 'NHWC';
  dtype: 'float32';
  /** [batch, height, width, channels]; the batch size is free. */
  shape: [string, number, number, number];
  channelOrder: string;
  /** Per channel, of pixels scaled to [0, 1], measured on the training images. */
  mean: number[];
  std: number[];
  formula: string;
}

export interface ExitCard {
  index: number;
  block: number;
  layer: number;
  final: boolean;
  label: string;
  /** Name of the model output holding this exit's logits. */
  output: string;
  params: number;
  macs: number;
  /** The exit's weight in the training loss (lambda). */
  lossWeight: number;
  /** On the run's test set; absent until the run finished. */
  top1?: number;
  top5?: number;
  /** Top-1 of the exported file itself on the held-out images (deployment.accuracy says which), by weight precision. */
  exportedTop1: { float32: number; float16?: number; int8?: number };
  latencyMs: {
    /**
     * Measured by the run on its backend (the sub-model alone), when it finished; `runtime` says
     * what ran it where not the backend's own kernels (wasm-ort: onnxruntime, the whole sub-model).
     */
    run?: { backend: string; runtime?: string; device: string; batch1: Latency; batch32: Latency };
    /** Measured at export with onnxruntime-node on the CPU. */
    onnxruntime?: { version: string; device: string; batch1: Latency };
  };
}

export interface ModelCard {
  title: string;
  createdAt: string;
  format: ExportFormat;
  /** The model's files in the folder (besides the two card files). */
  files: string[];
  /** Hex SHA-256 of each model file (early-exit metadata aside): loading refuses a file that differs. */
  sha256: Record<string, string>;
  network: string;
  run: {
    folder: string;
    method: Method;
    methodLabel: string;
    /** Loss-weight exponent the exit weights derive from. */
    gamma: number;
    seed: number;
    epochs: number;
    batchSize: number;
    learningRate: number;
    finishedAt?: string;
  };
  dataset: { name: string; source: string; classes: string[]; trainImages: number; testImages: number };
  /** Exported exits, shallowest first (one unless the format is 'multi'). */
  exits: ExitCard[];
  outputs: string;
  preprocessing: Preprocessing;
  earlyExit?: { file: string; threshold: number };
  /** The exported model against the trained network on random inputs, before writing. */
  verification: { images: number; maxAbsDiff: number };
  /** Re-scored accuracy, sizes of every format, onnxruntime float32 / int8 latency. */
  deployment: DeploymentReport;
}
