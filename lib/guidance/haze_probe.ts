/**
 * What the pseudo-words hold of a haze (beyond the paper; docs/experiments.md §2 item 10). The synthetic haze
 * (lib/data/degrade/haze.ts) is two numbers per image, β and A, on a fixed depth proxy: knowing them, the
 * clean crop follows exactly (`removeHaze`). A text-space dehazing (M_clean, Eq. 3, on E_txt(X) = M_i2t(τi(X)),
 * Eq. 2) can therefore show the clean colours only as truly as the words of the hazy crop determine β and A.
 *
 * The probe: ridge regressions from the words E_txt(X) of hazy training crops to (β, A), λ chosen by 4-fold
 * cross-validation over the training photos (folds by photo), then measured on hazy crops of the validation
 * photos: R² of each number, and the 4×4 thumbnail PSNR to the clean crop of X inverted with the predicted
 * numbers (clamped to the sampler's ranges) — what a dehazing that read the numbers off the words as well
 * as a linear map does would show. The same from simple pixel statistics of X (its 4×4 thumbnail and the
 * local contrast on a 16×16 grid) is the yardstick; X itself and X inverted with the sampler's mean numbers
 * bound it from below.
 *
 * Ridge in the dual (n crops ≪ p = N·D word values): α = (K + λI)⁻¹ (y − ȳ), K = X·Xᵀ of standardised
 * features, computed once and cut per fold.
 */
import * as tf from '@tensorflow/tfjs';
import { RGBImage } from '../data/image';
import { loadPhotos, centerCrop, randomCrop } from '../data/patches';
import { degrade, removeHaze, HAZE_DEFAULTS, HazeParams } from '../data/degrade';
import { areaThumbnail, thumbnailPsnr, finitePsnr } from '../metrics/content';
import { Rng } from '../util/rng';
import { choleskyInPlace, choleskySolve } from '../metrics/stats';
import { GuidanceModel } from './model';
import { imageWords } from './pipeline';

/** One probe's result on the validation crops. */
export interface HazeProbeRow {
  features: 'words' | 'pixels';
  /** number of feature values per crop */
  dims: number;
  /** λ chosen by cross-validation, as a multiple of dims */
  lambda: number;
  /** coefficient of determination of each predicted number on the validation crops */
  r2: { beta: number; A: number };
  /** the same on held-out training photos (cross-validation at the chosen λ, mean over folds): below r2 when the
   * validation photos are further from the training photos than the training photos are from each other */
  cvR2: { beta: number; A: number };
  /** mean 4×4 thumbnail PSNR (dB) to the clean crop of X inverted with the predicted numbers */
  thumb4: number;
}

export interface HazeProbeResult {
  photos: { train: number; val: number };
  crops: { train: number; val: number };
  probes: HazeProbeRow[];
  /** mean 4×4 PSNR (dB) to the clean crop of X itself and of X inverted with the sampler's mean β and A */
  thumb4: { input: number; priorMean: number };
}

/** The local-contrast grid of the pixel yardstick. */
const CONTRAST_GRID = 16;

/**
 * 4×4 area thumbnail (48 values) + luminance standard deviation of each cell of a 16×16 grid (256 values;
 * cell edges at ⌊i·size/16⌋, so any crop of at least 16×16 px).
 */
export function hazePixelFeatures(x: RGBImage): Float32Array {
  const g = CONTRAST_GRID;
  if (x.height < g || x.width < g) throw new Error(`hazePixelFeatures: the crop ${x.height}×${x.width} is smaller than the ${g}×${g} contrast grid`);
  const out = new Float32Array(48 + g * g);
  out.set(areaThumbnail(x, 4).data);
  const edge = (i: number, size: number) => Math.floor((i * size) / g);
  for (let by = 0; by < g; by++) {
    for (let bx = 0; bx < g; bx++) {
      let s = 0;
      let s2 = 0;
      let k = 0;
      for (let y = edge(by, x.height); y < edge(by + 1, x.height); y++) {
        for (let xx = edge(bx, x.width); xx < edge(bx + 1, x.width); xx++) {
          const p = (y * x.width + xx) * 3;
          const l = (x.data[p] + x.data[p + 1] + x.data[p + 2]) / 3;
          s += l;
          s2 += l * l;
          k++;
        }
      }
      out[48 + by * g + bx] = Math.sqrt(Math.max(0, s2 / k - (s / k) ** 2));
    }
  }
  return out;
}

/** 1 − Σ(p − y)² / Σ(y − ȳ)²; NaN when y is constant. */
export function rSquared(pred: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = y.length;
  let m = 0;
  for (let i = 0; i < n; i++) m += y[i] / n;
  let se = 0;
  let st = 0;
  for (let i = 0; i < n; i++) {
    se += (pred[i] - y[i]) ** 2;
    st += (y[i] - m) ** 2;
  }
  return st > 0 ? 1 - se / st : NaN;
}

/** Solve (K_SS + λI)·α = r for the rows S of the Gram matrix (Cholesky, float64). */
function dualSolve(k: Float64Array, n: number, rows: readonly number[], r: Float64Array, lambda: number): Float64Array {
  const m = rows.length;
  const a = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j <= i; j++) a[i * m + j] = k[rows[i] * n + rows[j]] + (i === j ? lambda : 0);
  choleskyInPlace(a, m, 'haze probe: the Gram matrix is not positive definite (use lambda > 0)');
  return choleskySolve(a, m, r);
}

/**
 * Ridge from features to targets with λ = c·p chosen among `lambdas` (the c's) by cross-validation over
 * `groups` (fold = group mod folds; the summed 1 − R² of every target). Features are standardised with the
 * training rows' mean and deviation.
 * @param x row-major [n,p] training features; @param y targets per crop, [n][q]
 * @returns the chosen c, each target's mean R² over the held-out folds at that c, and predict(rows) → [m][q]
 */
export function fitRidgeCv(x: readonly Float32Array[], y: readonly number[][], groups: readonly number[], lambdas: readonly number[], folds = 4): { lambda: number; cvR2: number[]; predict: (rows: readonly Float32Array[]) => number[][] } {
  const n = x.length;
  const p = x[0]?.length ?? 0;
  const q = y[0]?.length ?? 0;
  if (n < 2 || y.length !== n || groups.length !== n || x.some((r) => r.length !== p)) throw new Error(`fitRidgeCv: ${n} feature rows of ${p} values, ${y.length} targets and ${groups.length} groups must agree (n ≥ 2)`);
  if (new Set(groups.map((g) => g % folds)).size < 2) throw new Error(`fitRidgeCv: the groups fill fewer than 2 of ${folds} folds`);
  const mu = new Float64Array(p);
  const sd = new Float64Array(p);
  for (const r of x) for (let j = 0; j < p; j++) mu[j] += r[j] / n;
  for (const r of x) for (let j = 0; j < p; j++) sd[j] += (r[j] - mu[j]) ** 2 / n;
  for (let j = 0; j < p; j++) sd[j] = Math.sqrt(sd[j]) + 1e-8;
  const std = (r: Float32Array) => Float64Array.from(r, (v, j) => (v - mu[j]) / sd[j]);
  const xs = x.map(std);
  const dot = (a: Float64Array, b: Float64Array) => {
    let s = 0;
    for (let j = 0; j < p; j++) s += a[j] * b[j];
    return s;
  };
  const k = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) k[i * n + j] = k[j * n + i] = dot(xs[i], xs[j]);
  const fit = (rows: number[], c: number) => {
    const alphas: Float64Array[] = [];
    const means: number[] = [];
    for (let t = 0; t < q; t++) {
      const m = rows.reduce((a, i) => a + y[i][t], 0) / rows.length;
      means.push(m);
      alphas.push(dualSolve(k, n, rows, Float64Array.from(rows, (i) => y[i][t] - m), c * p));
    }
    return { alphas, means };
  };
  // per λ: each target's R² on each held-out fold
  const cv = lambdas.map((c) => {
    const r2: number[][] = Array.from({ length: q }, () => []);
    for (let f = 0; f < folds; f++) {
      const tr = [...Array(n).keys()].filter((i) => groups[i] % folds !== f);
      const te = [...Array(n).keys()].filter((i) => groups[i] % folds === f);
      if (!te.length || !tr.length) continue;
      const { alphas, means } = fit(tr, c);
      for (let t = 0; t < q; t++) {
        const pred = te.map((i) => means[t] + tr.reduce((a, j, s) => a + k[i * n + j] * alphas[t][s], 0));
        r2[t].push(rSquared(pred, te.map((i) => y[i][t])));
      }
    }
    return r2.map((v) => v.reduce((a, b) => a + b, 0) / v.length);
  });
  const cvLoss = cv.map((r2) => r2.reduce((a, v) => a + (1 - v), 0));
  const best = cvLoss.indexOf(Math.min(...cvLoss));
  const lambda = lambdas[best];
  const all = [...Array(n).keys()];
  const { alphas, means } = fit(all, lambda);
  return {
    lambda,
    cvR2: cv[best],
    predict: (rows) =>
      rows.map((r) => {
        const v = std(r);
        const kv = xs.map((xi) => dot(v, xi));
        return means.map((m, t) => m + kv.reduce((a, kij, s) => a + kij * alphas[t][s], 0));
      }),
  };
}

interface HazyCrop {
  photo: number;
  y: RGBImage;
  x: RGBImage;
  params: HazeParams;
}

/**
 * The probe (file header) for a guidance model's stage-1 words, on hazy crops of the training photos (the
 * centre crop and `cropsPerPhoto` − 1 random ones, `draws` hazes each) and of the validation photos (the
 * centre crop, `valDraws` hazes).
 */
export async function hazeWordsProbe(
  model: GuidanceModel,
  t2iCfg: { imageSize: number; photoShortSide: number },
  opts: { cropsPerPhoto?: number; draws?: number; valDraws?: number; lambdas?: readonly number[]; seed?: number; trainPhotos?: number; valPhotos?: number; onCrop?: (done: number, total: number) => void } = {},
): Promise<HazeProbeResult> {
  const { imageSize, photoShortSide } = t2iCfg;
  const cropsPerPhoto = opts.cropsPerPhoto ?? 6;
  const draws = opts.draws ?? 4;
  const valDraws = opts.valDraws ?? 8;
  const lambdas = opts.lambdas ?? [0.1, 0.3, 1, 3, 10, 30, 100];
  const hazy = async (split: 'train' | 'val', crops: number, draws: number, limit?: number): Promise<HazyCrop[]> => {
    const rng = new Rng((opts.seed ?? 77) + (split === 'val' ? 1 : 0)); // each split its own draws: the validation hazes do not depend on the training set's size
    const photos = await loadPhotos(split, photoShortSide, limit);
    const out: HazyCrop[] = [];
    for (const [pi, ph] of photos.entries()) {
      for (let c = 0; c < crops; c++) {
        const y = c === 0 ? centerCrop(ph.image, imageSize) : randomCrop(ph.image, imageSize, rng, { flip: false });
        for (let d = 0; d < draws; d++) {
          const r = degrade(y, { task: 'haze', seed: rng.int(2 ** 31) });
          out.push({ photo: pi, y, x: r.image, params: r.params as unknown as HazeParams });
        }
      }
    }
    return out;
  };
  const train = await hazy('train', cropsPerPhoto, draws, opts.trainPhotos);
  const val = await hazy('val', 1, valDraws, opts.valPhotos);
  const total = train.length + val.length;
  const words = async (items: HazyCrop[], offset: number): Promise<Float32Array[]> => {
    const out: Float32Array[] = [];
    for (let i = 0; i < items.length; i += 16) {
      const w = await imageWords(model, items.slice(i, i + 16).map((t) => t.x));
      try {
        const [b, nw, dw] = w.raw.shape;
        const flat = await w.raw.data();
        for (let j = 0; j < b; j++) out.push(Float32Array.from(flat.subarray(j * nw * dw, (j + 1) * nw * dw)));
      } finally {
        tf.dispose([w.raw, w.clean]);
      }
      opts.onCrop?.(offset + out.length, total);
    }
    return out;
  };
  const feats = {
    words: { train: await words(train, 0), val: await words(val, train.length) },
    pixels: { train: train.map((t) => hazePixelFeatures(t.x)), val: val.map((t) => hazePixelFeatures(t.x)) },
  };
  const clamp = (v: number, [lo, hi]: readonly [number, number]) => Math.min(hi, Math.max(lo, v));
  const mean4 = (imgs: RGBImage[]) => imgs.reduce((a, im, i) => a + finitePsnr(thumbnailPsnr(im, val[i].y, 4)), 0) / imgs.length;
  const probes = (['words', 'pixels'] as const).map((features): HazeProbeRow => {
    const f = feats[features];
    const fit = fitRidgeCv(f.train, train.map((t) => [t.params.beta, t.params.A]), train.map((t) => t.photo), lambdas);
    const pred = fit.predict(f.val);
    return {
      features,
      dims: f.train[0].length,
      lambda: fit.lambda,
      r2: { beta: rSquared(pred.map((r) => r[0]), val.map((t) => t.params.beta)), A: rSquared(pred.map((r) => r[1]), val.map((t) => t.params.A)) },
      cvR2: { beta: fit.cvR2[0], A: fit.cvR2[1] },
      thumb4: mean4(val.map((t, i) => removeHaze(t.x, { beta: clamp(pred[i][0], HAZE_DEFAULTS.beta), A: clamp(pred[i][1], HAZE_DEFAULTS.A) }))),
    };
  });
  const mid = (r: readonly [number, number]) => (r[0] + r[1]) / 2;
  return {
    photos: { train: new Set(train.map((t) => t.photo)).size, val: new Set(val.map((t) => t.photo)).size },
    crops: { train: train.length, val: val.length },
    probes,
    thumb4: { input: mean4(val.map((t) => t.x)), priorMean: mean4(val.map((t) => removeHaze(t.x, { beta: mid(HAZE_DEFAULTS.beta), A: mid(HAZE_DEFAULTS.A) }))) },
  };
}
