/**
 * What depth changes, image by image: for every pair of exits (shallow i, deep j), the images i
 * gets right and j wrong (overthinking, SDN: Kaya et al., ICML 2019) and those i gets wrong and
 * j right (rescued by depth); and the oracle accuracy, an image counted right when any exit up
 * to j gets it right: the ceiling of every early-exit policy that stops by j.
 */
import type { ExitPair, ImageSelection, Overthinking } from '../../../shared/evaluation.js';

/** Per exit, shallowest first: whether each image is predicted right. */
export function correctness(labels: ArrayLike<number>, predicted: readonly ArrayLike<number>[]): Uint8Array[] {
  return predicted.map((p) => Uint8Array.from({ length: labels.length }, (_, i) => (p[i] === labels[i] ? 1 : 0)));
}

export function overthinking(labels: ArrayLike<number>, predicted: readonly ArrayLike<number>[]): Overthinking {
  const right = correctness(labels, predicted);
  const pairs: ExitPair[] = [];
  for (let shallow = 0; shallow < right.length; shallow++) {
    for (let deep = shallow + 1; deep < right.length; deep++) {
      let broken = 0;
      let rescued = 0;
      const [a, b] = [right[shallow]!, right[deep]!];
      for (let i = 0; i < labels.length; i++) {
        if (a[i] && !b[i]) broken++;
        else if (!a[i] && b[i]) rescued++;
      }
      pairs.push({ shallow, deep, overthinking: broken, rescued });
    }
  }
  const anyRight = new Uint8Array(labels.length);
  const oracle = right.map((exitRight) => {
    let total = 0;
    for (let i = 0; i < labels.length; i++) total += anyRight[i] ||= exitRight[i]!;
    return labels.length ? total / labels.length : 0;
  });
  return { pairs, oracle };
}

/** Positions of the images in a selection, in split order. */
export function selectedImages(
  selection: ImageSelection,
  labels: ArrayLike<number>,
  predicted: readonly ArrayLike<number>[],
): number[] {
  const exits = predicted.length;
  const inRange = (exit: number) =>
    exit < exits || failSelection(`exit ${exit} does not exist; the run has exits 0..${exits - 1}`);
  const picked: number[] = [];
  if (selection.kind === 'confusion') {
    inRange(selection.exit);
    const p = predicted[selection.exit]!;
    for (let i = 0; i < labels.length; i++)
      if (labels[i] === selection.actual && p[i] === selection.predicted) picked.push(i);
    return picked;
  }
  inRange(selection.deep);
  if (selection.shallow >= selection.deep)
    failSelection(`the shallow exit (${selection.shallow}) must come before the deep one (${selection.deep})`);
  const [a, b] = [predicted[selection.shallow]!, predicted[selection.deep]!];
  const wantShallowRight = selection.kind === 'overthinking';
  for (let i = 0; i < labels.length; i++) {
    const shallowRight = a[i] === labels[i];
    if (shallowRight === wantShallowRight && (b[i] === labels[i]) !== wantShallowRight) picked.push(i);
  }
  return picked;
}

/** A selection naming exits the run lacks. */
export class SelectionError extends Error {
  override readonly name = 'SelectionError';
}

function failSelection(message: string): never {
  throw new SelectionError(message);
}
