/** Number formatting shared by the CLI tables and the studio's views, so both read the same. */

/** 272474 -> "272.5K", 40_550_000 -> "40.6M". */
export function formatCount(n: number): string {
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (abs >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(Math.round(n));
}

export function formatPercent(fraction: number, digits = 1): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** 75 -> "1m15s", 3725 -> "1h02m", 4.2 -> "4s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 100 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

/** "exit @ block 3" or "final": how an exit is named everywhere. */
/** A difference of two accuracies in percentage points, signed: +1.25, −0.40. */
export function formatPoints(fraction: number, digits = 2): string {
  return `${fraction >= 0 ? '+' : '−'}${Math.abs(fraction * 100).toFixed(digits)}`;
}

export function exitLabel(exit: { block: number; final: boolean }): string {
  return exit.final ? `final (block ${exit.block})` : `exit @ block ${exit.block}`;
}

/** File sizes in decimal units: "98.7 kB", "1.24 MB". */
export function formatBytes(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}
