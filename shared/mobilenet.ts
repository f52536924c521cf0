/**
 * MobileNet v1's block layout, written once for the engine's builder, the validation of exits,
 * the renderer's block picker and the CLI's messages: 13 depthwise-separable blocks as output
 * channels (at width 1) and stride (Howard et al. 2017, table 1).
 */
export const MOBILENET_V1_BLOCKS: readonly { readonly channels: number; readonly stride: 1 | 2 }[] = [
  { channels: 64, stride: 1 },
  { channels: 128, stride: 2 },
  { channels: 128, stride: 1 },
  { channels: 256, stride: 2 },
  { channels: 256, stride: 1 },
  { channels: 512, stride: 2 },
  { channels: 512, stride: 1 },
  { channels: 512, stride: 1 },
  { channels: 512, stride: 1 },
  { channels: 512, stride: 1 },
  { channels: 512, stride: 1 },
  { channels: 1024, stride: 2 },
  { channels: 1024, stride: 1 },
];

export const MOBILENET_BLOCKS = MOBILENET_V1_BLOCKS.length;

/** 1-based blocks that halve the resolution, each starting a new stage. */
export const MOBILENET_STAGE_STARTS = MOBILENET_V1_BLOCKS.flatMap((block, i) => (block.stride === 2 ? [i + 1] : []));
