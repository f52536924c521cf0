/**
 * A realistic run for the renderer tests: ResNet-20 with exits after blocks 3 and 6 on the
 * embedded dataset, two epochs of four steps, the event stream the engine emits for it, and a
 * fake StudioApi that answers from canned handlers and lets a test push events.
 */
import type {
  RunDetail,
  StudioApi,
  StudioEvent,
  StudioMethod,
  StudioRequest,
  StudioResponse,
} from '../../../shared/api.js';
import { RequestSchemas } from '../../../shared/api.js';
import type { DeploymentReport } from '../../../shared/deployment.js';
import type {
  BackendSummary,
  BatchMetrics,
  DatasetSummary,
  EpochMetrics,
  ExitInfo,
  ExitReport,
  RunEvent,
  RunStart,
  RunState,
  RunSummary,
} from '../../../shared/metrics.js';
import { DEFAULT_RUN_CONFIG, parseRunConfig } from '../../../shared/spec.js';

export const RUN_DIR = '/home/user/runs/2026-11-23_09-41-07_resnet20_multiway';
export const STEPS_PER_EPOCH = 4;
export const EPOCHS = 2;
export const TOTAL_STEPS = STEPS_PER_EPOCH * EPOCHS;

export const config = parseRunConfig({ ...DEFAULT_RUN_CONFIG, epochs: EPOCHS, limitTrain: 512, limitTest: 256 });

export const backend: BackendSummary = {
  name: 'wasm',
  label: 'WebAssembly (portable)',
  device: 'CPU, 4 threads',
  gpu: false,
};

export const dataset: DatasetSummary = {
  name: 'embedded',
  source: 'resources/datasets/fashion-mnist-subset',
  shape: { height: 28, width: 28, channels: 1 },
  classes: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
  train: 512,
  test: 256,
  validation: 0,
  normalization: { mean: [0.286], std: [0.353] },
};

export const exits: ExitInfo[] = [
  { index: 0, block: 3, layer: 7, final: false, params: 16_330, macs: 9_720_000 },
  { index: 1, block: 6, layer: 13, final: false, params: 75_290, macs: 23_400_000 },
  { index: 2, block: 9, layer: 19, final: true, params: 272_474, macs: 40_550_000 },
];

export const reports: ExitReport[] = exits.map((exit, k) => ({
  ...exit,
  top1: [0.712, 0.804, 0.836][k]!,
  latencyMs: {
    batch1: { median: [0.41, 0.72, 1.05][k]!, p90: 1.2 },
    batch32: { median: [3.1, 6.4, 9.9][k]!, p90: 11 },
  },
}));

export const start: RunStart = {
  run: RUN_DIR,
  name: '2026-11-23_09-41-07_resnet20_multiway',
  network: 'MwResNet-20-3',
  config,
  dataset,
  backend,
  lossWeights: [0.36, 1, 1],
  exits,
};

/** Losses fall with the step and are lower for deeper exits. */
export function lossAt(step: number, exit: number): number {
  return 2.3 / (1 + 0.1 * step) - 0.1 * exit;
}

export function batch(step: number): BatchMetrics {
  return {
    type: 'batch',
    epoch: Math.ceil(step / STEPS_PER_EPOCH),
    step,
    totalSteps: TOTAL_STEPS,
    losses: exits.map((_, k) => lossAt(step, k)),
    lr: 0.1,
    imagesPerSecond: 400 + step,
    etaSeconds: (TOTAL_STEPS - step) * 0.5,
  };
}

export function epoch(n: number): EpochMetrics {
  return {
    type: 'epoch',
    epoch: n,
    epochs: EPOCHS,
    step: n * STEPS_PER_EPOCH,
    trainLoss: exits.map((_, k) => lossAt(n * STEPS_PER_EPOCH, k)),
    trainAccuracy: exits.map((_, k) => 0.5 + 0.1 * n + 0.02 * k),
    testAccuracy: exits.map((_, k) => 0.45 + 0.1 * n + 0.03 * k),
    seconds: 2,
    imagesPerSecond: 256,
  };
}

export function state(status: RunState['status'], step: number, message?: string): RunState {
  return {
    status,
    pid: 4242,
    updatedAt: '2026-11-23T09:42:00.000Z',
    epoch: Math.floor(step / STEPS_PER_EPOCH),
    step,
    ...(message ? { message } : {}),
  };
}

export const summary: RunSummary = {
  run: RUN_DIR,
  name: start.name,
  network: start.network,
  config,
  dataset,
  backend,
  lossWeights: start.lossWeights,
  exits: reports,
  trainSeconds: 8.4,
  imagesPerSecond: 410,
  finishedAt: '2026-11-23T09:43:00.000Z',
};

const steps = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => batch(from + i));

/** What the engine emits for the whole run, in order. */
export function runStream(): RunEvent[] {
  return [
    { type: 'started', start },
    { type: 'status', state: state('running', 0) },
    ...steps(1, 4),
    { type: 'evaluating', what: 'epoch 1 accuracy' },
    epoch(1),
    ...steps(5, 8),
    { type: 'evaluating', what: 'epoch 2 accuracy' },
    epoch(2),
    { type: 'evaluating', what: 'test accuracy and latency of every exit' },
    { type: 'evaluated', exits: reports },
    { type: 'status', state: state('completed', 8) },
    { type: 'finished', summary },
  ];
}

/** The run folder as openRun reads it: state at `step`, metrics logged up to `loggedTo`. */
export function detail(status: RunState['status'], step: number, loggedTo = step): RunDetail {
  const metrics = runStream().filter(
    (e): e is BatchMetrics | EpochMetrics => (e.type === 'batch' || e.type === 'epoch') && e.step <= loggedTo,
  );
  return {
    dir: RUN_DIR,
    config,
    state: state(status, step),
    exits,
    dataset,
    metrics,
    ...(status === 'completed' ? { summary } : {}),
  };
}

type Handlers = { [M in StudioMethod]?: (request: StudioRequest<M>) => StudioResponse<M> | Promise<StudioResponse<M>> };

export interface FakeStudio {
  api: StudioApi;
  /** Every call made, in order. */
  calls: { method: StudioMethod; request: unknown }[];
  /** Pushes run events as the engine does (batches coalesced into one message). */
  emit(events: RunEvent[]): void;
  push(event: StudioEvent): void;
}

/** A StudioApi answering from `handlers`; a call without a handler fails as the engine would. */
export function fakeStudio(handlers: Handlers = {}): FakeStudio {
  const listeners = new Set<(event: StudioEvent) => void>();
  const calls: FakeStudio['calls'] = [];
  const answer = (method: StudioMethod) => async (request: unknown) => {
    calls.push({ method, request });
    const handler = handlers[method] as ((request: unknown) => unknown) | undefined;
    if (!handler) throw new Error(`${method} is not available`);
    return handler(request);
  };
  const methods = Object.fromEntries(
    (Object.keys(RequestSchemas) as StudioMethod[]).map((m) => [m, answer(m)]),
  ) as Pick<StudioApi, StudioMethod>;
  const push = (event: StudioEvent) => listeners.forEach((listener) => listener(event));
  return {
    api: {
      ...methods,
      onEvent(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    },
    calls,
    emit: (events) => push({ type: 'run', events }),
    push,
  };
}

/** Lets pending promise callbacks run. */
export const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

/** What an export reports about deployment (accuracy re-scored, sizes, latency), as the engine sends it. */
export const EXPORT_DEPLOYMENT: DeploymentReport = {
  accuracy: { split: 'test', images: 2000, float32: 0.8035, int8: 0.8035, engine: 0.8035 },
  warnings: [],
  sizes: { onnxFloat32: 270_400, onnxInt8: 94_500, tfjsFloat32: 294_100, tfjsFloat16: 162_800 },
  onnxruntimeBatch1: {
    float32: { median: 0.46, p90: 0.6 },
    int8: { median: 0.8, p90: 1.1 },
    version: '1.30.0',
    device: 'AMD EPYC (CPU execution provider)',
  },
};
