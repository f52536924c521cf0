/**
 * A run's trace as the views draw it, shared by the Live view (the engine's active run) and the
 * Study view (a Slurm array element read from its folder): the progress line and the per-exit
 * chart series.
 */
import { exitLabel, formatDuration } from '../../shared/format.js';
import { HEADS_ONLY } from '../../shared/metrics.js';
import type { LineSeries } from './charts/LineChart.vue';
import { exitColor } from './palette.js';
import type { Point, RunTrace } from './runTrace.js';

/** "step 12 / 40 · epoch 1 / 2 · 310 img/s · heads only, cached features · ETA 9s". */
export function progressText(t: RunTrace): string {
  const { step, totalSteps, epoch, epochs, imagesPerSecond, etaSeconds, backbone } = t.progress;
  const parts = [
    totalSteps ? `step ${step} / ${totalSteps}` : 'waiting for the first step',
    `epoch ${Math.max(epoch, 1)} / ${epochs}`,
  ];
  if (imagesPerSecond !== undefined) parts.push(`${Math.round(imagesPerSecond)} img/s`);
  if (backbone) parts.push(HEADS_ONLY[backbone]);
  if (t.status === 'running' && etaSeconds !== undefined) parts.push(`ETA ${formatDuration(etaSeconds)}`);
  return parts.join(' · ');
}

/** One series per exit, in the exit's colour: `pick` chooses the curve (loss, accuracy). */
export function exitSeries(t: RunTrace, pick: (t: RunTrace) => Point[][], suffix = '', dashed = false): LineSeries[] {
  return t.exits.map((exit) => ({
    label: `${exitLabel(exit)}${suffix}`,
    color: exitColor(exit),
    points: pick(t)[exit.index] ?? [],
    dashed,
  }));
}
