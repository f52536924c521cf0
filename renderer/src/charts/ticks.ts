/** Axis tick labels that tell neighbouring ticks apart however narrow the range. */
import { formatPercent } from '../../../shared/format.js';

/** Decimal places that show a tick step of `step` (after multiplying by `scale`): 0.002 at scale 100 needs 1 ("96.2%"). */
export function tickDigits(step: number, scale = 1): number {
  const scaled = Math.abs(step * scale);
  if (!(scaled > 0) || !Number.isFinite(scaled)) return 0;
  // The small slack keeps an exact power of ten (a step of 1) from asking for a digit it does not need.
  return Math.min(6, Math.max(0, Math.ceil(-Math.log10(scaled) - 1e-9)));
}

/** A Chart.js tick callback for fractions shown as percentages, with as many digits as the tick step needs. */
export function percentTick(value: number | string, index: number, ticks: readonly { value: number }[]): string {
  const step = ticks.length > 1 ? Math.abs(ticks[1]!.value - ticks[0]!.value) : 1;
  return formatPercent(Number(value), tickDigits(step, 100));
}
