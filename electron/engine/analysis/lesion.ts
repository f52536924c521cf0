/**
 * Lesion study: how much each exit relies on each residual block, measured by replacing the
 * block with its shortcut (MwNetwork.predict's skipBlock) and re-evaluating every exit.
 */
import type { LesionStudy } from '../../../shared/analysis.js';
import type { Dataset, ImageSet } from '../data/index.js';
import { exitAccuracy } from '../evaluate/index.js';
import type { MwNetwork } from '../models/index.js';

export async function lesionStudy(net: MwNetwork, dataset: Dataset, set: ImageSet): Promise<LesionStudy> {
  const baseline = (await exitAccuracy(net, dataset, set)).top1;
  const blocks: LesionStudy['blocks'] = [];
  for (const [i, block] of net.blocks.entries()) {
    const number = i + 1;
    if (!block.skippable) {
      blocks.push({ block: number, accuracy: null });
      continue;
    }
    const lesioned = (await exitAccuracy(net, dataset, set, { skipBlock: number })).top1;
    // An exit below the block never runs it: its accuracy is the baseline by definition.
    blocks.push({
      block: number,
      accuracy: net.exits.map((e) => (e.block < number ? baseline[e.index]! : lesioned[e.index]!)),
    });
  }
  return { samples: set.count, exitBlocks: net.exits.map((e) => e.block), baseline, blocks };
}
