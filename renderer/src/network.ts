/** The shape of a network as the block picker draws it: blocks grouped into resolution stages. */
import type { ExitCandidate } from '../../shared/backbones.js';
import { MOBILENET_BLOCKS, MOBILENET_STAGE_STARTS } from '../../shared/mobilenet.js';
import { blockCount, type ArchSpec } from '../../shared/spec.js';

/** Blocks 1..B grouped by stage: a CIFAR ResNet has three stages of n blocks. */
export function networkStages(arch: ArchSpec): number[][] {
  const blocks = Array.from({ length: blockCount(arch) }, (_, i) => i + 1);
  if (arch.family === 'resnet') {
    const perStage = blocks.length / 3;
    return [0, 1, 2].map((stage) => blocks.slice(stage * perStage, (stage + 1) * perStage));
  }
  const starts = [1, ...MOBILENET_STAGE_STARTS, MOBILENET_BLOCKS + 1];
  return starts.slice(0, -1).map((start, i) => blocks.slice(start - 1, starts[i + 1]! - 1));
}

/** "ResNet-20", "ResNet-32 x2", "MobileNet x0.5": an architecture in a few characters. */
export function architectureLabel(arch: ArchSpec): string {
  if (arch.family === 'imported') return arch.backbone.split(/[\\/]/).at(-1) ?? arch.backbone;
  const width = arch.width === 1 ? '' : ` \u00d7${arch.width}`;
  return arch.family === 'resnet' ? `ResNet-${arch.depth}${width}` : `MobileNet${width || ' \u00d71'}`;
}

/** An imported backbone's candidates grouped into stages of one feature resolution (shape [C, H, W]). */
export function candidateStages(candidates: readonly Pick<ExitCandidate, 'id' | 'shape'>[]): number[][] {
  const stages: number[][] = [];
  candidates.forEach((c, i) => {
    const previous = candidates[i - 1];
    const sameSize = previous && previous.shape[1] === c.shape[1] && previous.shape[2] === c.shape[2];
    if (sameSize) stages.at(-1)!.push(c.id);
    else stages.push([c.id]);
  });
  return stages;
}
