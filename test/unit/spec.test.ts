/** The run specification rejects every bad setting with a reason naming the field, before any work starts. */
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_RUN_CONFIG, parseRunConfig } from '../../shared/spec.js';

const withArch = (arch: object) => ({ ...DEFAULT_RUN_CONFIG, arch: { ...DEFAULT_RUN_CONFIG.arch, ...arch } });

describe('run configuration validation', () => {
  it('accepts the defaults', () => {
    expect(parseRunConfig(DEFAULT_RUN_CONFIG)).toEqual(DEFAULT_RUN_CONFIG);
  });

  const cases: [string, unknown, RegExp][] = [
    ['depth not 6n+2', withArch({ depth: 21 }), /arch\.depth: ResNet depth must be 6n\+2/],
    ['depth 2 (n = 0)', withArch({ depth: 2 }), /arch\.depth/],
    [
      'exit outside the network',
      withArch({ exits: [3, 9] }),
      /arch\.exits: block 9 is outside the network; .*blocks 1\.\.8/,
    ],
    ['duplicated exit', withArch({ exits: [3, 3] }), /arch\.exits: exits must not repeat a block/],
    ['exit 0', withArch({ exits: [0] }), /arch\.exits\.0: an exit block must be at least 1/],
    ['batch 0', { ...DEFAULT_RUN_CONFIG, batchSize: 0 }, /batchSize: batch size must be at least 1/],
    [
      'negative learning rate',
      { ...DEFAULT_RUN_CONFIG, lr: -0.1 },
      /lr: learning rate must be a finite number above 0/,
    ],
    ['NaN learning rate', { ...DEFAULT_RUN_CONFIG, lr: Number.NaN }, /lr: learning rate/],
    ['gamma out of range', { ...DEFAULT_RUN_CONFIG, gamma: 11 }, /gamma: gamma must be between 0 and 10/],
    ['negative gamma', { ...DEFAULT_RUN_CONFIG, gamma: -1 }, /gamma: gamma must be between 0 and 10/],
    ['epochs 0', { ...DEFAULT_RUN_CONFIG, epochs: 0 }, /epochs: epochs must be at least 1/],
    ['fractional epochs', { ...DEFAULT_RUN_CONFIG, epochs: 1.5 }, /epochs: epochs must be a whole number/],
    [
      'unknown method',
      { ...DEFAULT_RUN_CONFIG, method: 'magic' },
      /method: method must be one of plain, joint, pairwise, multiway/,
    ],
    ['unknown field', { ...DEFAULT_RUN_CONFIG, shell: 'rm -rf /' }, /config: .*shell/i],
    [
      'MobileNet exit past block 12',
      { ...DEFAULT_RUN_CONFIG, arch: { family: 'mobilenet', width: 1, exits: [13] } },
      /arch\.exits: block 13 is outside/,
    ],
    ['not an object', 'resnet', /config/],
    [
      'imported backbone without a file',
      { ...DEFAULT_RUN_CONFIG, arch: { family: 'imported', backbone: '' } },
      /arch\.backbone: backbone must name an \.onnx file/,
    ],
    [
      'imported backbone with a malformed checksum',
      { ...DEFAULT_RUN_CONFIG, arch: { family: 'imported', backbone: 'r.onnx', sha256: 'abc' } },
      /arch\.sha256: sha256 must be 64 lowercase hex digits/,
    ],
    [
      'imported backbone with a ResNet setting',
      { ...DEFAULT_RUN_CONFIG, arch: { family: 'imported', backbone: 'r.onnx', depth: 20 } },
      /arch: .*depth/,
    ],
    [
      'exit past the recorded candidates of an imported backbone',
      { ...DEFAULT_RUN_CONFIG, arch: { family: 'imported', backbone: 'r.onnx', blocks: 8, exits: [8] } },
      /arch\.exits: block 8 is outside the network; .*blocks 1\.\.7/,
    ],
    [
      'milestones out of order',
      { ...DEFAULT_RUN_CONFIG, milestones: [0.6, 0.4] },
      /milestones: milestones must increase/,
    ],
    [
      'milestone at 1',
      { ...DEFAULT_RUN_CONFIG, milestones: [0.5, 1] },
      /milestones\.1: milestones lie between 0 and 1/,
    ],
  ];
  it('accepts an imported backbone before its file is read (the engine checks the exits against its candidates)', () => {
    const arch = { family: 'imported', backbone: 'resnet18.onnx', exits: [3, 40] } as const;
    expect(parseRunConfig({ ...DEFAULT_RUN_CONFIG, arch }).arch).toEqual(arch);
  });

  for (const [what, input, reason] of cases) {
    it(`rejects ${what}`, () => {
      expect(() => parseRunConfig(input)).toThrow(ConfigError);
      expect(() => parseRunConfig(input)).toThrow(reason);
    });
  }
});
