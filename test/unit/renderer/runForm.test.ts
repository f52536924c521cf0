import { createPinia, setActivePinia } from 'pinia';
import { describe, expect, it } from 'vitest';
import { nextTick } from 'vue';
import { DEFAULT_RUN_CONFIG } from '../../../shared/spec.js';
import { provideStudioApi } from '../../../renderer/src/api/current.js';
import { architectureLabel, networkStages } from '../../../renderer/src/network.js';
import { fieldOfPath, formFromConfig, validateRunForm, type RunForm } from '../../../renderer/src/runForm.js';
import { useRunFormStore } from '../../../renderer/src/stores/runForm.js';
import { useStudioStore } from '../../../renderer/src/stores/studio.js';
import { RUN_DIR, fakeStudio } from './fixtures.js';

const defaults = () => formFromConfig(DEFAULT_RUN_CONFIG);
const validate = (changes: Partial<RunForm>) => validateRunForm({ ...defaults(), ...changes });

describe('new-run form validation', () => {
  it('turns the default form back into the default config', () => {
    expect(validate({})).toEqual({ config: DEFAULT_RUN_CONFIG, errors: {} });
  });

  it("puts each problem next to its field, in the engine's words", () => {
    const { config, errors } = validate({ depth: 21, epochs: '', lr: 0, batchSize: 1.5, gamma: 'much' });
    expect(config).toBeUndefined();
    expect(errors).toEqual({
      depth: 'ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...)',
      epochs: 'epochs must be a number',
      lr: 'learning rate must be a finite number above 0',
      batchSize: 'batch size must be a whole number',
      gamma: 'gamma must be a number',
    });
  });

  it('turns the recipe choices into the settings a user would type on the command line', () => {
    const elastic = validate({ freeze: 'epochs', freezeEpochs: 2, head: 'elastic', gamma: 0 }).config!;
    expect(elastic).toMatchObject({ freezeEpochs: 2, freezeBackbone: false, head: 'elastic', gamma: 0 });
    const icOnly = validate({ freeze: 'all', freezeEpochs: 2, backboneLrScale: '0.5' }).config!;
    expect(icOnly).toMatchObject({ freezeEpochs: 0, freezeBackbone: true, backboneLrScale: 0.5 });
    expect(validate({ backboneLrScale: '' }).config).not.toHaveProperty('backboneLrScale');
    expect(validate({ freeze: 'epochs', freezeEpochs: 3 }).errors).toEqual({
      freezeEpochs:
        '3 of 3 epochs leaves none to train the backbone; use fewer, or freeze-backbone to train the heads only',
    });
    expect(validate({ freeze: 'all', gradientEquilibrium: true }).errors).toHaveProperty('gradientEquilibrium');
    expect(formFromConfig({ ...DEFAULT_RUN_CONFIG, freezeBackbone: true }).freeze).toBe('all');
    expect(formFromConfig({ ...DEFAULT_RUN_CONFIG, freezeEpochs: 2 })).toMatchObject({
      freeze: 'epochs',
      freezeEpochs: 2,
    });
  });

  it('requires a dataset path when the embedded set is not used', () => {
    expect(validate({ datasetSource: 'path', datasetPath: '  ' }).errors).toEqual({ dataset: 'dataset is required' });
    expect(validate({ datasetSource: 'path', datasetPath: '/data/cifar-10' }).config?.dataset).toBe('/data/cifar-10');
  });

  it('maps problems with exits, including those only the whole network reveals', () => {
    expect(validate({ exits: [0] }).errors).toEqual({ exits: 'an exit block must be at least 1' });
    const { errors } = validate({ exits: [3, 9] });
    expect(errors.exits).toMatch(/^block 9 is outside the network; auxiliary exits go after blocks 1\.\.8/);
    expect(Object.keys(errors)).toEqual(['exits']);
  });

  it('omits optional limits left empty and checks them when given', () => {
    expect(validate({ limitTrain: '', limitTest: ' ' }).config).not.toHaveProperty('limitTrain');
    expect(validate({ limitTrain: 600, limitTest: '200' }).config).toMatchObject({ limitTrain: 600, limitTest: 200 });
    expect(validate({ limitTrain: 0 }).errors).toEqual({ limitTrain: 'limit-train must be at least 1' });
    expect(validate({ validationSplit: 0.9 }).errors).toEqual({ validationSplit: 'validation split is at most 0.5' });
  });

  it("validates MobileNet's width multiplier and ignores the ResNet depth", () => {
    expect(validate({ family: 'mobilenet', depth: 'n/a', width: 5 }).errors).toEqual({
      width: 'width multiplier is at most 4',
    });
    expect(validate({ family: 'mobilenet', width: 0.5 }).config?.arch).toEqual({
      family: 'mobilenet',
      width: 0.5,
      exits: [3, 6],
    });
  });

  it('reads step milestones as a list and names a bad one at its field', () => {
    expect(validate({ milestones: '0.5, 0.75' }).config?.milestones).toEqual([0.5, 0.75]);
    expect(validate({ milestones: ' ' }).config?.milestones).toEqual([]);
    expect(validate({ milestones: '0.6, 0.4' }).errors).toEqual({
      milestones: 'milestones must increase (e.g. 0.4,0.6)',
    });
    expect(validate({ milestones: '0.4, soon' }).errors).toEqual({ milestones: 'a milestone must be a number' });
    expect(validate({ milestones: '1.5' }).errors).toEqual({ milestones: 'milestones lie between 0 and 1' });
  });

  it('carries distillation and gradient equilibrium for methods that train exits, never for plain BP', () => {
    const distilled = { distill: true, distillAlpha: 0.3, distillTemperature: '4', gradientEquilibrium: true };
    expect(validate({ ...distilled, method: 'joint' }).config).toMatchObject({
      method: 'joint',
      distill: true,
      distillAlpha: 0.3,
      distillTemperature: 4,
      gradientEquilibrium: true,
    });
    expect(validate({ ...distilled, method: 'plain' }).config).toMatchObject({
      method: 'plain',
      distill: false,
      gradientEquilibrium: false,
    });
    expect(validate({ distill: true, distillAlpha: 1.5, distillTemperature: 0 }).errors).toEqual({
      distillAlpha: 'distill alpha lies between 0 and 1',
      distillTemperature: 'distill temperature must be a finite number above 0',
    });
  });

  it('loads every training-science setting back from a config ("Run again")', () => {
    const config = {
      ...DEFAULT_RUN_CONFIG,
      milestones: [0.5, 0.8],
      distill: true,
      distillAlpha: 0.7,
      distillTemperature: 2,
      gradientEquilibrium: true,
    };
    expect(formFromConfig(config)).toMatchObject({
      milestones: '0.5, 0.8',
      distill: true,
      distillAlpha: 0.7,
      distillTemperature: 2,
      gradientEquilibrium: true,
    });
    expect(validateRunForm(formFromConfig(config))).toEqual({ config, errors: {} });
  });

  it('finds the field of a path by prefix', () => {
    expect(fieldOfPath('arch.exits.2')).toBe('exits');
    expect(fieldOfPath('arch.depth')).toBe('depth');
    expect(fieldOfPath('batchSize')).toBe('batchSize');
    expect(fieldOfPath('arch.depthish')).toBe('form');
    expect(fieldOfPath('')).toBe('form');
  });
});

describe('network drawing', () => {
  it('groups blocks into stages', () => {
    expect(networkStages({ family: 'resnet', depth: 20, width: 1 })).toEqual([
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ]);
    expect(networkStages({ family: 'mobilenet', width: 1 })).toEqual([
      [1],
      [2, 3],
      [4, 5],
      [6, 7, 8, 9, 10, 11],
      [12, 13],
    ]);
  });

  it('names architectures briefly', () => {
    expect(architectureLabel({ family: 'resnet', depth: 56, width: 1 })).toBe('ResNet-56');
    expect(architectureLabel({ family: 'resnet', depth: 20, width: 2 })).toBe('ResNet-20 \u00d72');
    expect(architectureLabel({ family: 'mobilenet', width: 0.5 })).toBe('MobileNet \u00d70.5');
  });
});

describe('new-run form store', () => {
  function formStore(handlers: Parameters<typeof fakeStudio>[0] = {}) {
    const studio = fakeStudio(handlers);
    provideStudioApi(studio.api);
    setActivePinia(createPinia());
    return { studio, store: useRunFormStore() };
  }

  it('toggles exits on the block picker and keeps them inside the network', async () => {
    const { store } = formStore();
    expect(store.stages).toHaveLength(3);
    store.toggleExit(8);
    store.toggleExit(3);
    expect(store.form.exits).toEqual([6, 8]);
    store.form.depth = 14;
    await nextTick();
    expect(store.blocks).toBe(6);
    expect(store.form.exits).toEqual([]);
    expect(store.valid).toBe(true);
    store.useDefaultExits();
    expect(store.form.exits).toEqual([2, 4]);
    store.form.depth = 15;
    expect(store.stages).toEqual([]);
    expect(store.valid).toBe(false);
  });

  it('starts only a valid run, then shows it live', async () => {
    const { studio, store } = formStore({ startRun: () => ({ run: RUN_DIR }) });
    store.form.epochs = 0;
    expect(await store.submit()).toBe(false);
    expect(studio.calls).toEqual([]);
    store.form.epochs = 1;
    store.form.limitTrain = 256;
    expect(await store.submit()).toBe(true);
    expect(studio.calls).toEqual([
      { method: 'startRun', request: { config: { ...DEFAULT_RUN_CONFIG, epochs: 1, limitTrain: 256 } } },
    ]);
    expect(useStudioStore().view).toBe('live');
  });

  it('fills the dataset from the folder picker', async () => {
    const { store } = formStore({ chooseFolder: () => ({ path: '/data/cifar-10-batches-bin' }) });
    await store.chooseDataset();
    expect(store.form).toMatchObject({ datasetSource: 'path', datasetPath: '/data/cifar-10-batches-bin' });
  });
});
