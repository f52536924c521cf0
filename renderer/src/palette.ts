/**
 * One colour per exit, the same in every table, chart and picker, so an exit is recognised at a
 * glance. Auxiliary exits cycle through the Okabe-Ito palette (distinguishable with the common
 * colour-vision deficiencies; its yellow is left out, too pale on white); the final output is
 * always the same dark slate, so "the full network" never changes colour between runs.
 */
const AUXILIARY_COLOURS = [
  '#0072B2',
  '#E69F00',
  '#009E73',
  '#CC79A7',
  '#56B4E9',
  '#D55E00',
  '#7E57C2',
  '#8D6E63',
] as const;
const FINAL_COLOUR = '#263238';

export function exitColor(exit: { index: number; final: boolean }): string {
  return exit.final ? FINAL_COLOUR : AUXILIARY_COLOURS[exit.index % AUXILIARY_COLOURS.length]!;
}

/** One colour per compared run or method, from the same palette: series i of a chart. */
export function seriesColor(i: number): string {
  return AUXILIARY_COLOURS[i % AUXILIARY_COLOURS.length]!;
}

/** "#0072B2", 0.3 -> "rgba(0, 114, 178, 0.3)": fills and de-emphasised series in an exit's colour. */
export function withAlpha(hex: string, alpha: number): string {
  const channels = [1, 3, 5].map((at) => parseInt(hex.slice(at, at + 2), 16));
  return `rgba(${channels.join(', ')}, ${alpha})`;
}
