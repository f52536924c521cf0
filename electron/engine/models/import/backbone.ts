/**
 * An imported ONNX graph as a backbone: its original classifier split off, its exit candidates
 * found, and the segments between candidates made into the engine's blocks.
 *
 * Exit candidates are the cuts of the graph (method.md, "Exits on a pretrained network"): places
 * where exactly one value is live, so that an exit head there sees everything the rest of the
 * network will. A plain chain of layers is a cut after every layer; to offer blocks rather than
 * layers, a cut counts when it closes a module of the exporter's scope names (torch.onnx names
 * nodes "/layer1/layer1.0/conv1/Conv") at the shallowest levels of the hierarchy that hold
 * blocks, or, in a graph without such names, where a branch begins (a residual block's input).
 */
import { ImportError } from '../../errors.js';
import { parameterCount, type ParamFactory } from '../layers.js';
import { GraphBlock } from './block.js';
import { importGraph, type ImportedGraph, type ImportedNode } from './graph.js';

export interface ExitCandidate {
  /** 1-based: the block after which an exit can sit (the network's block numbering). */
  id: number;
  /** The ONNX node whose output the exit reads. */
  node: string;
  /** Feature shape as ONNX sees it: [C, H, W]. */
  shape: number[];
  /** Trainable parameters of the backbone up to and including this block. */
  params: number;
  /** Multiply-accumulates per image of the backbone up to this block. */
  macs: number;
  /** The exporter's module whose output this is ("layer1.0", "features.3"), when the node names tell. */
  module?: string;
}

export interface ImportedBackbone {
  graph: ImportedGraph;
  /** One block per candidate, in order; the last ends at the backbone's final features. */
  blocks: GraphBlock[];
  candidates: ExitCandidate[];
  /** The original classifier (from the final features to the graph's output), or null if the graph has none. */
  classifier: GraphBlock | null;
  /** [H, W, C] of one input image. */
  inputShape: [number, number, number];
}

/** Operators that turn the last feature map into a vector: where a classifier begins. */
const POOLING_OPS = new Set(['GlobalAveragePool', 'ReduceMean', 'Flatten', 'Reshape']);

/**
 * The value the original classifier starts from: the input of the first pooling (or flatten) of
 * a feature map after which nothing else is live (a squeeze-and-excitation's pooling leaves its
 * input live for the product that follows); the output itself for a graph without a classifier.
 */
function finalFeatures(graph: ImportedGraph): string {
  const output = graph.outputs.at(-1)!;
  const network = ancestors(graph.nodes, output);
  const cutValues = new Set(cutsOf(network, graph.input.name).map((i) => network[i]!.output));
  const shapes = new Map(network.map((n) => [n.output, n.shape]));
  const pooling = network.find(
    (n) =>
      POOLING_OPS.has(n.op) &&
      (cutValues.has(n.output) || n.output === output) &&
      shapes.get(n.inputs[0]!)?.length === 3,
  );
  return pooling ? pooling.inputs[0]! : output;
}

/** Nodes `value` depends on, in file order. */
function ancestors(nodes: readonly ImportedNode[], value: string): ImportedNode[] {
  const needed = new Set([value]);
  const kept: ImportedNode[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    if (!needed.has(node.output)) continue;
    kept.push(node);
    node.inputs.forEach((v) => needed.add(v));
  }
  return kept.reverse();
}

/** Module path of a node from a torch.onnx scope name ("/layer1/layer1.0/conv1/Conv" -> layer1, layer1.0, conv1). */
function scopeOf(name: string): string[] | null {
  if (!name.startsWith('/')) return null;
  return name.split('/').filter(Boolean).slice(0, -1);
}

/** "features" + "features.3" + "block" -> "features.3.block": PyTorch's qualified module name. */
function qualifiedName(path: readonly string[]): string {
  let qualified = '';
  let previous = '';
  for (const part of path) {
    qualified =
      previous && part.startsWith(`${previous}.`)
        ? qualified + part.slice(previous.length)
        : qualified
          ? `${qualified}.${part}`
          : part;
    previous = part;
  }
  return qualified;
}

interface Cut {
  /** Index in the trunk of the node whose output is the only live value. */
  at: number;
  module?: string;
}

/** Positions after which exactly one value is live (produced at or before, read after). */
function cutsOf(trunk: readonly ImportedNode[], input: string): number[] {
  const lastUse = new Map<string, number>();
  trunk.forEach((node, i) => node.inputs.forEach((v) => lastUse.set(v, i)));
  const spans = [[input, -1] as const, ...trunk.map((n, i) => [n.output, i] as const)].map(([v, from]) => [
    from,
    lastUse.get(v) ?? from,
  ]);
  const cuts: number[] = [];
  for (let i = 0; i < trunk.length - 1; i++)
    if (spans.filter(([from, last]) => from! <= i && last! > i).length === 1) cuts.push(i);
  return cuts;
}

/** The cuts that close a block: by scope names when the exporter wrote them, else where a branch begins. */
function blockCuts(trunk: readonly ImportedNode[], all: readonly ImportedNode[], cuts: readonly number[]): Cut[] {
  const scopes = trunk.map((n) => scopeOf(n.name));
  const next = (i: number) => all[all.indexOf(trunk[i]!) + 1];
  if (scopes.every((s) => s !== null)) {
    const hasSubscopes = (path: readonly string[]) =>
      scopes.some((s) => s!.length > path.length && path.every((p, k) => s![k] === p));
    const ended = cuts.map((at) => {
      const own = scopes[at]!;
      const following = scopeOf(next(at)?.name ?? '') ?? [];
      let depth = 0;
      while (depth < own.length && own[depth] === following[depth]) depth++;
      const module = own.slice(0, depth + 1);
      return { at, depth: depth + 1, module: depth < own.length && hasSubscopes(module) ? module : null };
    });
    const modular = ended.filter((e) => e.module);
    const shallowest = Math.min(...modular.map((e) => e.depth));
    return modular
      .filter((e) => e.depth <= shallowest + 1)
      .map((e) => ({ at: e.at, module: qualifiedName(e.module!) }));
  }
  const readers = new Map<string, number>();
  for (const node of trunk) for (const v of new Set(node.inputs)) readers.set(v, (readers.get(v) ?? 0) + 1);
  return cuts.filter((at) => (readers.get(trunk[at]!.output) ?? 0) >= 2).map((at) => ({ at }));
}

/** Reads the file's graph and splits it into blocks at its exit candidates. */
export function importBackbone(bytes: Uint8Array, make: ParamFactory): ImportedBackbone {
  const graph = importGraph(bytes, { make: make.child('backbone') });
  const features = finalFeatures(graph);
  const trunk = ancestors(graph.nodes, features);
  const featureNode = trunk.at(-1);
  if (!featureNode || featureNode.shape.length !== 3)
    throw new ImportError(
      `the ONNX graph's features before its classifier ("${features}") are not a feature map; the importer needs a convolutional backbone`,
    );
  const chosen = blockCuts(trunk, graph.nodes, cutsOf(trunk, graph.input.name));
  const finalModule = blockCuts(trunk, graph.nodes, [trunk.length - 1]).at(0)?.module;
  const ends: Cut[] = [...chosen, { at: trunk.length - 1, ...(finalModule ? { module: finalModule } : {}) }];
  // A block without parameters (a lone final ReLU) is merged into the one before it.
  const merged = ends.filter((cut, k) => {
    const nextEnd = ends[k + 1];
    if (!nextEnd) return true;
    return trunk.slice(cut.at + 1, nextEnd.at + 1).some((n) => n.operation.params.length > 0);
  });
  const blocks: GraphBlock[] = [];
  const candidates: ExitCandidate[] = [];
  let start = 0;
  let input = graph.input.name;
  let params = 0;
  let macs = 0;
  merged.forEach((cut, k) => {
    const node = trunk[cut.at]!;
    const block = new GraphBlock(trunk.slice(start, cut.at + 1), input, node.output, node.shape);
    blocks.push(block);
    params += parameterCount(block);
    macs += block.macs();
    const [h, w, c] = node.shape as [number, number, number];
    candidates.push({
      id: k + 1,
      node: node.name,
      shape: [c, h, w],
      params,
      macs,
      ...(cut.module ? { module: cut.module } : {}),
    });
    start = cut.at + 1;
    input = node.output;
  });
  const output = graph.outputs.at(-1)!;
  const classifierNodes = output === features ? [] : ancestors(graph.nodes, output).filter((n) => !trunk.includes(n));
  const last = classifierNodes.at(-1);
  return {
    graph,
    blocks,
    candidates,
    classifier: last ? new GraphBlock(classifierNodes, features, output, last.shape) : null,
    inputShape: graph.input.shape,
  };
}

/**
 * About four auxiliary exits spread evenly by compute: the candidates nearest 1/5, 2/5, 3/5 and
 * 4/5 of the backbone's multiply-accumulates (the final output is always an exit besides).
 */
export function defaultImportedExits(candidates: readonly ExitCandidate[]): number[] {
  const auxiliary = candidates.slice(0, -1);
  const total = candidates.at(-1)?.macs ?? 0;
  const picked = new Set<number>();
  for (const fraction of [0.2, 0.4, 0.6, 0.8]) {
    let best: ExitCandidate | undefined;
    for (const c of auxiliary)
      if (!best || Math.abs(c.macs - fraction * total) < Math.abs(best.macs - fraction * total)) best = c;
    if (best) picked.add(best.id);
  }
  return [...picked].sort((a, b) => a - b);
}
