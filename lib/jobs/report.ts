/**
 * The main job (`npm start` = `tdr report`): every degradation family at every strength on the
 * bundled validation photos; mean PSNR/SSIM per (family, strength); a table on stdout and
 * outputs/report.html with an image grid, the table and a plotly chart of PSNR vs strength.
 * Then the whole method (./method.ts) on a few of the photos with the shipped checkpoints: degrade →
 * guidance G(E_txt) and G(E'_txt) → restoration without and with guidance → PSNR/SSIM; when a
 * checkpoint is missing the report says which and how to build it, and the degradation part stands.
 * Beside it, the classical references (dark channel prior, non-local means) on the same inputs.
 */
import * as path from 'node:path';
import { listEntries, loadCorpusImage } from '../data/corpus';
import { TASKS, Task } from '../data/degrade';
import { fitLongSide } from '../data/io';
import { sweep, STRENGTHS, SweepRow } from './sweep';
import { htmlTable, markdownTable, Row } from '../viz/table';
import { imageGridHtml } from '../viz/grid';
import { plotlyHtml, lineFigure, barFigure, htmlPage, resetPlotlyBundle } from '../viz/plotly';
import { writeFileAtomic, projectRoot } from '../util/fsx';
import { Progress } from '../train/progress';
import { MethodOptions, MethodResult, METHOD_DIGITS, CLASSICAL_DIGITS, methodRow, runMethod, shortPath } from './method';
import { classicalNotes } from '../restore/eval';
import { ALL_IN_ONE_TASKS } from '../data/degrade';

export interface ReportOptions {
  /** how many validation photos (default all) */
  limit?: number;
  /** photos are resized so that their long side is at most this (default 256, for speed) */
  maxSide?: number;
  out?: string;
  quiet?: boolean;
  /** photos for the whole-method section (default 3; 0 skips it) */
  methodPhotos?: number;
  /** checkpoints of the whole-method section (default: the shipped ones) */
  method?: Omit<MethodOptions, 'limit' | 'onProgress'>;
}

export interface ReportResult {
  rows: Array<Row & { task: Task; value: number; psnr: number; ssim: number; n: number }>;
  file: string;
  photos: number;
  /** the whole-method section's result (null when skipped) */
  method: MethodResult | null;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));

export async function runReport(opts: ReportOptions = {}): Promise<ReportResult> {
  const root = projectRoot();
  const entries = listEntries('val').slice(0, opts.limit ?? Infinity);
  const maxSide = opts.maxSide ?? 256;
  const per = new Map<string, SweepRow[]>();
  const progress = new Progress('report', entries.length, { quiet: opts.quiet });
  let gallery = '';
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const img = await fitLongSide(await loadCorpusImage(e), maxSide);
    const shown = [{ image: img, label: `clean: ${e.caption}` }];
    for (const task of TASKS) {
      const results = sweep(img, e.id, task);
      for (const { row } of results) {
        const key = `${task}:${row.value}`;
        per.set(key, [...(per.get(key) ?? []), row]);
      }
      const mid = results[Math.min(2, results.length - 1)];
      if (i === 0) shown.push({ image: mid.result.image, label: `${task} ${mid.row.param}=${mid.row.value} (“${mid.row.phrase}”) ${mid.row.psnr.toFixed(2)} dB` });
    }
    if (i === 0) gallery = await imageGridHtml(shown, { height: 180, title: `Every degradation on one validation photo (${e.id})` });
    progress.update(i + 1);
  }
  const rows = [...per.entries()].map(([key, rs]) => {
    const [task, value] = key.split(':');
    const ps = rs.map((r) => r.psnr);
    return {
      task: task as Task,
      [STRENGTHS[task as Task].param]: undefined,
      param: STRENGTHS[task as Task].param,
      value: Number(value),
      phrase: rs[0].phrase,
      psnr: mean(ps),
      psnrStd: std(ps),
      ssim: mean(rs.map((r) => r.ssim)),
      psnrY: mean(rs.map((r) => r.psnrY)),
      ssimY: mean(rs.map((r) => r.ssimY)),
      n: rs.length,
    };
  });
  const columns = ['task', 'param', 'value', 'psnr', 'psnrStd', 'ssim', 'psnrY', 'ssimY', 'n'];
  const digits = { value: 3, psnr: 2, psnrStd: 2, ssim: 4, psnrY: 2, ssimY: 4, n: 0 };
  const caption = `Degraded vs clean, mean over ${entries.length} validation photos (long side ≤ ${maxSide} px); PSNR in dB, SSIM BasicSR (Gaussian 11, σ 1.5)`;
  const series = TASKS.map((t) => ({ name: t, x: [0, 1, 2, 3], y: rows.filter((r) => r.task === t).map((r) => r.psnr) }));
  resetPlotlyBundle();
  const chart = plotlyHtml(lineFigure(series, { title: 'PSNR vs degradation strength (level 0 = weakest)', xTitle: 'strength level (see table for values)', yTitle: 'PSNR (dB)' }));
  if (!opts.quiet) process.stdout.write('\n' + markdownTable(rows, { columns, digits, caption }) + '\n');

  // the whole method (degrade → guidance → guided restoration → metrics)
  let method: MethodResult | null = null;
  const methodHtml: string[] = ['<h2>The whole method</h2>'];
  if ((opts.methodPhotos ?? 3) > 0) {
    let mp: Progress | null = null;
    const onProgress = (d: number, t: number) => (mp ??= new Progress('method', t, { quiet: opts.quiet })).update(d);
    method = await runMethod({ ...opts.method, limit: opts.methodPhotos ?? 3, onProgress });
    if (method.missing.length) {
      const lines = method.missing.map((m) => `${m.what}: ${shortPath(m.file)} is missing (build it: ${m.command})`);
      methodHtml.push(`<p>Skipped: a checkpoint is missing.</p><ul>${lines.map((l) => `<li>${l.replace(/</g, '&lt;')}</li>`).join('')}</ul>`);
      if (!opts.quiet) process.stdout.write(`\nwhole method skipped:\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
    } else {
      for (const n of method.notes) {
        process.stderr.write(`${n}\n`);
        methodHtml.push(`<p><b>Note:</b> ${n.replace(/^note: /, '').replace(/</g, '&lt;')}</p>`);
      }
      const mcols = ['task', 'channel', ...Object.keys(METHOD_DIGITS)];
      const mcap = `Restoration with and without guidance (${method.samples.length / method.rows.length} validation photos per task; PSNR dB, SSIM; Y channel for rain). Checkpoints: ${[method.checkpoints.guidance, method.checkpoints.plain, method.checkpoints.guided].map(shortPath).join(', ')}`;
      methodHtml.push(
        '<p>X → τi → M_i2t → E_txt → G(E_txt); E_txt → M_clean → E\'_txt → G(E\'_txt) (Sec. 3.2); X and G(E\'_txt) → guided restorer (Sec. 3.3), beside the same backbone trained without guidance. ' +
          "Control: the guided restorer given another photo's guidance (the next photo's, same task) — if it scores like its own, the gain does not come from what G shows (<code>npx tdr eval --table 1 --controls</code> measures every validation photo).</p>",
        htmlTable(method.rows, { columns: mcols, digits: METHOD_DIGITS, caption: mcap }),
        plotlyHtml(
          barFigure(
            [
              { name: 'input', x: method.rows.map((r) => String(r.task)), y: method.rows.map((r) => Number(r['PSNR input'])) },
              { name: 'unguided', x: method.rows.map((r) => String(r.task)), y: method.rows.map((r) => Number(r['PSNR unguided'])) },
              { name: 'guided', x: method.rows.map((r) => String(r.task)), y: method.rows.map((r) => Number(r['PSNR guided'])) },
            ],
            { title: 'PSNR per task', yTitle: 'PSNR (dB)' },
          ),
        ),
      );
      // comparison rows: the classical references on the same inputs
      const ccols = ['task', 'classical method', ...Object.keys(CLASSICAL_DIGITS)];
      const ccap = 'Classical references (no learned weights) on the same inputs; positive differences = the network is better';
      const cnotes = classicalNotes(method.rows.map((r) => ALL_IN_ONE_TASKS.find((t) => t.name === r.task)!));
      methodHtml.push(htmlTable(method.classicalRows, { columns: ccols, digits: CLASSICAL_DIGITS, caption: ccap }), ...cnotes.map((n) => `<p style="margin:2px 0">${n.replace(/</g, '&lt;')}</p>`));
      for (const s of method.samples) methodHtml.push(await imageGridHtml(methodRow(s), { height: 150 }));
      if (!opts.quiet) {
        process.stdout.write('\n' + markdownTable(method.rows, { columns: mcols, digits: METHOD_DIGITS, caption: mcap }) + '\n');
        process.stdout.write('\n' + markdownTable(method.classicalRows, { columns: ccols, digits: CLASSICAL_DIGITS, caption: ccap }) + '\n' + cnotes.map((n) => `> ${n}`).join('\n') + '\n');
      }
    }
  }

  const file = opts.out ?? path.join(root, 'outputs', 'report.html');
  const html = htmlPage('tdr report', [
    '<h1>tdr report</h1>',
    `<p>Produced by <code>npm start</code> (<code>tdr report</code>) on ${new Date().toISOString()}.</p>`,
    '<h2>Degradations</h2>',
    gallery,
    htmlTable(rows, { columns, digits, caption }),
    chart,
    ...(method ? methodHtml : []),
  ]);
  writeFileAtomic(file, html);
  if (!opts.quiet) process.stdout.write('\nwrote ' + path.relative(process.cwd(), file) + '\n');
  return { rows, file, photos: entries.length, method };
}
