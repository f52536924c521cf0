/**
 * The importer through the CLI, as a user runs it (`node bin/mw-studio.js`, real processes and
 * files): a backbone with an operator the importer does not read is refused in one line naming
 * the operator and the node, and no run folder is left; `inspect --backbone --json` lists the
 * exit candidates of a torchvision export.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeOnnxModel, floatTensor, intsAttribute, tensorInfo } from '../../electron/engine/onnx/proto.js';
import { exportTorchvision } from './import/torchvision.js';

const dir = mkdtempSync(join(tmpdir(), 'mw-import-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]) {
  return spawnSync(process.execPath, ['bin/mw-studio.js', ...args], { encoding: 'utf8', env: { ...process.env } });
}

/** A convolution followed by an LSTM: a graph the importer must refuse. */
function unsupportedModel(): Uint8Array {
  return encodeOnnxModel({
    ir_version: 7,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'test',
    graph: {
      name: 'conv-lstm',
      node: [
        {
          name: 'conv_1',
          op_type: 'Conv',
          input: ['image', 'w'],
          output: ['features'],
          attribute: [intsAttribute('kernel_shape', [3, 3]), intsAttribute('pads', [1, 1, 1, 1])],
        },
        { name: 'lstm_1', op_type: 'LSTM', input: ['features'], output: ['sequence'] },
      ],
      initializer: [floatTensor('w', [4, 3, 3, 3], new Float32Array(108).fill(0.1))],
      input: [tensorInfo('image', ['N', 3, 8, 8])],
      output: [tensorInfo('sequence', ['N', 4])],
    },
  });
}

describe('mw-studio with --backbone', () => {
  it('refuses an unsupported operator in one line, naming it and its node, and writes no run folder', () => {
    const file = join(dir, 'lstm.onnx');
    writeFileSync(file, unsupportedModel());
    const runs = join(dir, 'runs');
    const run = cli(['train', '--backbone', file, '--epochs', '1', '--out', runs]);
    expect(run.status).toBe(1);
    // stderr holds the backend line, then the refusal: one line, no stack.
    const lines = run.stderr.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('mw-studio'))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/^mw-studio train: Unsupported ONNX operator LSTM at node "lstm_1"/);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(existsSync(runs) ? readdirSync(runs) : []).toEqual([]);
  });

  it('refuses --arch beside --backbone', () => {
    const run = cli(['train', '--backbone', join(dir, 'x.onnx'), '--arch', 'resnet']);
    expect(run.status).toBe(2);
    expect(run.stderr.trim()).toMatch(/^mw-studio train: --backbone brings its own network; leave out --arch \(/);
  });

  it('inspect --json lists the candidates of a torchvision resnet18', () => {
    const exported = exportTorchvision(
      [{ name: 'resnet18', opset: 11, fold: false, size: 64, batch: 1 }],
      'inspect --backbone on a torchvision export',
    );
    if (!exported) return;
    try {
      const run = cli(['inspect', '--backbone', exported.models[0]!.onnx, '--json']);
      expect(run.status, run.stderr).toBe(0);
      const { candidates } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {
        candidates: { id: number; node: string; shape: number[]; params: number; macs: number }[];
      };
      // torchvision's resnet18: two basic blocks in each of four stages, each block's output a candidate.
      expect(candidates.map((c) => c.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(candidates.map((c) => c.shape)).toEqual([
        [64, 16, 16],
        [64, 16, 16],
        [128, 8, 8],
        [128, 8, 8],
        [256, 4, 4],
        [256, 4, 4],
        [512, 2, 2],
        [512, 2, 2],
      ]);
      expect(candidates[0]!.node).toBe('/layer1/layer1.0/relu_1/Relu');
      // torchvision's resnet18 has 11,689,512 parameters, its classifier 512 * 1000 + 1000 (batch norm kept as
      // nodes: folded, each batch norm's scale and shift would become one bias).
      expect(candidates.at(-1)!.params).toBe(11_689_512 - 513_000);
    } finally {
      exported.dispose();
    }
  });
});
