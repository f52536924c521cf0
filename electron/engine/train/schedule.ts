/** Learning-rate factor at a step: x0.1 at 50% and 75% of training (step), or cosine to 0. */
export type Schedule = 'step' | 'cosine';

export function learningRateFactor(schedule: Schedule, step: number, totalSteps: number): number {
  const t = totalSteps > 0 ? step / totalSteps : 0;
  if (schedule === 'cosine') return 0.5 * (1 + Math.cos(Math.PI * t));
  return t < 0.5 ? 1 : t < 0.75 ? 0.1 : 0.01;
}
