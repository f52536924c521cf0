/** The shape of a network as the block picker draws it: blocks grouped into resolution stages. */
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
