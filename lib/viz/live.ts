/**
 * Live training views for notebooks: one loss chart (and optionally one image) that update in
 * place through tslab's `newDisplay()` instead of printing a line per step. The library does not
 * import tslab: pass the display object in (anything with an `html(string)` method).
 */
import { plotlyHtml, lineFigure } from './plotly';

/** What the chart reads of a training-log record (the training loop's `LossRecord` has this shape). */
export interface LossRecord {
  step: number;
  msPerStep?: number;
  lr?: number;
  gradNorm?: number;
  [loss: `l_${string}`]: number;
}

export interface HtmlDisplay {
  html(s: string): void;
}

/**
 * Returns an `onLog` callback for the training loop that redraws the loss curves (every l_* key)
 * at most every `minIntervalMs` (default 1 s), plus `finish()` to draw the final state.
 */
export function liveLossChart(display: HtmlDisplay, opts: { title?: string; minIntervalMs?: number; logY?: boolean } = {}) {
  const recs: LossRecord[] = [];
  let last = 0;
  const draw = () => {
    const keys = [...new Set(recs.flatMap((r) => Object.keys(r).filter((k) => k.startsWith('l_'))))];
    const series = keys.map((k) => ({ name: k, x: recs.map((r) => r.step), y: recs.map((r) => r[k as `l_${string}`]) }));
    const lastRec = recs[recs.length - 1];
    const title = `${opts.title ?? 'training loss'} — step ${lastRec ? lastRec.step + 1 : 0}${lastRec ? `, ${lastRec.msPerStep} ms/step` : ''}`;
    display.html(plotlyHtml(lineFigure(series, { title, xTitle: 'step', yTitle: 'loss', logY: opts.logY ?? true }), { height: 320 }));
  };
  return {
    onLog(rec: LossRecord): void {
      recs.push(rec);
      const now = Date.now();
      if (now - last >= (opts.minIntervalMs ?? 1000)) {
        last = now;
        draw();
      }
    },
    finish(): void {
      draw();
    },
    records: recs,
  };
}
