/**
 * Does textual restoration remove the degradation from the guidance? (the
 * paper's Fig. 1): for validation photos degraded by each task, generate G(E_txt) and G(E'_txt)
 * with the same seed and measure the degradation statistic of each task —
 *   noise, rain → high-frequency energy (Laplacian, lib/metrics/stats.ts), haze → dark channel,
 *   motion, defocus → high-frequency energy (blur LOWERS it: there the ratio should rise towards clean).
 * G(E_txt(Y)) of the clean photo (same seed) is the reference: the level of each statistic this
 * text-to-image model produces without any degradation.
 * Also a nearest-centroid task classifier (leave-one-photo-out) on the statistics of the guidance:
 * if G(E'_txt) is degradation-free, the task is harder to tell from it than from G(E_txt).
 */
import * as tf from '@tensorflow/tfjs';
import { TextToImage } from '../t2i/model';
import { unitGlobalFeatures } from '../models/image_encoder';
import { loadPhotos, centerCrop } from '../data/patches';
import type { PhotoSplit } from '../data/corpus';
import { degrade, Task, DegradeOptions, TASKS } from '../data/degrade';
import { clip01, RGBImage } from '../data/image';
import { darkChannel, highFrequencyEnergy } from '../metrics/stats';
import { thumbnailRanks, thumbnailPsnr, summariseRanks, finitePsnr } from '../metrics/content';
import { GuidanceModel } from './model';
import { generateFromWords, guidanceBatchSize, GuidanceOptions, imageWords, layoutMapImages } from './pipeline';

/** The tasks `guidanceDegradationEffect` measures unless told otherwise. */
export const GUIDANCE_EFFECT_TASKS: readonly Task[] = ['noise', 'rain', 'haze'];

/** Y degraded by `task` with `seed` (noise: σ = `noiseSigma`, default 25), clipped to [0,1]. */
function degradeFor(y: RGBImage, task: Task, seed: number, noiseSigma = 25): RGBImage {
  return clip01(degrade(y, { task, seed, ...(task === 'noise' ? { sigma: noiseSigma } : {}) } as DegradeOptions).image);
}

/** The statistic that measures each task's degradation. */
export const TASK_STATISTIC: Record<Task, { name: 'hfEnergy' | 'darkChannel'; f: (img: RGBImage) => number }> = {
  noise: { name: 'hfEnergy', f: highFrequencyEnergy },
  rain: { name: 'hfEnergy', f: highFrequencyEnergy },
  haze: { name: 'darkChannel', f: (img) => darkChannel(img, 7) },
  motion: { name: 'hfEnergy', f: highFrequencyEnergy },
  defocus: { name: 'hfEnergy', f: highFrequencyEnergy },
};

export interface GuidanceEffectRow {
  photoId: string;
  task: Task;
  statistic: 'hfEnergy' | 'darkChannel';
  /** statistic of the clean crop Y, the degraded input X, G(E_txt), G(E'_txt) */
  clean: number;
  input: number;
  raw: number;
  restored: number;
  /** statistic of G(E_txt(Y)), the guidance of the CLEAN photo: what degradation-free guidance looks
   * like for this text-to-image model (its own haze / texture level), the floor for `restored` */
  cleanGuidance: number;
  /** [log HF energy, dark channel] of G(E_txt) and G(E'_txt), for the task classifier */
  featRaw: [number, number];
  featRestored: [number, number];
  /** content: rank of the photo's own clean crop among all validation crops, by the frozen image
   * encoder's global feature (cosine) of G(E_txt) / G(E'_txt); 1 = the guidance looks most like its
   * own photo */
  rankRaw: number;
  rankRestored: number;
  /** content by layout: rank of the photo's own clean crop among all validation crops by 16×16 thumbnail
   * PSNR (lib/metrics/content.ts) of G(E_txt), G(E'_txt) and of the clean photo's own G(E_txt(Y)) */
  thumbRankRaw: number;
  thumbRankRestored: number;
  thumbRankCleanGuidance: number;
  /**
   * PSNR (dB) of each G's 4×4 area thumbnail to the clean crop's: how truly G shows the scene's colour
   * layout (a guided restorer can gain from G's content only where G shows it more truly than its own
   * output does; `tdr eval` reports the outputs' 4×4 PSNR under Table 1)
   */
  thumb4Raw: number;
  thumb4Restored: number;
  thumb4CleanGuidance: number;
  /** the same 4×4 PSNR of the degraded input X itself: G(E'_txt(X)) below it shows the scene less truly than X does */
  thumb4Input: number;
  /**
   * with a text-to-image model that has a layout map: the same 4×4 PSNR of the words' layout map decoded
   * alone (layoutMapImages: where G starts, no diffusion) of E_txt(X), E'_txt(X) and E_txt(Y) — what the
   * words carry before the sampler
   */
  map4Raw?: number;
  map4Restored?: number;
  map4CleanGuidance?: number;
}

export interface GuidanceEffect {
  rows: GuidanceEffectRow[];
  /** per task: mean over photos of stat(G(E'_txt)) / stat(G(E_txt)) (goal for noise, haze: ≤ 0.8) */
  ratio: Partial<Record<Task, number>>;
  /** leave-one-photo-out nearest-centroid task accuracy from G(E_txt) and from G(E'_txt) */
  taskAccuracy: { raw: number; restored: number };
  /** content retrieval over all rows: share of rank 1, mean rank, among `photos` candidates (frozen-encoder cosine) */
  content: { photos: number; raw: { top1: number; meanRank: number }; restored: { top1: number; meanRank: number } };
  /** the same by 16×16 thumbnail PSNR, also for the clean photo's guidance G(E_txt(Y)) (one per photo) */
  thumbnail: { photos: number; raw: { top1: number; meanRank: number }; restored: { top1: number; meanRank: number }; cleanGuidance: { top1: number; meanRank: number }; byTask: Array<{ task: Task; raw: { top1: number; meanRank: number }; restored: { top1: number; meanRank: number } }> };
  /** mean over rows of the 4×4 thumbnail PSNR to the clean crop (GuidanceEffectRow.thumb4*), per task too */
  thumb4: { raw: number; restored: number; cleanGuidance: number; input: number; byTask: Array<{ task: Task; raw: number; restored: number; input: number }>; restoredBelowInput: number };
  /** the same for the words' layout maps (GuidanceEffectRow.map4*), when the text-to-image model has one */
  map4?: { raw: number; restored: number; cleanGuidance: number; byTask: Array<{ task: Task; raw: number; restored: number }> };
}

/**
 * @param opts.tasks default GUIDANCE_EFFECT_TASKS (noise, rain, haze); @param opts.limit photos (default all)
 * @param opts.split 'val' (default: photos no stage has seen) or 'train' (photos every stage trained on: how much
 *   truer G is where the models have seen the scene, i.e. what a restorer trained on those photos learns to expect)
 * @param opts.noiseSigma σ of the noise task (default 25)
 */
export async function guidanceDegradationEffect(model: GuidanceModel, t2i: TextToImage, opts: GuidanceOptions & { tasks?: readonly Task[]; limit?: number; split?: PhotoSplit; noiseSigma?: number; onImage?: (i: number, n: number) => void } = {}): Promise<GuidanceEffect> {
  const tasks = opts.tasks ?? GUIDANCE_EFFECT_TASKS;
  const photos = await loadPhotos(opts.split ?? 'val', t2i.cfg.photoShortSide, opts.limit);
  const rows: GuidanceEffectRow[] = [];
  const feat = (g: RGBImage): [number, number] => [Math.log(1 + highFrequencyEnergy(g)), darkChannel(g, 7)];
  const ys = photos.map((p) => centerCrop(p.image, t2i.cfg.imageSize));
  const refs = await unitGlobalFeatures(ys);
  const rankOf = (g: Float32Array, own: number) => {
    const sims = refs.map((r) => r.reduce((a, x, i) => a + x * g[i], 0));
    return 1 + sims.filter((v, i) => i !== own && v > sims[own]).length;
  };
  const thumbRank = (g: RGBImage, own: number) => thumbnailRanks([g], ys, [own])[0].rank;
  const thumb4 = (g: RGBImage, own: number) => thumbnailPsnr(g, ys[own], 4);
  // in batches of guidanceBatchSize, the words of each image computed once (imageWords): G(E_txt) and, for
  // degraded inputs, G(E'_txt) (each row from its own seeded noise, as if alone), and the words' layout maps
  // (no diffusion) when the text-to-image model has them
  const bs = guidanceBatchSize();
  const withMaps = t2i.hasLayoutMap;
  interface Drawn { raw: RGBImage; clean?: RGBImage; mapRaw?: RGBImage; mapClean?: RGBImage }
  const drawAll = async (imgs: RGBImage[], cleaned: boolean, onDone?: (n: number) => void): Promise<Drawn[]> => {
    const out: Drawn[] = [];
    for (let i = 0; i < imgs.length; i += bs) {
      const w = await imageWords(model, imgs.slice(i, i + bs));
      try {
        const raw = await generateFromWords(model, t2i, w.raw, opts);
        const clean = cleaned ? await generateFromWords(model, t2i, w.clean, opts) : undefined;
        const mapRaw = withMaps ? layoutMapImages(model, t2i, w.raw) : undefined;
        const mapClean = withMaps && cleaned ? layoutMapImages(model, t2i, w.clean) : undefined;
        out.push(...raw.map((r, j) => ({ raw: r, clean: clean?.[j], mapRaw: mapRaw?.[j], mapClean: mapClean?.[j] })));
      } finally {
        tf.dispose([w.raw, w.clean]);
      }
      onDone?.(out.length);
    }
    return out;
  };
  const jobs = photos.flatMap((p, pi) => tasks.map((task) => ({ pi, task, x: degradeFor(ys[pi], task, 5000 + pi * 17 + TASKS.indexOf(task), opts.noiseSigma) })));
  const total = jobs.length;
  const xs = jobs.map((j) => j.x);
  const drawnY = await drawAll(ys, false);
  const gys = drawnY.map((d) => d.raw);
  const cleanGuidanceRanks = gys.map((gy, pi) => thumbRank(gy, pi));
  const drawnX = await drawAll(xs, true, (n) => opts.onImage?.(n, total));
  const raws = drawnX.map((d) => d.raw);
  const restoreds = drawnX.map((d) => d.clean!);
  const maps = withMaps ? { x: drawnX.map((d) => ({ raw: d.mapRaw!, clean: d.mapClean! })), y: drawnY.map((d) => d.mapRaw!) } : undefined;
  for (const [k, { pi, task, x }] of jobs.entries()) {
    const [y, gy, raw, restored] = [ys[pi], gys[pi], raws[k], restoreds[k]];
    const st = TASK_STATISTIC[task];
    const [fr, fc] = await unitGlobalFeatures([raw, restored]);
    rows.push({
      photoId: photos[pi].entry.id,
      task,
      statistic: st.name,
      clean: st.f(y),
      input: st.f(x),
      raw: st.f(raw),
      restored: st.f(restored),
      cleanGuidance: st.f(gy),
      featRaw: feat(raw),
      featRestored: feat(restored),
      rankRaw: rankOf(fr, pi),
      rankRestored: rankOf(fc, pi),
      thumbRankRaw: thumbRank(raw, pi),
      thumbRankRestored: thumbRank(restored, pi),
      thumbRankCleanGuidance: cleanGuidanceRanks[pi],
      thumb4Raw: thumb4(raw, pi),
      thumb4Restored: thumb4(restored, pi),
      thumb4CleanGuidance: thumb4(gy, pi),
      thumb4Input: thumb4(x, pi),
      ...(maps ? { map4Raw: thumb4(maps.x[k].raw, pi), map4Restored: thumb4(maps.x[k].clean, pi), map4CleanGuidance: thumb4(maps.y[pi], pi) } : {}),
    });
  }
  const ratio: Partial<Record<Task, number>> = {};
  for (const t of tasks) {
    const r = rows.filter((x) => x.task === t && x.raw > 0);
    ratio[t] = r.reduce((s, x) => s + x.restored / x.raw, 0) / Math.max(1, r.length);
  }
  const content = (key: 'rankRaw' | 'rankRestored' | 'thumbRankRaw' | 'thumbRankRestored', of = rows) => ({ top1: of.filter((r) => r[key] === 1).length / of.length, meanRank: of.reduce((a, r) => a + r[key], 0) / of.length });
  const byTask = tasks.map((task) => {
    const of = rows.filter((r) => r.task === task);
    return { task, raw: content('thumbRankRaw', of), restored: content('thumbRankRestored', of) };
  });
  const cg = summariseRanks(cleanGuidanceRanks.map((rank) => ({ rank })));
  type Key4 = 'thumb4Raw' | 'thumb4Restored' | 'thumb4CleanGuidance' | 'thumb4Input' | 'map4Raw' | 'map4Restored' | 'map4CleanGuidance';
  const mean4 = (key: Key4, of = rows) => of.reduce((a, r) => a + finitePsnr(r[key] ?? NaN), 0) / of.length;
  // one G(E_txt(Y)) per photo (every task's row repeats it)
  const summary4 = (raw: Key4, restored: Key4, clean: Key4) => ({
    raw: mean4(raw),
    restored: mean4(restored),
    cleanGuidance: mean4(clean, rows.filter((r) => r.task === tasks[0])),
    byTask: tasks.map((task) => ({ task, raw: mean4(raw, rows.filter((r) => r.task === task)), restored: mean4(restored, rows.filter((r) => r.task === task)) })),
  });
  return {
    rows,
    ratio,
    taskAccuracy: { raw: nearestCentroidAccuracy(rows, 'featRaw'), restored: nearestCentroidAccuracy(rows, 'featRestored') },
    content: { photos: photos.length, raw: content('rankRaw'), restored: content('rankRestored') },
    thumbnail: { photos: photos.length, raw: content('thumbRankRaw'), restored: content('thumbRankRestored'), cleanGuidance: { top1: cg.top1, meanRank: cg.meanRank }, byTask },
    thumb4: (() => {
      const t = summary4('thumb4Raw', 'thumb4Restored', 'thumb4CleanGuidance');
      return {
        ...t,
        input: mean4('thumb4Input'),
        byTask: t.byTask.map((b) => ({ ...b, input: mean4('thumb4Input', rows.filter((r) => r.task === b.task)) })),
        restoredBelowInput: rows.filter((r) => r.thumb4Restored < r.thumb4Input).length / rows.length, // share of rows where G(E'_txt(X)) shows the scene less truly than X
      };
    })(),
    ...(maps ? { map4: summary4('map4Raw', 'map4Restored', 'map4CleanGuidance') } : {}),
  };
}

/** Per task: clean … cleanGuidance are means over photos of each statistic (see GuidanceEffectRow). */
export interface GuidanceEffectSummary extends Pick<GuidanceEffectRow, 'task' | 'statistic' | 'clean' | 'input' | 'raw' | 'restored' | 'cleanGuidance'> {
  /** mean over photos of restored / raw (GuidanceEffect.ratio) */
  ratio: number;
  /** share of photos whose G(E'_txt) has the lower statistic */
  lowerFraction: number;
  /** (raw − restored) / (raw − cleanGuidance) of the means: the share of G(E_txt)'s excess over the
   * clean photo's guidance that M_clean removed; NaN when G(E_txt) is < 10 % above it (no clear excess) */
  excessRemoved: number;
  photos: number;
}

/** One row per task of a `guidanceDegradationEffect` result (the tables of `tdr guide-check` and notebook 05). */
export function summariseGuidanceEffect(eff: GuidanceEffect): GuidanceEffectSummary[] {
  const tasks = [...new Set(eff.rows.map((r) => r.task))];
  return tasks.map((task) => {
    const rs = eff.rows.filter((r) => r.task === task);
    const mean = (k: 'clean' | 'input' | 'raw' | 'restored' | 'cleanGuidance') => rs.reduce((a, r) => a + r[k], 0) / rs.length;
    const m = { clean: mean('clean'), input: mean('input'), raw: mean('raw'), restored: mean('restored'), cleanGuidance: mean('cleanGuidance') };
    const excessRemoved = m.raw > 1.1 * m.cleanGuidance ? (m.raw - m.restored) / (m.raw - m.cleanGuidance) : NaN;
    return { task, statistic: rs[0].statistic, ...m, ratio: eff.ratio[task] ?? NaN, lowerFraction: rs.filter((r) => r.restored < r.raw).length / rs.length, excessRemoved, photos: rs.length };
  });
}

/** Leave-one-photo-out nearest-centroid classification of the task from 2-D features (standardised). */
export function nearestCentroidAccuracy(rows: readonly GuidanceEffectRow[], key: 'featRaw' | 'featRestored'): number {
  if (rows.length === 0) return NaN;
  const dims = rows[0][key].length;
  const mean = Array.from({ length: dims }, (_, j) => rows.reduce((s, r) => s + r[key][j], 0) / rows.length);
  const sd = Array.from({ length: dims }, (_, j) => Math.sqrt(rows.reduce((s, r) => s + (r[key][j] - mean[j]) ** 2, 0) / rows.length) || 1);
  const z = (r: GuidanceEffectRow) => r[key].map((v, j) => (v - mean[j]) / sd[j]);
  let hit = 0;
  for (const r of rows) {
    const train = rows.filter((q) => q.photoId !== r.photoId);
    let best = '';
    let bd = Infinity;
    for (const t of new Set(train.map((q) => q.task))) {
      const qs = train.filter((q) => q.task === t).map(z);
      const c = Array.from({ length: dims }, (_, j) => qs.reduce((s, q) => s + q[j], 0) / qs.length);
      const d = z(r).reduce((s, v, j) => s + (v - c[j]) ** 2, 0);
      if (d < bd) {
        bd = d;
        best = t;
      }
    }
    if (best === r.task) hit++;
  }
  return hit / rows.length;
}

export interface WordDistanceRow {
  task: Task;
  /** mean over photos of RMS(E_txt(X) − E_txt(Y)): the degraded image's words vs the clean image's */
  before: number;
  /** mean over photos of RMS(E'_txt(X) − E_txt(Y)): after textual restoration (Eq. 3) */
  after: number;
  /** after / before: < 1 = M_clean moved the words towards the clean image's */
  ratio: number;
  photos: number;
}

/**
 * Textual restoration measured in text space (Sec. 3.2, Eq. 3): for clean crops Y and their degraded
 * versions X of each task, how far E_txt(X) and E'_txt(X) lie from E_txt(Y) (RMS over the N×D
 * pseudo-word values). Degradation seeds are 40 + photo index, σ = `noiseSigma` (25) for noise.
 * @param ys clean images, RGB in [0,1]
 */
export async function wordDistances(model: GuidanceModel, ys: RGBImage[], opts: { tasks?: readonly Task[]; noiseSigma?: number } = {}): Promise<WordDistanceRow[]> {
  if (ys.length === 0) throw new Error('wordDistances: no clean images given');
  const rms = (a: Float32Array, b: Float32Array, off: number, n: number) => {
    let s = 0;
    for (let j = 0; j < n; j++) s += (a[off + j] - b[off + j]) ** 2;
    return Math.sqrt(s / n);
  };
  const clean = await imageWords(model, ys);
  const eY = clean.raw.dataSync() as Float32Array;
  const n = clean.raw.shape[1] * clean.raw.shape[2];
  clean.raw.dispose();
  clean.clean.dispose();
  const rows: WordDistanceRow[] = [];
  for (const task of opts.tasks ?? TASKS) {
    const xs = ys.map((y, i) => degradeFor(y, task, 40 + i, opts.noiseSigma));
    const w = await imageWords(model, xs);
    const eX = w.raw.dataSync() as Float32Array;
    const eXc = w.clean.dataSync() as Float32Array;
    w.raw.dispose();
    w.clean.dispose();
    let before = 0;
    let after = 0;
    for (let i = 0; i < xs.length; i++) {
      before += rms(eX, eY, i * n, n);
      after += rms(eXc, eY, i * n, n);
    }
    rows.push({ task, before: before / xs.length, after: after / xs.length, ratio: after / before, photos: xs.length });
  }
  return rows;
}
