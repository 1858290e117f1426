/**
 * Evaluation harness of guided restoration (paper Tables 1–9 at small scale).
 *
 * Protocol (BasicSR `basicsr/metrics/psnr_ssim.py`; official scripts/eval/main_evaluation_*.py):
 *  - images: centred `size`×`size` crops of the validation photos (resized to `shortSide` first);
 *  - degradation: the task spec with a fixed seed per (image, task) (`evalSeed`); Gaussian noise in
 *    'float' mode (x + N(0,σ/255), no clip, no quantisation — the Restormer / TextualDegRemoval eval),
 *    seeded per image; rain/haze/blur are in [0,1] anyway;
 *  - the network sees the degraded image as is and the WHOLE guidance image (test time, as official);
 *    its output is clipped to [0,1] and quantised (BasicSR tensor2img) before measuring;
 *  - metrics: BasicSR PSNR and per-channel SSIM (11×11 Gaussian σ 1.5, valid), crop_border 0; on the
 *    BT.601 Y channel for deraining, on RGB for everything else;
 *  - per-image deltas (model − baseline) and their mean ± (population) std, whatever their sign.
 * Tables: Markdown, HTML and JSON written atomically (`writeTables`); the data is returned too.
 * A guidance source flagged `standIn` gets its note printed above every table that uses it.
 * Classical references (./classical: dark channel prior for haze, non-local means for noise; no learned
 * weights) are measured on the same degraded images as a row of their own; '—' where a task has none.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { RGBImage, makeImage, clip01 } from '../data/image';
import { centerCrop, loadPhotos, toBatch, fromBatch } from '../data/patches';
import { ALL_IN_ONE_TASKS, TaskSpec, degradeWithSpec, Task } from '../data/degrade';
import { psnr, ssim } from '../metrics/metrics';
import { thumbnailPsnr, finitePsnr } from '../metrics/content';
import { meanStd } from '../metrics/stats';
import { htmlTable, markdownTable, Row, escapeHtml } from '../viz/table';
import { writeFileAtomic } from '../util/fsx';
import { hashString } from '../util/rng';
import { GuidedRestorer } from './guided';
import { TileOptions, restoreTiled } from './tiled';
import { GuidanceSource, guidanceKey, noGuidance } from './source';
import type { RestoreConfig } from './config';
import { ClassicalMethod, classicalMethodFor, NO_CLASSICAL } from './classical';

/** A validation image. */
export interface EvalImage {
  id: string;
  /** [H,W,3] float32 RGB in [0,1] */
  clean: RGBImage;
}

/** Something to evaluate: a restorer and its guidance source (`noGuidance` when unguided). */
export interface EvalModel {
  name: string;
  /** null = the identity (the degraded input itself, as a reference row) */
  net: GuidedRestorer | null;
  guidance: GuidanceSource;
  /**
   * A control for a guided model (does it use what G shows?): 'other-photo' = the guidance of the
   * NEXT validation photo's degraded input (same task, cyclic), 'grey' = a flat 0.5 image.
   */
  control?: GuidanceControl;
  /**
   * A classical reference instead of a network (`net` null): each task restored by the method of
   * `classicalMethodFor` (./classical); tasks without one get no record ('—' in the tables).
   */
  classical?: boolean;
}

export type GuidanceControl = 'other-photo' | 'grey';

/** The 'input' pseudo-model: the degraded image, unrestored. */
export const INPUT_MODEL: EvalModel = { name: 'input (degraded)', net: null, guidance: noGuidance };

/** The classical methods used for `specs` (one per distinct method, in task order). */
export function classicalMethods(specs: readonly TaskSpec[]): ClassicalMethod[] {
  return [...new Set(specs.map(classicalMethodFor).filter((m): m is ClassicalMethod => m !== null))];
}

/**
 * The classical-reference pseudo-model for `specs`, named after its methods (e.g. 'classical: DCP + GF / NLM'),
 * or null when no spec has a classical method.
 */
export function classicalModel(specs: readonly TaskSpec[]): EvalModel | null {
  const ms = classicalMethods(specs);
  return ms.length ? { name: `classical: ${ms.map((m) => m.short).join(' / ')}`, net: null, guidance: noGuidance, classical: true } : null;
}

/** Table notes on the classical row: each method with its citation and settings, and why a task has none. */
export function classicalNotes(specs: readonly TaskSpec[]): string[] {
  const notes = classicalMethods(specs).map((m) => {
    const tasks = specs.filter((s) => classicalMethodFor(s) === m).map((s) => s.name);
    return `classical reference for ${tasks.join(', ')} (no learned weights): ${m.name} — ${m.citation}; ${m.settings}.`;
  });
  const without = [...new Set(specs.filter((s) => !classicalMethodFor(s)).map((s) => s.task))];
  for (const t of without) notes.push(`${t}: ${NO_CLASSICAL[t] ?? 'no classical reference'} ('—').`);
  return notes;
}

/** Table 1 columns in the paper's order: dehaze, derain, denoise σ15/25/50. */
export const TABLE1_TASKS: TaskSpec[] = ['haze', 'rain', 'noise15', 'noise25', 'noise50'].map((n) => ALL_IN_ONE_TASKS.find((t) => t.name === n)!);

/** Evaluation specs of a single-task table: noise → σ15/25/50 (Table 7 style), others → one column. */
export function singleTaskSpecs(task: Task): TaskSpec[] {
  if (task === 'noise') return TABLE1_TASKS.filter((t) => t.task === 'noise');
  if (task === 'rain' || task === 'haze') return [ALL_IN_ONE_TASKS.find((t) => t.name === task)!];
  return [{ name: task, task, params: {} }];
}

/** Deraining is measured on Y (Restormer/DRSformer MATLAB protocol); everything else on RGB. */
export function usesY(spec: TaskSpec): boolean {
  return spec.task === 'rain';
}

/** Fixed degradation seed of (image, task). */
export function evalSeed(id: string, task: string): number {
  return hashString(`eval:${id}:${task}`);
}

/** The degraded version of an evaluation image (float noise not clipped). */
export function degradeForEval(img: EvalImage, spec: TaskSpec): RGBImage {
  return degradeWithSpec(img.clean, spec, evalSeed(img.id, spec.name)).image;
}

/** Centred crops of the validation photos per `cfg.eval`. */
export async function validationImages(ev: RestoreConfig['eval'], limit = ev.limit): Promise<EvalImage[]> {
  const photos = await loadPhotos('val', ev.shortSide, limit);
  return photos.map((p) => ({ id: p.entry.id, clean: centerCrop(p.image, ev.size) }));
}

/**
 * Restore one image of any size: in one pass when it fits the tile budget (the untiled network
 * output), else in overlapping tiles blended without seams, G encoded once and matched whole by every
 * tile (lib/restore/tiled.ts). A guidance image above GUIDANCE_MAX_PIXELS is reduced first.
 * @param x [H,W,3] degraded; @param g [Hg,Wg,3] guidance (guided nets only; ignored by unguided ones)
 * @param opts tile size / memory budget / overlap / progress per tile
 * @returns [H,W,3] clipped to [0,1]
 * @throws UserError when the budget or tile cannot be held by the backend; NonFiniteError
 *   when the network's output is not finite (corrupt weights)
 */
export function restoreImage(net: GuidedRestorer, x: RGBImage, g?: RGBImage, opts: TileOptions = {}): RGBImage {
  return restoreTiled(net, x, g, opts);
}

/** One measurement. */
export interface EvalRecord {
  model: string;
  image: string;
  task: string;
  /** dB, PSNR on `channel` */
  psnr: number;
  ssim: number;
  channel: 'rgb' | 'y';
  /**
   * What the scene looks like at CONTENT_THUMB×CONTENT_THUMB: PSNR (dB, RGB) of the output's area thumbnail to
   * the clean photo's, and of G's (guided models). G can add to X only what it shows more truly than the
   * network recovers from X alone — compare `g` with the unguided model's `out`.
   */
  thumb?: { out: number; g?: number };
}

/** Side of the thumbnails of `EvalRecord.thumb` (4: the colour layout a guidance image shows at the least). */
export const CONTENT_THUMB = 4;

/**
 * Measure every model on every (image, task). Guidance is fetched once per (source, image, task).
 * `onProgress(done, total)` after each measurement.
 */
export async function evaluateModels(
  models: EvalModel[],
  specs: TaskSpec[],
  images: EvalImage[],
  opts: { onProgress?: (done: number, total: number) => void; onGuidance?: (done: number, total: number) => void } = {},
): Promise<EvalRecord[]> {
  const out: EvalRecord[] = [];
  const total = models.length * specs.length * images.length;
  let done = 0;
  // per source OBJECT (not its name: Table 9's sources for different N are all called 'text'), per input
  const gcache = new Map<GuidanceSource, Map<string, RGBImage>>();
  const guidanceOf = async (src: GuidanceSource, img: EvalImage, spec: TaskSpec, x: RGBImage): Promise<RGBImage> => {
    const key = guidanceKey('val', img.id, spec.name);
    let bySource = gcache.get(src);
    if (!bySource) gcache.set(src, (bySource = new Map()));
    let g = bySource.get(key);
    if (!g) {
      g = await src.get(x, key, { clean: img.clean });
      bySource.set(key, g);
    }
    return g;
  };
  // generating sources make every input's G first, in batches (GuidanceSource.prefetch)
  const sources = new Set(models.filter((m) => m.net?.cfg.guidance && m.control !== 'grey').map((m) => m.guidance));
  for (const src of sources) {
    if (!src.prefetch) continue;
    await src.prefetch(
      images.flatMap((img) => specs.map((spec) => ({ degraded: degradeForEval(img, spec), key: guidanceKey('val', img.id, spec.name) }))),
      undefined,
      opts.onGuidance,
    );
  }
  for (const [i, img] of images.entries()) {
    for (const spec of specs) {
      const x = degradeForEval(img, spec);
      const y = usesY(spec);
      for (const m of models) {
        let restored: RGBImage;
        let g: RGBImage | undefined;
        if (m.classical) {
          const method = classicalMethodFor(spec);
          if (!method) {
            opts.onProgress?.(++done, total);
            continue;
          }
          restored = clip01(method.restore(x, spec));
        } else if (!m.net) restored = x;
        else if (m.net.cfg.guidance) {
          if (m.control === 'grey') g = makeImage(x.height, x.width, new Float32Array(x.height * x.width * 3).fill(0.5));
          else if (m.control === 'other-photo') {
            if (images.length < 2) throw new Error("evaluateModels: the 'other-photo' control needs at least 2 images");
            const other = images[(i + 1) % images.length];
            g = await guidanceOf(m.guidance, other, spec, degradeForEval(other, spec));
          } else g = await guidanceOf(m.guidance, img, spec, x);
          restored = restoreImage(m.net, x, g);
        } else restored = restoreImage(m.net, x);
        const mo = { quantize: true, yChannel: y };
        const thumb = { out: thumbnailPsnr(restored, img.clean, CONTENT_THUMB), ...(g ? { g: thumbnailPsnr(g, img.clean, CONTENT_THUMB) } : {}) };
        out.push({ model: m.name, image: img.id, task: spec.name, psnr: psnr(img.clean, restored, mo), ssim: ssim(img.clean, restored, mo), channel: y ? 'y' : 'rgb', thumb });
        opts.onProgress?.(++done, total);
      }
    }
  }
  return out;
}

export interface Stat {
  mean: number;
  std: number;
  n: number;
}

/** A comparison table: models × tasks (+ average), PSNR/SSIM means, per-image deltas vs a baseline. */
export interface TableResult {
  /** 'table1' | 'single-<task>' | 'table9' */
  kind: string;
  title: string;
  /** column names (task names) and 'average' */
  tasks: string[];
  models: string[];
  baseline: string;
  /** guidance source per model ('none' when unguided) */
  guidance: Record<string, string>;
  /** notes printed above the tables (stand-in warnings, protocol) */
  notes: string[];
  records: EvalRecord[];
  /** model → task | 'average' → mean PSNR / SSIM over images ('average' = mean of the task means) */
  means: Record<string, Record<string, { psnr: number; ssim: number }>>;
  /** per image and task: model − baseline ('average' = mean over tasks of that image's deltas) */
  deltas: Array<{ model: string; image: string; task: string; dPsnr: number; dSsim: number }>;
  /** model → task | 'average' → mean ± std of the per-image deltas */
  deltaStats: Record<string, Record<string, { psnr: Stat; ssim: Stat }>>;
  markdown: string;
  html: string;
}

function stat(xs: number[]): Stat {
  const { mean, std } = meanStd(xs);
  return { mean, std, n: xs.length };
}

/**
 * Build a comparison table from records. `columnLabel` renames columns (Table 9: the model's N).
 * @param baseline the model the deltas are taken against
 */
export function buildTable(kind: string, title: string, records: EvalRecord[], models: EvalModel[], baseline: string, specs: TaskSpec[], extraNotes: string[] = []): TableResult {
  const tasks = specs.map((s) => s.name);
  const names = models.map((m) => m.name);
  const imgs = [...new Set(records.map((r) => r.image))];
  const get = (m: string, img: string, t: string) => records.find((r) => r.model === m && r.image === img && r.task === t);
  const means: TableResult['means'] = {};
  for (const m of names) {
    means[m] = {};
    for (const t of tasks) {
      const rs = records.filter((r) => r.model === m && r.task === t);
      means[m][t] = { psnr: avg(rs.map((r) => r.psnr)), ssim: avg(rs.map((r) => r.ssim)) };
    }
    means[m].average = { psnr: avg(tasks.map((t) => means[m][t].psnr)), ssim: avg(tasks.map((t) => means[m][t].ssim)) };
  }
  const deltas: TableResult['deltas'] = [];
  const deltaStats: TableResult['deltaStats'] = {};
  for (const m of names.filter((n) => n !== baseline)) {
    deltaStats[m] = {};
    const perImageAvg = new Map<string, { p: number[]; s: number[] }>();
    for (const t of tasks) {
      const dp: number[] = [];
      const ds: number[] = [];
      for (const img of imgs) {
        const a = get(m, img, t);
        const b = get(baseline, img, t);
        if (!a || !b) continue;
        const d = { model: m, image: img, task: t, dPsnr: a.psnr - b.psnr, dSsim: a.ssim - b.ssim };
        deltas.push(d);
        dp.push(d.dPsnr);
        ds.push(d.dSsim);
        const e = perImageAvg.get(img) ?? { p: [], s: [] };
        e.p.push(d.dPsnr);
        e.s.push(d.dSsim);
        perImageAvg.set(img, e);
      }
      deltaStats[m][t] = { psnr: stat(dp), ssim: stat(ds) };
    }
    const ap: number[] = [];
    const as: number[] = [];
    for (const [img, e] of perImageAvg) {
      if (e.p.length < tasks.length) continue; // a model without some task (a classical row) has no average
      const d = { model: m, image: img, task: 'average', dPsnr: avg(e.p), dSsim: avg(e.s) };
      deltas.push(d);
      ap.push(d.dPsnr);
      as.push(d.dSsim);
    }
    deltaStats[m].average = { psnr: stat(ap), ssim: stat(as) };
  }
  const guidance = Object.fromEntries(models.map((m) => [m.name, m.net?.cfg.guidance ? (m.control ? `${m.guidance.name} (${m.control} control)` : m.guidance.name) : 'none']));
  const notes = [
    ...new Set(models.filter((m) => m.net?.cfg.guidance && m.guidance.standIn).map((m) => `⚠ ${m.name}: ${m.guidance.standIn}`)),
    `${imgs.length} validation image(s); PSNR (dB) / SSIM, BasicSR (Gaussian 11×11 σ1.5, crop 0, quantised output); ${specs.some(usesY) ? 'derain on Y (BT.601), the rest on RGB' : 'RGB'}; noise in float mode, seeded per image.`,
    ...extraNotes,
  ];
  const result: TableResult = { kind, title, tasks: [...tasks, 'average'], models: names, baseline, guidance, notes, records, means, deltas, deltaStats, markdown: '', html: '' };
  renderTables(result);
  return result;
}

function avg(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

function fmtPair(p: number, s: number): string {
  if (Number.isNaN(p)) return '—';
  return `${p.toFixed(2)}/${s.toFixed(3)}`;
}

function fmtDelta(st: Stat, digits: number, unit = ''): string {
  if (st.n === 0) return '—';
  const sign = st.mean >= 0 ? '+' : '−';
  return `${sign}${Math.abs(st.mean).toFixed(digits)} ± ${st.std.toFixed(digits)}${unit}`;
}

/** The row sets of a table: means, delta summary, per-image deltas, and what outputs and G show at 4×4 (`contentRows`). */
export function tableRows(r: TableResult): { means: Row[]; deltaSummary: Row[]; perImage: Row[]; content: Row[] } {
  const means = r.models.map((m) => ({ method: m, guidance: r.guidance[m] ?? 'none', ...Object.fromEntries(r.tasks.map((t) => [t, fmtPair(r.means[m][t].psnr, r.means[m][t].ssim)])) }));
  const deltaSummary = Object.entries(r.deltaStats).flatMap(([m, per]) => [
    { [`Δ vs ${r.baseline}`]: `${m}: PSNR (dB)`, ...Object.fromEntries(r.tasks.map((t) => [t, fmtDelta(per[t].psnr, 2)])) },
    { [`Δ vs ${r.baseline}`]: `${m}: SSIM`, ...Object.fromEntries(r.tasks.map((t) => [t, fmtDelta(per[t].ssim, 4)])) },
  ]);
  const perImage: Row[] = [];
  for (const m of Object.keys(r.deltaStats)) {
    const imgs = [...new Set(r.deltas.filter((d) => d.model === m).map((d) => d.image))];
    for (const img of imgs) {
      const row: Row = { model: m, image: img };
      for (const t of r.tasks) {
        const d = r.deltas.find((x) => x.model === m && x.image === img && x.task === t);
        row[t] = d ? `${d.dPsnr >= 0 ? '+' : '−'}${Math.abs(d.dPsnr).toFixed(2)}` : null;
      }
      perImage.push(row);
    }
  }
  return { means, deltaSummary, perImage, content: contentRows(r) };
}

/**
 * Mean thumbnail PSNR (`EvalRecord.thumb`) per task: each model's output, and the G each guided row was
 * given. Empty without a guided row. An infinite value (identical thumbnails) counts as 99 dB (finitePsnr).
 */
function contentRows(r: TableResult): Row[] {
  const rows: Row[] = [];
  if (!r.records.some((x) => x.thumb?.g !== undefined)) return rows;
  const tasks = r.tasks.filter((t) => t !== 'average');
  for (const m of r.models) {
    const rs = r.records.filter((x) => x.model === m && x.thumb);
    if (!rs.length) continue;
    const cell = (pick: (x: EvalRecord) => number | undefined) => {
      const means = tasks.map((t) => avg(rs.filter((x) => x.task === t).map(pick).filter((v): v is number => v !== undefined).map(finitePsnr)));
      const fmt = (v: number) => (Number.isNaN(v) ? '—' : v.toFixed(2));
      return { ...Object.fromEntries(tasks.map((t, i) => [t, fmt(means[i])])), average: fmt(avg(means)) };
    };
    rows.push({ [CONTENT_COL]: `${m}: output`, ...cell((x) => x.thumb!.out) });
    if (rs.some((x) => x.thumb!.g !== undefined)) rows.push({ [CONTENT_COL]: `${m}: its G`, ...cell((x) => x.thumb!.g) });
  }
  return rows;
}

const CONTENT_COL = `${CONTENT_THUMB}×${CONTENT_THUMB} thumbnail PSNR to Y (dB)`;
const CONTENT_TITLE = `What the images show at ${CONTENT_THUMB}×${CONTENT_THUMB} (area-averaged thumbnails, PSNR to the clean photo's, RGB): G helps only where it shows the scene more truly than the unguided output`;

function renderTables(r: TableResult): void {
  const rows = tableRows(r);
  const cols = ['method', 'guidance', ...r.tasks];
  const dcols = [`Δ vs ${r.baseline}`, ...r.tasks];
  const icols = ['model', 'image', ...r.tasks];
  const ccols = [CONTENT_COL, ...r.tasks];
  r.markdown = [
    `## ${r.title}`,
    '',
    ...r.notes.map((n) => `> ${n}`),
    '',
    markdownTable(rows.means, { columns: cols }),
    '',
    `**Per-image deltas (model − ${r.baseline}), mean ± std over images**`,
    '',
    rows.deltaSummary.length ? markdownTable(rows.deltaSummary, { columns: dcols }) : '_no other model_',
    '',
    '**Per-image PSNR deltas (dB)**',
    '',
    rows.perImage.length ? markdownTable(rows.perImage, { columns: icols }) : '_no other model_',
    '',
    ...(rows.content.length ? [`**${CONTENT_TITLE}**`, '', markdownTable(rows.content, { columns: ccols }), ''] : []),
  ].join('\n');
  r.html = [
    `<h3>${escapeHtml(r.title)}</h3>`,
    ...r.notes.map((n) => `<p style="margin:2px 0">${escapeHtml(n)}</p>`),
    htmlTable(rows.means, { columns: cols }),
    `<p><b>Per-image deltas (model − ${escapeHtml(r.baseline)}), mean ± std over images</b></p>`,
    rows.deltaSummary.length ? htmlTable(rows.deltaSummary, { columns: dcols }) : '<p>no other model</p>',
    '<p><b>Per-image PSNR deltas (dB)</b></p>',
    rows.perImage.length ? htmlTable(rows.perImage, { columns: icols }) : '<p>no other model</p>',
    ...(rows.content.length ? [`<p><b>${escapeHtml(CONTENT_TITLE)}</b></p>`, htmlTable(rows.content, { columns: ccols })] : []),
  ].join('\n');
}

/**
 * Table 1 (all-in-one: dehaze, derain, denoise σ15/25/50, average; PSNR/SSIM) for a backbone
 * without and with guidance (same data and steps). Deltas: guided − unguided. The degraded input is
 * a reference row, and (unless `classical: false`) the classical methods of ./classical are the last
 * row ('—' for rain and the average).
 */
export async function table1(args: {
  unguided: GuidedRestorer;
  guided: GuidedRestorer;
  guidance: GuidanceSource;
  images: EvalImage[];
  /** also the guided model with another photo's guidance and with a grey one (does it use G's content?) */
  controls?: boolean;
  /** add the classical reference row (default true) */
  classical?: boolean;
  onProgress?: (d: number, t: number) => void;
  /** G of the inputs made first, in batches: (done, total) after each batch */
  onGuidance?: (d: number, t: number) => void;
}): Promise<TableResult> {
  const type = args.unguided.cfg.backbone.type;
  const models: EvalModel[] = [INPUT_MODEL, { name: `${type}`, net: args.unguided, guidance: noGuidance }, { name: `${type} + guidance`, net: args.guided, guidance: args.guidance }];
  if (args.controls) {
    models.push({ name: `${type} + another photo's guidance`, net: args.guided, guidance: args.guidance, control: 'other-photo' });
    models.push({ name: `${type} + grey guidance`, net: args.guided, guidance: args.guidance, control: 'grey' });
  }
  const classical = args.classical === false ? null : classicalModel(TABLE1_TASKS);
  if (classical) models.push(classical);
  const recs = await evaluateModels(models, TABLE1_TASKS, args.images, { onProgress: args.onProgress, onGuidance: args.onGuidance });
  return buildTable('table1', `Table 1 (all-in-one restoration, ${type}): without vs with guidance`, recs, models, models[1].name, TABLE1_TASKS, classical ? classicalNotes(TABLE1_TASKS) : []);
}

/**
 * A single-task table (noise σ15/25/50, rain on Y, haze, motion, defocus) for a backbone without and
 * with guidance; unless `classical: false`, the task's classical method (./classical) as the last row
 * (none for rain, motion, defocus: a note says why).
 */
export async function singleTaskTable(args: { task: Task; unguided: GuidedRestorer; guided?: GuidedRestorer; guidance?: GuidanceSource; images: EvalImage[]; classical?: boolean; onProgress?: (d: number, t: number) => void; onGuidance?: (d: number, t: number) => void }): Promise<TableResult> {
  const type = args.unguided.cfg.backbone.type;
  const specs = singleTaskSpecs(args.task);
  const models: EvalModel[] = [INPUT_MODEL, { name: type, net: args.unguided, guidance: noGuidance }];
  if (args.guided) {
    if (!args.guidance) throw new Error('singleTaskTable: a guided model needs its guidance source');
    models.push({ name: `${type} + guidance`, net: args.guided, guidance: args.guidance });
  }
  const classical = args.classical === false ? null : classicalModel(specs);
  if (classical) models.push(classical);
  const recs = await evaluateModels(models, specs, args.images, { onProgress: args.onProgress, onGuidance: args.onGuidance });
  return buildTable(`single-${args.task}`, `Single-task ${args.task} (${type}): without vs with guidance`, recs, models, models[1].name, specs, args.classical === false ? [] : classicalNotes(specs));
}

/** Table 9's word counts. */
export const TABLE9_N = [5, 10, 20, 30, 40] as const;

/**
 * Table 9: effect of N (words of E_txt) — the baseline without guidance, then one guided model per N
 * with the guidance of an N-word mapper. `guidedFor(N)` returns that model's restorer and source
 * (the paper trains one restorer per N; passing the same restorer for every N measures only the
 * guidance's effect at test time — say which in `note`).
 */
export async function table9(args: {
  unguided: GuidedRestorer;
  guidedFor: (n: number) => { net: GuidedRestorer; guidance: GuidanceSource } | Promise<{ net: GuidedRestorer; guidance: GuidanceSource }>;
  specs: TaskSpec[];
  images: EvalImage[];
  ns?: readonly number[];
  note?: string;
  onProgress?: (d: number, t: number) => void;
  /** G of the inputs made first, in batches: (done, total) after each batch */
  onGuidance?: (d: number, t: number) => void;
}): Promise<TableResult> {
  const ns = args.ns ?? TABLE9_N;
  const models: EvalModel[] = [{ name: 'baseline', net: args.unguided, guidance: noGuidance }];
  for (const n of ns) {
    const m = await args.guidedFor(n);
    models.push({ name: `N=${n}`, net: m.net, guidance: m.guidance });
  }
  const recs = await evaluateModels(models, args.specs, args.images, { onProgress: args.onProgress, onGuidance: args.onGuidance });
  return buildTable('table9', `Table 9 (effect of N, ${args.unguided.cfg.backbone.type})`, recs, models, 'baseline', args.specs, args.note ? [args.note] : []);
}

/** Write `<outDir>/<name>.md`, `.html` and `.json` (atomic); returns the paths. */
export function writeTables(outDir: string, name: string, r: TableResult): { markdown: string; html: string; json: string } {
  const files = { markdown: path.join(outDir, `${name}.md`), html: path.join(outDir, `${name}.html`), json: path.join(outDir, `${name}.json`) };
  writeFileAtomic(files.markdown, r.markdown);
  writeFileAtomic(files.html, `<!doctype html><meta charset="utf-8"><title>${escapeHtml(r.title)}</title>\n${r.html}\n`);
  const { markdown: _m, html: _h, ...data } = r;
  writeFileAtomic(files.json, JSON.stringify(data, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2) + '\n');
  return files;
}
