/**
 * Plotly figures → HTML for `display.html` in a notebook (and for report pages), using the local
 * `plotly.js-dist-min` bundle: no CDN, nothing fetched from the network.
 *
 * The bundle (≈4.6 MiB) is inlined once per process (the first figure a kernel displays carries it);
 * every figure's script waits for `window.Plotly`. Call `plotlyBundleHtml()` yourself for a page that
 * must stand alone. Saved notebook outputs run scripts only in a trusted notebook (Notebook 6).
 */
import * as fs from 'node:fs';

export interface PlotlyFigure {
  data: Array<Record<string, unknown>>;
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

let bundleCache: string | null = null;
let bundleEmitted = false;
let counter = 0;

/** The plotly.js bundle source, read from the installed package. */
export function plotlyBundleSource(): string {
  if (bundleCache === null) {
    const file = require.resolve('plotly.js-dist-min/plotly.min.js');
    bundleCache = fs.readFileSync(file, 'utf8');
  }
  return bundleCache;
}

/** `<script>` that defines window.Plotly (unless it is already defined). */
export function plotlyBundleHtml(): string {
  const src = plotlyBundleSource().replace(/<\/script/gi, '<\\/script');
  return `<script type="text/javascript">if (!window.Plotly) {\n${src}\n}</script>`;
}

/** Forget that the bundle was emitted (e.g. for a new standalone page). */
export function resetPlotlyBundle(): void {
  bundleEmitted = false;
}

/**
 * A `<div>` + `<script>` that draws `fig`. The first call in a process inlines the bundle
 * (or always, with `inlineBundle: true`).
 */
export function plotlyHtml(fig: PlotlyFigure, opts: { inlineBundle?: boolean; width?: number; height?: number } = {}): string {
  const id = `tdr-plot-${process.pid}-${Date.now().toString(36)}-${counter++}`;
  const layout = { width: opts.width, height: opts.height ?? 380, margin: { t: 40, r: 20, b: 50, l: 60 }, ...fig.layout };
  const config = { responsive: true, displaylogo: false, ...fig.config };
  const payload = JSON.stringify({ data: fig.data, layout, config }).replace(/<\//g, '<\\/');
  const needBundle = opts.inlineBundle || !bundleEmitted;
  bundleEmitted = true;
  const draw =
    `<script type="text/javascript">(function(){var f=${payload};var n=0;` +
    `function go(){var el=document.getElementById('${id}');if(window.Plotly&&el){window.Plotly.newPlot(el,f.data,f.layout,f.config);}` +
    `else if(n++<200){setTimeout(go,50);}}go();})();</script>`;
  return `${needBundle ? plotlyBundleHtml() : ''}<div id="${id}" class="tdr-plotly"></div>${draw}`;
}

/** A line chart: one trace per series, markers on. */
export function lineFigure(
  series: Array<{ name: string; x: number[]; y: number[] }>,
  opts: { title?: string; xTitle?: string; yTitle?: string; logY?: boolean } = {},
): PlotlyFigure {
  return {
    data: series.map((s) => ({ type: 'scatter', mode: 'lines+markers', name: s.name, x: s.x, y: s.y })),
    layout: {
      title: { text: opts.title ?? '' },
      xaxis: { title: { text: opts.xTitle ?? '' } },
      yaxis: { title: { text: opts.yTitle ?? '' }, type: opts.logY ? 'log' : 'linear' },
    },
  };
}

/** A bar chart: one trace per series over shared categories. */
export function barFigure(series: Array<{ name: string; x: string[]; y: number[] }>, opts: { title?: string; xTitle?: string; yTitle?: string } = {}): PlotlyFigure {
  return {
    data: series.map((s) => ({ type: 'bar', name: s.name, x: s.x, y: s.y })),
    layout: { title: { text: opts.title ?? '' }, xaxis: { title: { text: opts.xTitle ?? '' } }, yaxis: { title: { text: opts.yTitle ?? '' } }, barmode: 'group' },
  };
}

/** A standalone HTML page from body fragments (figures, tables, grids) with the bundle inlined once. */
export function htmlPage(title: string, fragments: string[]): string {
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>${title.replace(/</g, '&lt;')}</title>` +
    `<style>body{font-family:sans-serif;margin:24px;max-width:1200px}</style>${plotlyBundleHtml()}</head>` +
    `<body>${fragments.join('\n')}</body></html>`
  );
}
