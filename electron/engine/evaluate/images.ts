/** The images behind one cell of an evaluation, a page at a time, as thumbnails with every exit's prediction. */
import type { EvaluationImages, ImageSelection } from '../../../shared/evaluation.js';
import type { Dataset } from '../data/dataset.js';
import { thumbnailDataUrl } from '../data/thumbnails.js';
import { selectedImages } from './overthinking.js';
import { splitImages, type RunEvaluation } from './runEvaluation.js';

export function evaluationImages(
  { evaluation, predictions }: RunEvaluation,
  dataset: Dataset,
  selection: ImageSelection,
  page: { offset: number; limit: number },
): EvaluationImages {
  const set = splitImages(dataset, evaluation.split, evaluation.run);
  if (set.count !== predictions.labels.length) {
    throw new Error(
      `the ${evaluation.split} split has ${set.count} images but its evaluation ${predictions.labels.length}; evaluate the run again`,
    );
  }
  const picked = selectedImages(selection, predictions.labels, predictions.predicted);
  const images = picked.slice(page.offset, page.offset + page.limit).map((index) => ({
    index,
    label: predictions.labels[index]!,
    thumbnail: thumbnailDataUrl(set, index, dataset.shape),
    predictions: predictions.predicted.map((p, k) => ({
      predicted: p[index]!,
      confidence: Math.min(1, predictions.confidence[k]![index]!),
    })),
  }));
  return { total: picked.length, offset: page.offset, images };
}
