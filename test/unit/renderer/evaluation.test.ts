/** The evaluation store: the split a run offers, the engine calls it makes, progress, and the cell images it pages through. */
import { createPinia, setActivePinia } from 'pinia';
import { describe, expect, it } from 'vitest';
import { ResponseSchemas } from '../../../shared/api.js';
import type { Evaluation, EvaluationImages } from '../../../shared/evaluation.js';
import { provideStudioApi } from '../../../renderer/src/api/current.js';
import { useEvaluationStore } from '../../../renderer/src/stores/evaluation.js';
import { RUN_DIR, fakeStudio, runStream, settle } from './fixtures.js';

const confusion = [
  [3, 1],
  [2, 4],
];
const EVALUATION: Evaluation = ResponseSchemas.evaluate.parse({
  run: RUN_DIR,
  split: 'test',
  step: 8,
  samples: 10,
  classes: ['cat', 'dog'],
  exits: [0, 1, 2].map((index) => ({
    index,
    block: [3, 6, 9][index],
    final: index === 2,
    top1: 0.7,
    perClass: [
      { class: 0, name: 'cat', precision: 0.6, recall: 0.75, support: 4 },
      { class: 1, name: 'dog', precision: 0.8, recall: 0.67, support: 6 },
    ],
    confusion,
  })),
  overthinking: { pairs: [{ shallow: 0, deep: 1, overthinking: 1, rescued: 2 }], oracle: [0.7, 0.8, 0.9] },
});
const PIXEL = 'data:image/png;base64,iVBORw0KGgo=';
const IMAGES: EvaluationImages = {
  total: 1,
  offset: 0,
  images: [{ index: 4, label: 0, thumbnail: PIXEL, predictions: [{ predicted: 1, confidence: 0.6 }] }],
};

function shownRun() {
  const studio = fakeStudio({ evaluate: () => EVALUATION, evaluationImages: () => IMAGES });
  provideStudioApi(studio.api);
  setActivePinia(createPinia());
  const store = useEvaluationStore();
  studio.emit(runStream());
  return { studio, store };
}

describe('evaluation store', () => {
  it('evaluates a run without a validation hold-out on its test set, showing the final exit first and the progress', async () => {
    const { studio, store } = shownRun();
    expect(store.hasValidation).toBe(false);
    expect(store.split).toBe('test');
    const done = store.compute();
    studio.push({ type: 'evaluation-progress', run: '/elsewhere', split: 'test', done: 9, total: 10 });
    studio.push({ type: 'evaluation-progress', run: RUN_DIR, split: 'test', done: 5, total: 10 });
    expect(store.progress).toEqual({ done: 5, total: 10 });
    expect(await done).toBe(true);
    expect(studio.calls.at(-1)).toEqual({ method: 'evaluate', request: { run: RUN_DIR, split: 'test' } });
    expect(store.exitIndex).toBe(2);
    expect(store.exit?.confusion).toEqual(confusion);
  });

  it('opens the images of a cell, and forgets results when the split changes', async () => {
    const { studio, store } = shownRun();
    await store.compute();
    const selection = { kind: 'confusion', exit: 2, actual: 0, predicted: 1 } as const;
    expect(await store.openImages(selection)).toBe(true);
    expect(studio.calls.at(-1)).toEqual({
      method: 'evaluationImages',
      request: { run: RUN_DIR, split: 'test', selection, offset: 0, limit: 200 },
    });
    expect(store.images).toEqual(IMAGES);
    store.split = 'validation';
    await settle();
    expect([store.evaluation, store.images, store.selection]).toEqual([undefined, undefined, undefined]);
  });
});
