/**
 * Training data of guided restoration (stage 3; paper Sec. 3.3): (degraded X, clean Y,
 * guidance G) patches from the training photos.
 *
 * Per sample (all randomness from the batch rng, so a batch is a function of (seed, step) and can be
 * split across data-parallel workers): scale (when there are several), photo, patch position, flip,
 * task (uniform over the task set, `sampleTask`, or by `taskWeights`) and degradation seed.
 * Y = the clean patch, X = degrade(Y).
 *
 * Guidance: G is generated ONCE per (training photo, task) from a fixed degraded version of the whole
 * photo (seed = hash(photo, task)) and cached (`buildGuidanceCache`, a .tdrc file in the run folder,
 * which workers and resumed runs reload) — as the official data has one pre-generated `ref/` image
 * per LQ image. At train time the official code (`models/image_restoration_ref_model.py`) unfolds the
 * guidance into candidate patches of the LQ patch size with stride patchSize/4, embeds LQ patch and
 * candidates with a frozen DINOv2 ViT-B/14 and takes the candidate of highest cosine similarity of
 * the global features. We keep the unfold, the stride and the top-1 cosine rule, but the feature is a
 * FIXED, weight-free descriptor (`patchFeature`: an 8×8 area-averaged thumbnail per RGB channel,
 * each channel mean-subtracted, the 192 values L2-normalised), because
 *   1. no DINOv2 is reachable here, and the restorer's own matcher encoder is random at first and
 *      frozen for `paramFixIterations` steps, so its features would mean little early on and the
 *      batches would depend on the weights;
 *   2. it is cheap enough to run in getBatch of every worker (the candidates' features are computed
 *      once per guidance image);
 *   3. area averaging suppresses noise and rain streaks, and the per-channel mean subtraction removes
 *      the haze airlight offset, so a degraded patch still finds its clean counterpart.
 * The chosen G crop gets the sample's flip (X and Y are cropped unflipped, matched, then flipped).
 * Test time passes the whole G (eval.ts).
 *
 * Beyond the paper (config `guidanceLowpass`, `guidanceColorJitter`; no effect on unguided runs): the G
 * crop can be made less exact in training — block-averaged by a random factor (`lowpass`), and/or given a
 * random colour transform (lib/data/color_jitter.ts). G of the training photos comes from models that
 * have seen those photos and is truer than G of an unseen photo; these keep the restorer from relying on
 * G more than G deserves at test time (docs/experiments.md §4, "Pilots: a less true G in training").
 */
import * as tf from '@tensorflow/tfjs';
import { RGBImage, makeImage } from '../data/image';
import { resizeImage } from '../data/io';
import { LoadedPhoto, crop } from '../data/patches';
import { ALL_IN_ONE_TASKS, TaskSpec, degradeWithSpec, sampleTask } from '../data/degrade';
import { loadCheckpoint, saveCheckpoint, Named } from '../util/checkpoint';
import { Rng, hashString } from '../util/rng';
import { colorJitter, type ColorJitterRanges } from '../data/color_jitter';
import { areaResize } from './tiled';
import type { TaskSet } from './config';
import { GuidanceSource, clampImage, guidanceKey } from './source';

// ---------------------------------------------------------------------------------------------
// Task sets

/** The TaskSpecs of a task set: all-in-one = ALL_IN_ONE_TASKS (noise σ15/25/50, rain, haze); a family = its default ranges (noise: σ ~ U[0,50], blind). */
export function taskSpecs(set: TaskSet): TaskSpec[] {
  if (set === 'all-in-one') return [...ALL_IN_ONE_TASKS];
  return [{ name: set, task: set, params: {} }];
}

// ---------------------------------------------------------------------------------------------
// Guidance crop selection

/** Thumbnail grid of `patchFeature` (cells per side). */
export const FEATURE_GRID = 8;

/**
 * The fixed global feature of a size×size window of `img` at (y0, x0) (see the module doc): 8×8
 * area-averaged thumbnail per channel, each channel minus its mean, L2-normalised. [192] float32.
 * A flat window gives the zero vector (cosine 0 with everything).
 */
export function patchFeature(img: RGBImage, y0: number, x0: number, size: number): Float32Array {
  if (y0 < 0 || x0 < 0 || y0 + size > img.height || x0 + size > img.width) throw new Error(`patchFeature: window ${size} at (${y0},${x0}) exceeds the image ${img.height}x${img.width}`);
  const n = FEATURE_GRID;
  if (size < n) throw new Error(`patchFeature: window ${size} is smaller than the ${n}×${n} grid`);
  const f = new Float64Array(n * n * 3);
  for (let gy = 0; gy < n; gy++) {
    const ya = Math.floor((gy * size) / n);
    const yb = Math.floor(((gy + 1) * size) / n);
    for (let gx = 0; gx < n; gx++) {
      const xa = Math.floor((gx * size) / n);
      const xb = Math.floor(((gx + 1) * size) / n);
      let r = 0, g = 0, b = 0;
      for (let y = ya; y < yb; y++) {
        let i = ((y0 + y) * img.width + x0 + xa) * 3;
        for (let x = xa; x < xb; x++, i += 3) {
          r += img.data[i];
          g += img.data[i + 1];
          b += img.data[i + 2];
        }
      }
      const cnt = (yb - ya) * (xb - xa);
      const o = (gy * n + gx) * 3;
      f[o] = r / cnt;
      f[o + 1] = g / cnt;
      f[o + 2] = b / cnt;
    }
  }
  for (let c = 0; c < 3; c++) {
    let m = 0;
    for (let k = 0; k < n * n; k++) m += f[k * 3 + c];
    m /= n * n;
    for (let k = 0; k < n * n; k++) f[k * 3 + c] -= m;
  }
  let norm = 0;
  for (const v of f) norm += v * v;
  norm = Math.sqrt(norm);
  const out = new Float32Array(f.length);
  if (norm > 1e-12) for (let i = 0; i < f.length; i++) out[i] = f[i] / norm;
  return out;
}

/** Candidate windows of a guidance image and their features. */
export interface GuidanceCandidates {
  size: number;
  /** [y0, x0] of every candidate, row-major over the unfold grid */
  positions: Array<[number, number]>;
  features: Float32Array[];
}

/**
 * Unfold G into size×size candidates with stride ⌊size/4⌋ (F.unfold: positions that fit, remainder
 * dropped) and compute their features.
 * @param g [Hg,Wg,3], Hg and Wg ≥ size
 */
export function guidanceCandidates(g: RGBImage, size: number): GuidanceCandidates {
  if (g.height < size || g.width < size) throw new Error(`guidanceCandidates: guidance ${g.height}x${g.width} is smaller than the patch ${size}`);
  const stride = Math.max(1, Math.floor(size / 4));
  const positions: Array<[number, number]> = [];
  for (let y = 0; y + size <= g.height; y += stride) for (let x = 0; x + size <= g.width; x += stride) positions.push([y, x]);
  return { size, positions, features: positions.map(([y, x]) => patchFeature(g, y, x, size)) };
}

/**
 * The candidate most cosine-similar to the LQ patch (ties: the first).
 * @param lq [size,size,3] the degraded patch
 */
export function selectGuidanceCrop(lq: RGBImage, cands: GuidanceCandidates): { index: number; y0: number; x0: number; score: number } {
  if (lq.height !== cands.size || lq.width !== cands.size) throw new Error(`selectGuidanceCrop: LQ patch ${lq.height}x${lq.width} must be ${cands.size}x${cands.size}`);
  const q = patchFeature(lq, 0, 0, cands.size);
  let best = 0;
  let bestScore = -Infinity;
  cands.features.forEach((f, i) => {
    let s = 0;
    for (let k = 0; k < f.length; k++) s += f[k] * q[k];
    if (s > bestScore) {
      bestScore = s;
      best = i;
    }
  });
  const [y0, x0] = cands.positions[best];
  return { index: best, y0, x0, score: bestScore };
}

// ---------------------------------------------------------------------------------------------
// Guidance cache of the training photos

/** The fixed degraded version of a whole training photo from which its guidance is generated. */
export function guidanceInput(photo: RGBImage, id: string, spec: TaskSpec): RGBImage {
  return degradeWithSpec(photo, spec, hashString(`guidance-input:${id}:${spec.name}`)).image;
}

/** key → G (at least patchSize on each side) */
export type GuidanceImages = Map<string, RGBImage>;

/**
 * G for every (photo, task) of the training set, from `source`; upscaled (Lanczos) when a side is
 * smaller than `patchSize`. Loaded from `file` when it exists and was made by the same source, else
 * computed and written there (atomic).
 */
export async function buildGuidanceCache(
  photos: LoadedPhoto[],
  specs: TaskSpec[],
  source: GuidanceSource,
  patchSize: number,
  file?: string,
  opts: { quiet?: boolean; steps?: number } = {},
): Promise<GuidanceImages> {
  const keys = photos.flatMap((p) => specs.map((s) => guidanceKey('train', p.entry.id, s.name)));
  if (file) {
    const loaded = tryLoadGuidanceCache(file, source.name, patchSize, source.model?.sha256 ?? null, opts.steps ?? null);
    if (loaded && keys.every((k) => loaded.has(k))) return loaded;
  }
  const cache: GuidanceImages = new Map();
  let done = 0;
  if (source.prefetch) {
    if (!opts.quiet) process.stderr.write(`guidance (${source.name}): ${keys.length} inputs, in batches\n`);
    await source.prefetch(
      photos.flatMap((p) => specs.map((spec) => ({ degraded: guidanceInput(p.image, p.entry.id, spec), key: guidanceKey('train', p.entry.id, spec.name) }))),
      { steps: opts.steps },
    );
  }
  for (const p of photos) {
    for (const spec of specs) {
      const key = guidanceKey('train', p.entry.id, spec.name);
      let g = await source.get(guidanceInput(p.image, p.entry.id, spec), key, { clean: p.image, steps: opts.steps });
      if (g.height < patchSize || g.width < patchSize) {
        const s = patchSize / Math.min(g.height, g.width);
        g = clampImage(await resizeImage(g, Math.max(patchSize, Math.round(g.width * s)), Math.max(patchSize, Math.round(g.height * s)), 'lanczos3'));
      }
      cache.set(key, g);
      done++;
      if (!opts.quiet) process.stderr.write(`\rguidance (${source.name}) ${done}/${keys.length}`);
    }
  }
  if (!opts.quiet) process.stderr.write('\n');
  if (file) {
    const tensors: Named = new Map([...cache].map(([k, g]) => [k, { shape: [g.height, g.width, 3], data: g.data }]));
    saveCheckpoint(file, { kind: 'guidance-cache', source: source.name, standIn: source.standIn ?? null, model: source.model?.sha256 ?? null, patchSize, steps: opts.steps ?? null }, tensors);
  }
  return cache;
}

/**
 * Load a guidance cache file; null if it is absent or from another source / patch size / guidance
 * model (`modelSha`: the sha256 of the source's model, null for a source without one; undefined: not
 * checked) / number of generation steps (`steps`: null = the source's default; undefined: not checked).
 */
export function tryLoadGuidanceCache(file: string, sourceName?: string, patchSize?: number, modelSha?: string | null, steps?: number | null): GuidanceImages | null {
  let ck;
  try {
    ck = loadCheckpoint(file);
  } catch {
    return null;
  }
  if (ck.meta.kind !== 'guidance-cache') return null;
  if (sourceName !== undefined && ck.meta.source !== sourceName) return null;
  if (patchSize !== undefined && ck.meta.patchSize !== patchSize) return null;
  if (modelSha !== undefined && (ck.meta.model ?? null) !== modelSha) return null;
  if (steps !== undefined && (ck.meta.steps ?? null) !== steps) return null;
  const cache: GuidanceImages = new Map();
  for (const [k, t] of ck.tensors) cache.set(k, makeImage(t.shape[0], t.shape[1], t.data));
  return cache;
}

// ---------------------------------------------------------------------------------------------
// Batches

export interface RestoreBatch {
  /** degraded patches [B,P,P,3] (float noise may leave [0,1]) */
  x: tf.Tensor4D;
  /** clean patches [B,P,P,3] in [0,1] */
  y: tf.Tensor4D;
  /** guidance crops [B,P,P,3] in [0,1] (guided training only) */
  g?: tf.Tensor4D;
  /** task name of every sample (for logging) */
  tasks: string[];
}

/** One training sample as images (before batching). */
export interface RestoreSample {
  x: RGBImage;
  y: RGBImage;
  g?: RGBImage;
  task: string;
  photo: string;
  /** the chosen guidance candidate (guided only) */
  match?: { index: number; y0: number; x0: number; score: number };
}

/** Everything sampling needs, built once per process (main thread or worker). */
export interface RestoreData {
  photos: LoadedPhoto[];
  specs: TaskSpec[];
  patchSize: number;
  /** candidates per guidance key (guided training only) */
  candidates?: Map<string, { g: RGBImage; cands: GuidanceCandidates }>;
  /** the same photos at further scales (multi-scale crops): a patch's scale is drawn uniformly among photos + these */
  moreScales?: LoadedPhoto[][];
  /** sampling weight of each spec (absent: uniform, `sampleTask`) */
  taskWeights?: number[];
  /** block-average factors a G crop is low-passed by, one drawn per sample (absent: G as generated) */
  guidanceLowpass?: number[];
  /** ranges of a random colour transform of every G crop (absent: G's colours as generated) */
  guidanceColorJitter?: ColorJitterRanges;
}

/** The photos (at one or more scales), task specs, task weights and (guided) guidance candidates that `sampleRestore` draws from; checks every photo fits a patch. */
export function makeRestoreData(photos: LoadedPhoto[], specs: TaskSpec[], patchSize: number, guidance?: GuidanceImages, opts: { moreScales?: LoadedPhoto[][]; taskWeights?: Record<string, number>; guidanceLowpass?: number[]; guidanceColorJitter?: ColorJitterRanges } = {}): RestoreData {
  if (photos.length === 0) throw new Error('makeRestoreData: no training photos');
  for (const p of [...photos, ...(opts.moreScales ?? []).flat()]) {
    if (p.image.height < patchSize || p.image.width < patchSize) throw new Error(`makeRestoreData: photo ${p.entry.id} ${p.image.height}x${p.image.width} is smaller than the patch ${patchSize}`);
  }
  for (const sc of opts.moreScales ?? []) {
    if (sc.length !== photos.length || sc.some((p, i) => p.entry.id !== photos[i].entry.id)) throw new Error('makeRestoreData: every scale must hold the same photos in the same order');
  }
  const taskWeights = opts.taskWeights ? specs.map((s) => opts.taskWeights![s.name] ?? 1) : undefined;
  let candidates: RestoreData['candidates'];
  if (guidance) {
    candidates = new Map();
    for (const p of photos)
      for (const s of specs) {
        const key = guidanceKey('train', p.entry.id, s.name);
        const g = guidance.get(key);
        if (!g) throw new Error(`makeRestoreData: the guidance cache has no image for '${key}'`);
        candidates.set(key, { g, cands: guidanceCandidates(g, patchSize) });
      }
  }
  for (const f of opts.guidanceLowpass ?? []) if (!(Number.isInteger(f) && f > 0 && patchSize % f === 0)) throw new Error(`makeRestoreData: guidanceLowpass factor ${f} must be a positive integer dividing patchSize ${patchSize}`);
  return { photos, specs, patchSize, candidates, moreScales: opts.moreScales?.length ? opts.moreScales : undefined, taskWeights, guidanceLowpass: opts.guidanceLowpass?.length ? opts.guidanceLowpass : undefined, guidanceColorJitter: opts.guidanceColorJitter };
}

/** Draw index i with probability w_i / Σw (one rng.random()). */
function weightedIndex(rng: Rng, w: readonly number[]): number {
  const total = w.reduce((a, b) => a + b, 0);
  let r = rng.random() * total;
  for (let i = 0; i < w.length; i++) {
    r -= w[i];
    if (r < 0) return i;
  }
  return w.length - 1;
}

function flipLR(img: RGBImage): RGBImage {
  return crop(img, 0, 0, img.height, img.width, true);
}

/**
 * `img` seen at 1/f of its resolution: the mean of every f×f block, bilinearly upsampled again
 * (align-corners false: block centres at (i + 0.5)·f − 0.5, edges clamped). f = 1 returns `img`.
 * @param f a positive integer dividing both sides
 */
export function lowpass(img: RGBImage, f: number): RGBImage {
  if (f === 1) return img;
  const { height: h, width: w } = img;
  if (!Number.isInteger(f) || f < 1 || h % f !== 0 || w % f !== 0) throw new Error(`lowpass: factor ${f} must be a positive integer dividing ${h}x${w}`);
  const bh = h / f, bw = w / f;
  const small = areaResize(img, bh, bw).data; // f divides both sides: each pixel the mean of one f×f block
  const out = makeImage(h, w);
  const coord = (o: number, n: number): [number, number, number] => {
    const s = Math.min(Math.max((o + 0.5) / f - 0.5, 0), n - 1);
    const a = Math.floor(s);
    const b = Math.min(a + 1, n - 1);
    return [a, b, s - a];
  };
  for (let y = 0; y < h; y++) {
    const [ya, yb, ty] = coord(y, bh);
    for (let x = 0; x < w; x++) {
      const [xa, xb, tx] = coord(x, bw);
      for (let c = 0; c < 3; c++) {
        const v = (yy: number, xx: number) => small[(yy * bw + xx) * 3 + c];
        out.data[(y * w + x) * 3 + c] = (1 - ty) * ((1 - tx) * v(ya, xa) + tx * v(ya, xb)) + ty * ((1 - tx) * v(yb, xa) + tx * v(yb, xb));
      }
    }
  }
  return out;
}

/** Draw one sample: photo, position, flip, task, degradation seed — in this order from `rng` — then (when configured) G's low-pass factor and colour-transform seed. */
export function sampleRestore(data: RestoreData, rng: Rng): RestoreSample {
  const scales = data.moreScales ? [data.photos, ...data.moreScales] : null;
  const photos = scales ? scales[rng.int(scales.length)] : data.photos; // one rng draw only with several scales
  const p = photos[rng.int(photos.length)];
  const size = data.patchSize;
  const y0 = rng.int(p.image.height - size + 1);
  const x0 = rng.int(p.image.width - size + 1);
  const flip = rng.random() < 0.5;
  const spec = data.taskWeights ? data.specs[weightedIndex(rng, data.taskWeights)] : sampleTask(rng, data.specs);
  const seed = rng.nextUint32();
  const y = crop(p.image, y0, x0, size, size);
  const x = degradeWithSpec(y, spec, seed).image;
  let g: RGBImage | undefined;
  let match: RestoreSample['match'];
  if (data.candidates) {
    const c = data.candidates.get(guidanceKey('train', p.entry.id, spec.name))!;
    match = selectGuidanceCrop(x, c.cands);
    g = crop(c.g, match.y0, match.x0, size, size, flip);
    // drawn after every other draw, so that configs without them sample the batches they always did
    if (data.guidanceLowpass) g = lowpass(g, data.guidanceLowpass[rng.int(data.guidanceLowpass.length)]);
    if (data.guidanceColorJitter) g = colorJitter(g, rng.nextUint32(), data.guidanceColorJitter);
  }
  return { x: flip ? flipLR(x) : x, y: flip ? flipLR(y) : y, g, task: spec.name, photo: p.entry.id, match };
}

/** A batch of `n` samples as tensors. */
export function restoreBatch(data: RestoreData, n: number, rng: Rng): RestoreBatch {
  const samples = Array.from({ length: n }, () => sampleRestore(data, rng));
  return batchOf(samples);
}

/** Samples → one `RestoreBatch` (g only when every sample has a guidance crop). */
export function batchOf(samples: RestoreSample[]): RestoreBatch {
  const t = (imgs: RGBImage[]) => {
    const { height: h, width: w } = imgs[0];
    const d = new Float32Array(imgs.length * h * w * 3);
    imgs.forEach((im, i) => d.set(im.data, i * h * w * 3));
    return tf.tensor4d(d, [imgs.length, h, w, 3]);
  };
  const guided = samples.every((s) => s.g);
  return { x: t(samples.map((s) => s.x)), y: t(samples.map((s) => s.y)), g: guided ? t(samples.map((s) => s.g!)) : undefined, tasks: samples.map((s) => s.task) };
}
