/**
 * A progress bar with rate and ETA for long loops (training, sampling, evaluation). On a TTY it
 * redraws one line; otherwise it prints a plain line at most every `minIntervalMs`.
 */
export class Progress {
  private readonly start = Date.now();
  private last = 0;
  private readonly tty: boolean;

  constructor(
    readonly label: string,
    readonly total: number,
    private readonly opts: { stream?: NodeJS.WriteStream; minIntervalMs?: number; startAt?: number; quiet?: boolean } = {},
  ) {
    this.tty = Boolean((opts.stream ?? process.stderr).isTTY);
  }

  /** Seconds per item and ETA in seconds given `done` items (counting from startAt). */
  rate(done: number): { secPerIt: number; etaSec: number } {
    const n = done - (this.opts.startAt ?? 0);
    const secPerIt = n > 0 ? (Date.now() - this.start) / 1000 / n : NaN;
    return { secPerIt, etaSec: secPerIt * (this.total - done) };
  }

  update(done: number, extra = ''): void {
    if (this.opts.quiet) return;
    const now = Date.now();
    const minInterval = this.opts.minIntervalMs ?? (this.tty ? 200 : 10_000);
    if (done < this.total && now - this.last < minInterval) return;
    this.last = now;
    const { secPerIt, etaSec } = this.rate(done);
    const width = 24;
    const filled = Math.round((width * done) / Math.max(1, this.total));
    const bar = '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? '>' : '') + ' '.repeat(width - filled);
    const speed = Number.isFinite(secPerIt) ? (secPerIt >= 1 ? `${secPerIt.toFixed(2)} s/it` : `${(1 / secPerIt).toFixed(1)} it/s`) : '';
    const eta = Number.isFinite(etaSec) ? `ETA ${formatDuration(etaSec)}` : '';
    const line = `${this.label} [${bar}] ${done}/${this.total} ${speed} ${eta} ${extra}`.trimEnd();
    const stream = this.opts.stream ?? process.stderr;
    if (this.tty) stream.write(`\r\x1b[K${line}${done >= this.total ? '\n' : ''}`);
    else stream.write(line + '\n');
  }
}

export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec)) return '?';
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}
