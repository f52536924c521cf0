/**
 * Learning-rate factor at a step: x0.1 at each milestone (fractions of training; the paper's
 * code steps at 40% and 60%), or cosine to 0.
 */
export type Schedule = 'step' | 'cosine';

export function learningRateFactor(
  schedule: Schedule,
  step: number,
  totalSteps: number,
  milestones: readonly number[],
): number {
  const t = totalSteps > 0 ? step / totalSteps : 0;
  if (schedule === 'cosine') return 0.5 * (1 + Math.cos(Math.PI * t));
  return 0.1 ** milestones.filter((m) => t >= m).length;
}
