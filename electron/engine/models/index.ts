/** The Mw-networks: built per family (build.ts) from small layers with explicit backward passes. */
export { buildNetwork } from './build.js';
export type { MwNetwork, ExitCost, ExitPoint, TracedNetwork, GradientFlow, PartBackward } from './network.js';
export { backwardThroughExits } from './network.js';
export { GradSink, type Param } from './layers.js';
