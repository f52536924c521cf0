/** One factory for every family: the run spec's architecture -> an Mw-network. */
import { resnetBlockOf, resolveExits, type ArchSpec } from '../../../shared/spec.js';
import { Random } from '../random.js';
import { ParamFactory, type FeatureShape } from './layers.js';
import { buildMobileNet } from './mobilenet.js';
import type { MwNetwork } from './network.js';
import { buildResNet } from './resnet.js';

export function buildNetwork(arch: ArchSpec, inputShape: FeatureShape, classes: number, seed: number): MwNetwork {
  const make = new ParamFactory(new Random(seed));
  const exits = resolveExits(arch);
  return arch.family === 'resnet'
    ? buildResNet(make, {
        depth: arch.depth,
        width: arch.width,
        block: resnetBlockOf(arch),
        exits,
        inputShape,
        classes,
      })
    : buildMobileNet(make, { width: arch.width, exits, inputShape, classes });
}
