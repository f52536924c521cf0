/** MwResNet-(6n+2): the CIFAR ResNet of He et al. with exits (torchvision-style builder). */
import { DEFAULT_RESNET_BLOCK, resnetBlockCount, type ResNetBlock } from '../../../shared/spec.js';
import { convBn, ResidualBlock, type HeadMaker } from './blocks.js';
import { Conv2d, Sequence, type ParamFactory, type FeatureShape, type StepClock } from './layers.js';
import { MwNetwork } from './network.js';

export interface ResNetOptions {
  depth: number;
  width: number;
  block: ResNetBlock;
  /** 1-based blocks with an auxiliary exit (sorted); the final output is added. */
  exits: number[];
  inputShape: FeatureShape;
  classes: number;
  head: HeadMaker;
  clock: StepClock;
}

export function buildResNet(make: ParamFactory, options: ResNetOptions): MwNetwork {
  const perStage = resnetBlockCount(options.depth) / 3;
  const widths = [16, 32, 64].map((c) => Math.max(1, Math.round(c * options.width)));
  // A pre-activation network's stem is a bare convolution: the first block's BN-ReLU follows it.
  const stem =
    options.block === 'preact'
      ? new Sequence([new Conv2d(make.child('stem').child('conv'), options.inputShape[2], widths[0]!, 3, 1)])
      : convBn(make.child('stem'), options.inputShape[2], widths[0]!, 3, 1, true);
  const blocks: ResidualBlock[] = [];
  let channels = widths[0]!;
  widths.forEach((stageWidth, stage) => {
    for (let i = 0; i < perStage; i++) {
      // Stages 2 and 3 halve the resolution in their first block.
      const stride = stage > 0 && i === 0 ? 2 : 1;
      blocks.push(
        new ResidualBlock(make.child(`blocks.${blocks.length + 1}`), channels, stageWidth, stride, options.block),
      );
      channels = stageWidth;
    }
  });
  const exitBlocks = [...options.exits, blocks.length];
  const heads = exitBlocks.map((b) =>
    options.head(make.child(`exits.${b}`), blocks[b - 1]!.main.outputShape([1, 1, 1])[2]),
  );
  const tags = [
    ...(options.width === 1 ? [] : [`width ${options.width}`]),
    ...(options.block === DEFAULT_RESNET_BLOCK ? [] : [options.block]),
  ];
  const tag = tags.length ? ` (${tags.join(', ')})` : '';
  return new MwNetwork(
    {
      family: 'resnet',
      name: `MwResNet-${options.depth}-${exitBlocks.length}${tag}`,
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
