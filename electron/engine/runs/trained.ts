/** A run's trained network, rebuilt from its run.json and loaded from its checkpoint (export, analyses). */
import * as tf from '@tensorflow/tfjs-core';
import type { RunStart } from '../../../shared/metrics.js';
import { buildNetwork, type MwNetwork } from '../models/index.js';
import { loadCheckpoint } from './checkpoint.js';
import { FileError } from './files.js';
import { RunFolder } from './store.js';

/** Copies checkpoint tensors into the network's variables; every tensor must be present with its shape. */
export function assignNetworkTensors(net: MwNetwork, saved: ReadonlyMap<string, tf.Tensor>, source: string): void {
  for (const [name, variable] of net.namedTensors()) {
    const tensor = saved.get(name);
    if (!tensor || tensor.shape.join() !== variable.shape.join()) {
      throw new FileError(
        `${source}: does not match the network: tensor ${name} is ${tensor ? `[${tensor.shape}] instead of [${variable.shape}]` : 'missing'}`,
      );
    }
    variable.assign(tensor);
  }
}

export interface TrainedNetwork {
  net: MwNetwork;
  start: RunStart;
  folder: RunFolder;
}

export async function loadTrainedNetwork(dir: string): Promise<TrainedNetwork> {
  const folder = await RunFolder.open(dir);
  const start = await folder.start();
  if (!start) throw new FileError(`${folder.path('start')}: file not found (the run never started)`);
  if (!(await folder.hasCheckpoint())) throw new FileError(`${dir}: the run has no checkpoint yet (it has not finished a step)`);
  const { height, width, channels } = start.dataset.shape;
  const { arch, seed, head } = start.config;
  const net = buildNetwork(arch, [height, width, channels], start.dataset.classes.length, seed, head);
  const checkpoint = await loadCheckpoint(folder.dir);
  try {
    assignNetworkTensors(net, checkpoint.network, folder.dir);
  } catch (error) {
    net.dispose();
    throw error;
  } finally {
    tf.dispose([...checkpoint.network.values(), ...checkpoint.optimizers.flatMap((o) => [...o.state.values()])]);
  }
  return { net, start, folder };
}
