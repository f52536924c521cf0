/**
 * Evaluating a network: per-exit accuracy (accuracy.ts), latency (latency.ts) and both as the exits
 * table (exitReports.ts); a finished run's evaluation (runEvaluation.ts).
 */
export { EVALUATION_BATCH, exitAccuracy, reportsTop5, topKHits, type ExitAccuracy } from './accuracy.js';
export { exitLatency, measureLatency, SUB_MODEL_RUNTIME } from './latency.js';
export { exitReports } from './exitReports.js';
export type { LatencyOptions } from '../timing.js';
