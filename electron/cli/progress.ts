/**
 * Training progress on stderr: a redrawn bar with rate and ETA on a terminal, a line every few
 * seconds otherwise (CI logs, pipes), so stdout stays clean for tables and --json.
 */
import { formatDuration, formatPercent } from '../../shared/format.js';
import { HEADS_ONLY, type BatchMetrics, type EpochMetrics } from '../../shared/metrics.js';

const BAR_WIDTH = 24;
const LOG_INTERVAL_MS = 5000;

export class ProgressReporter {
  private lastLog = 0;
  private readonly tty: boolean;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(stream.isTTY);
  }

  batch(m: BatchMetrics): void {
    const done = m.step / m.totalSteps;
    const filled = Math.round(done * BAR_WIDTH);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}`;
    const losses = m.losses.map((l) => l.toFixed(3)).join(' / ');
    const phase = m.backbone ? `  ${HEADS_ONLY[m.backbone]}` : '';
    const text = `epoch ${m.epoch} [${bar}] ${formatPercent(done, 0)} step ${m.step}/${m.totalSteps}  ${Math.round(m.imagesPerSecond)} img/s${phase}  loss ${losses}  ETA ${formatDuration(m.etaSeconds)}`;
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${text}`);
    } else if (Date.now() - this.lastLog > LOG_INTERVAL_MS || m.step === m.totalSteps) {
      this.stream.write(`${text}\n`);
      this.lastLog = Date.now();
    }
  }

  epoch(m: EpochMetrics): void {
    const accuracy = m.testAccuracy.map((a) => formatPercent(a)).join(' / ');
    const train = m.trainAccuracy.map((a) => formatPercent(a)).join(' / ');
    this.line(
      `epoch ${m.epoch}/${m.epochs} done in ${formatDuration(m.seconds)} (${Math.round(m.imagesPerSecond)} img/s)  train acc ${train}  held-out acc ${accuracy}`,
    );
  }

  line(text: string): void {
    this.stream.write(`${this.tty ? '\r\x1b[2K' : ''}${text}\n`);
  }
}
