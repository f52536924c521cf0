/** The Mw-networks: built per family (build.ts) from small layers with explicit backward passes. */
export { buildNetwork } from './build.js';
export type { MwNetwork, ExitCost, ExitPoint, TracedNetwork } from './network.js';
export { GradSink, type Param } from './layers.js';
