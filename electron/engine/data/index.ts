/** The data layer: datasets from what the user named (load.ts), in batches (batches.ts). */
export {
  describeDataset,
  EMBEDDED_NAME,
  EMBEDDED_SOURCE,
  embeddedDatasetDir,
  loadDataset,
  loadRunDataset,
  selectionSet,
  type LoadOptions,
} from './load.js';
export { DatasetError, imageBytes, type Dataset, type DatasetShape, type ImageSet } from './dataset.js';
export { cropPadding, epochOrder, makeBatch } from './batches.js';
export { IMAGENET_NORMALIZATION, type BackboneInput } from './fit.js';
export { FASHION_MNIST_CLASSES } from './idx.js';
