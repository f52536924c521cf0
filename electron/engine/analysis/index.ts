/** Model-selection analyses of a trained network (shared/analysis.ts describes the results). */
export { DEFAULT_THRESHOLDS, earlyExitSweep, exitProbabilities, isConfident, sweepThresholds } from './earlyExit.js';
export type { EarlyExitOptions, ExitLeavingCost, ExitProbabilities } from './earlyExit.js';
export { lesionStudy } from './lesion.js';
export { supervisionShares, type LabelledBatch } from './supervision.js';
