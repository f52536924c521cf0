/** MwMobileNet: MobileNet v1 (depthwise-separable blocks, width multiplier) with exits. */
import { MOBILENET_V1_BLOCKS } from '../../../shared/mobilenet.js';
import { convBn, SeparableBlock, type HeadMaker } from './blocks.js';
import type { ParamFactory, FeatureShape, StepClock } from './layers.js';
import { MwNetwork } from './network.js';

export interface MobileNetOptions {
  width: number;
  exits: number[];
  inputShape: FeatureShape;
  classes: number;
  head: HeadMaker;
  clock: StepClock;
}

export function buildMobileNet(make: ParamFactory, options: MobileNetOptions): MwNetwork {
  const scale = (c: number) => Math.max(1, Math.round(c * options.width));
  // Small images (CIFAR, Fashion-MNIST) keep full resolution in the stem, as the CIFAR variants do.
  const stemStride = options.inputShape[0] >= 96 ? 2 : 1;
  let channels = scale(32);
  const stem = convBn(make.child('stem'), options.inputShape[2], channels, 3, stemStride, true);
  const blocks = MOBILENET_V1_BLOCKS.map(({ channels: out, stride }, i) => {
    const block = new SeparableBlock(make.child(`blocks.${i + 1}`), channels, scale(out), stride);
    channels = scale(out);
    return block;
  });
  const exitBlocks = [...options.exits, blocks.length];
  const heads = exitBlocks.map((b) =>
    options.head(make.child(`exits.${b}`), scale(MOBILENET_V1_BLOCKS[b - 1]!.channels)),
  );
  return new MwNetwork(
    {
      family: 'mobilenet',
      name: `MwMobileNet-${options.width}-${exitBlocks.length}`,
      inputShape: options.inputShape,
      classes: options.classes,
    },
    stem,
    blocks,
    heads,
    exitBlocks,
    options.clock,
  );
}
