/** One factory for every family: the run spec's architecture -> an Mw-network. */
import { resnetBlockOf, resolveExits, type ArchSpec, type HeadKind } from '../../../shared/spec.js';
import { Random } from '../random.js';
import { headMaker } from './blocks.js';
import { ParamFactory, StepClock, type FeatureShape } from './layers.js';
import { buildMobileNet } from './mobilenet.js';
import type { MwNetwork } from './network.js';
import { buildResNet } from './resnet.js';
import { backboneName, buildImportedNetwork, readBackbone } from './import/network.js';

/** An imported backbone brings its own input shape; `inputShape` is that of the other families. */
export function buildNetwork(
  arch: ArchSpec,
  inputShape: FeatureShape,
  classes: number,
  seed: number,
  headKind: HeadKind = 'bn-relu',
): MwNetwork {
  const clock = new StepClock();
  const head = headMaker(headKind, classes, clock);
  if (arch.family === 'imported')
    return buildImportedNetwork(readBackbone(arch), {
      ...(arch.exits ? { exits: arch.exits } : {}),
      classes,
      seed,
      head,
      clock,
      name: `MwImported-${backboneName(arch.backbone)}`,
    });
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
        head,
        clock,
      })
    : buildMobileNet(make, { width: arch.width, exits, inputShape, classes, head, clock });
}
