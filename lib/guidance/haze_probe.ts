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
 * as a linear map does would show. A Gaussian-kernel ridge on the same features asks the same of a non-linear
 * read-out (a linear probe only bounds what the words hold from below). The same from simple pixel statistics
 * of X (its 4×4 thumbnail and the local contrast on a 16×16 grid) is the yardstick; X itself and X inverted
 * with the sampler's mean numbers bound it from below. With a text-to-image model that has a layout map, stage 2
 * itself is read out too (`cleanWords`; docs/experiments.md §2 item 11).
 *
 * Ridge in the dual (n crops ≪ p = N·D word values): α = (K + λI)⁻¹ (y − ȳ), K = X·Xᵀ of standardised
 * features (or its Gaussian of the distances), computed once and cut per fold.
 */
import * as tf from '@tensorflow/tfjs';
import { RGBImage } from '../data/image';
import { loadPhotos, centerCrop, randomCrop } from '../data/patches';
import { degrade, removeHaze, HAZE_DEFAULTS, HazeParams } from '../data/degrade';
import { areaThumbnail, thumbnailPsnr, finitePsnr } from '../metrics/content';
import { Rng } from '../util/rng';
import { choleskyInPlace, choleskySolve } from '../metrics/stats';
import { GuidanceModel } from './model';
import { imageWords, layoutMapImages, trainingView } from './pipeline';
import { mapperFeatures } from './m_i2t';
import { TextToImage } from '../t2i/model';

/** One probe's result on the validation crops. */
export interface HazeProbeRow {
  features: 'words' | 'pixels';
  /** the read-out: linear ridge, or kernel ridge with a Gaussian kernel (non-linear) */
  kernel: RidgeKernel['type'];
  /** number of feature values per crop */
  dims: number;
  /** λ chosen by cross-validation: a multiple of dims for the linear read-out, absolute for the Gaussian one */
  lambda: number;
  /** the Gaussian's width chosen by cross-validation, in units of the median squared distance between training crops */
  width?: number;
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
  /**
   * With a text-to-image model that has a layout map: the words' layout map at 4×4 (mean PSNR to the clean crop,
   * dB) of the hazy words E_txt(X), of M_clean's E'_txt(X), of clean words read from E_txt(X) by kernel ridge
   * (trained on the training crops' pairs at the λ and width chosen for β and A), and of the clean crop's own
   * words E_txt(Y): how much of what the words hold stage 2 turns into the clean words.
   */
  cleanWords?: {
    lambda: number;
    width: number;
    map4: {
      input: number;
      mClean: number;
      kernelRidge: number;
      clean: number;
      /** mapper with a colour path only: the hazy words with that path reading the clean crop's token colours
       * (an oracle) and those of X undone with the Gaussian read of the words' haze numbers */
      colourPath?: { clean: number; read: number };
    };
  };
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

/** Factor (K_SS + λI) for the rows S of the Gram matrix (Cholesky, float64); solve(r) → α for any right-hand side. */
function dualFactor(k: Float64Array, n: number, rows: readonly number[], lambda: number): (r: ArrayLike<number>) => Float64Array {
  const m = rows.length;
  const a = new Float64Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j <= i; j++) a[i * m + j] = k[rows[i] * n + rows[j]] + (i === j ? lambda : 0);
  choleskyInPlace(a, m, 'haze probe: the Gram matrix is not positive definite (use lambda > 0)');
  return (r) => choleskySolve(a, m, r);
}

/** The kernel of `fitRidgeCv`: the plain dot product (linear ridge), or a Gaussian of the squared distance
 * between standardised rows, exp(−d² / (w·m)) with m the median d² between training rows and the width w
 * chosen by cross-validation among `widths` (kernel ridge: a non-linear read-out, still fitted in closed form). */
export type RidgeKernel = { type: 'linear' } | { type: 'rbf'; widths: readonly number[] };

/** Standardised training rows and their kernels (the dual of ridge: every fit works on an n×n matrix). */
function kernelBasis(x: readonly Float32Array[], type: RidgeKernel['type']) {
  const n = x.length;
  const p = x[0]?.length ?? 0;
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
  const gram = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) gram[i * n + j] = gram[j * n + i] = dot(xs[i], xs[j]);
  const sq = Float64Array.from(xs, (_, i) => gram[i * n + i]);
  // the median squared distance between training rows sets the Gaussian's scale
  let medianD2 = 1;
  if (type === 'rbf') {
    const d2: number[] = [];
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) d2.push(sq[i] + sq[j] - 2 * gram[i * n + j]);
    d2.sort((u, v) => u - v);
    medianD2 = d2[Math.floor(d2.length / 2)] || 1;
  }
  const gauss = (d2: number, w: number) => Math.exp(-Math.max(0, d2) / (w * medianD2));
  return {
    n,
    p,
    /** the n×n kernel between training rows (width undefined: linear) */
    matrix: (w: number | undefined): Float64Array => (w === undefined ? gram : gram.map((g, ij) => gauss(sq[Math.floor(ij / n)] + sq[ij % n] - 2 * g, w))),
    /** the kernel between a new row and every training row */
    row: (r: Float32Array, w: number | undefined): Float64Array => {
      const v = std(r);
      const vv = dot(v, v);
      return Float64Array.from(xs, (xi, j) => {
        const g = dot(v, xi);
        return w === undefined ? g : gauss(vv + sq[j] - 2 * g, w);
      });
    },
  };
}

/** Per target t: mean_t + Σ_s k_s·α_t,s, fitted on `rows` (the targets centred on their mean over the rows). */
function dualFit(k: Float64Array, n: number, rows: readonly number[], lambda: number, target: (i: number, t: number) => number, q: number) {
  const solve = dualFactor(k, n, rows, lambda);
  const means: number[] = [];
  const alphas: Float64Array[] = [];
  for (let t = 0; t < q; t++) {
    const m = rows.reduce((a, i) => a + target(i, t), 0) / rows.length;
    means.push(m);
    alphas.push(solve(Float64Array.from(rows, (i) => target(i, t) - m)));
  }
  return { means, alphas, at: (kv: (s: number) => number, t: number) => alphas[t].reduce((a, al, s) => a + kv(s) * al, means[t]) };
}

/**
 * Ridge from features to targets with λ chosen among `lambdas` by cross-validation over `groups` (fold = group
 * mod folds; the summed 1 − R² of every target) — for the linear kernel λ = c·p (c from `lambdas`, p values per
 * row), for the Gaussian one λ = c (its Gram matrix has a unit diagonal) with the width chosen on the same
 * folds. Features are standardised with the training rows' mean and deviation.
 * @param x row-major [n,p] training features; @param y targets per crop, [n][q]
 * @returns the chosen c (and width), each target's mean R² over the held-out folds at that choice, and
 * predict(rows) → [m][q]
 */
export function fitRidgeCv(
  x: readonly Float32Array[],
  y: readonly number[][],
  groups: readonly number[],
  lambdas: readonly number[],
  folds = 4,
  kernel: RidgeKernel = { type: 'linear' },
): { lambda: number; width?: number; cvR2: number[]; predict: (rows: readonly Float32Array[]) => number[][] } {
  const n = x.length;
  const p = x[0]?.length ?? 0;
  const q = y[0]?.length ?? 0;
  if (n < 2 || y.length !== n || groups.length !== n || x.some((r) => r.length !== p)) throw new Error(`fitRidgeCv: ${n} feature rows of ${p} values, ${y.length} targets and ${groups.length} groups must agree (n ≥ 2)`);
  if (new Set(groups.map((g) => g % folds)).size < 2) throw new Error(`fitRidgeCv: the groups fill fewer than 2 of ${folds} folds`);
  if (kernel.type === 'rbf' && (!kernel.widths.length || kernel.widths.some((w) => !(w > 0)))) throw new Error(`fitRidgeCv: the Gaussian kernel needs widths > 0 (got [${kernel.widths.join(', ')}])`);
  const basis = kernelBasis(x, kernel.type);
  const target = (i: number, t: number) => y[i][t];
  const all = [...Array(n).keys()];
  const foldRows = [...Array(folds).keys()]
    .map((f) => ({ tr: all.filter((i) => groups[i] % folds !== f), te: all.filter((i) => groups[i] % folds === f) }))
    .filter((s) => s.tr.length && s.te.length);
  // per (width, c): each target's mean R² over the held-out folds
  const widths = kernel.type === 'rbf' ? kernel.widths : [undefined];
  const cv = widths.flatMap((w) => {
    const k = basis.matrix(w);
    return lambdas.map((c) => {
      const lam = kernel.type === 'linear' ? c * p : c;
      const r2: number[][] = Array.from({ length: q }, () => []);
      for (const { tr, te } of foldRows) {
        const f = dualFit(k, n, tr, lam, target, q);
        for (let t = 0; t < q; t++) r2[t].push(rSquared(te.map((i) => f.at((s) => k[i * n + tr[s]], t)), te.map((i) => y[i][t])));
      }
      return { w, c, lam, k, r2: r2.map((v) => v.reduce((a, b) => a + b, 0) / v.length) };
    });
  });
  const cvLoss = cv.map((e) => e.r2.reduce((a, v) => a + (1 - v), 0));
  const best = cv[cvLoss.indexOf(Math.min(...cvLoss))];
  const f = dualFit(best.k, n, all, best.lam, target, q);
  return {
    lambda: best.c,
    ...(best.w === undefined ? {} : { width: best.w }),
    cvR2: best.r2,
    predict: (rows) =>
      rows.map((r) => {
        const kv = basis.row(r, best.w);
        return Array.from({ length: q }, (_, t) => f.at((s) => kv[s], t));
      }),
  };
}

/**
 * Kernel ridge with a given λ and Gaussian width (as `fitRidgeCv` chose them) for many targets at once — one
 * factorisation, one solve per target: e.g. clean words from hazy words.
 * @param y [n] rows of q target values; @returns predict(rows) → [m] rows of q values
 */
export function fitKernelRidge(x: readonly Float32Array[], y: readonly Float32Array[], lambda: number, width?: number): (rows: readonly Float32Array[]) => Float32Array[] {
  const n = x.length;
  const q = y[0]?.length ?? 0;
  if (n < 2 || y.length !== n || y.some((r) => r.length !== q)) throw new Error(`fitKernelRidge: ${n} feature rows and ${y.length} target rows of ${q} values must agree (n ≥ 2)`);
  const basis = kernelBasis(x, width === undefined ? 'linear' : 'rbf');
  const f = dualFit(basis.matrix(width), n, [...Array(n).keys()], width === undefined ? lambda * basis.p : lambda, (i, t) => y[i][t], q);
  return (rows) =>
    rows.map((r) => {
      const kv = basis.row(r, width);
      return Float32Array.from({ length: q }, (_, t) => f.at((s) => kv[s], t));
    });
}

/** Each row of a [B,N,D] tensor as one flat Float32Array of N·D values. */
async function rowsOf(t: tf.Tensor3D): Promise<Float32Array[]> {
  const [b, n, d] = t.shape;
  const flat = await t.data();
  return Array.from({ length: b }, (_, j) => Float32Array.from(flat.subarray(j * n * d, (j + 1) * n * d)));
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
  t2i: TextToImage,
  opts: { cropsPerPhoto?: number; draws?: number; valDraws?: number; lambdas?: readonly number[]; rbfLambdas?: readonly number[]; rbfWidths?: readonly number[]; seed?: number; trainPhotos?: number; valPhotos?: number; onCrop?: (done: number, total: number) => void } = {},
): Promise<HazeProbeResult> {
  if (!(t2i instanceof TextToImage)) throw new TypeError('hazeWordsProbe: the second argument is the text-to-image model itself (loadGuidancePair(file).t2i), not its cfg');
  const { imageSize, photoShortSide } = t2i.cfg;
  const cropsPerPhoto = opts.cropsPerPhoto ?? 6;
  const draws = opts.draws ?? 4;
  const valDraws = opts.valDraws ?? 8;
  const lambdas = opts.lambdas ?? [0.1, 0.3, 1, 3, 10, 30, 100];
  const rbfLambdas = opts.rbfLambdas ?? [0.001, 0.01, 0.1, 1, 10];
  const rbfWidths = opts.rbfWidths ?? [0.5, 1, 2, 4, 8];
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
  // the clean crops (each hazy crop's y; the draws of one crop share it)
  const distinct = (items: HazyCrop[]) => [...new Set(items.map((t) => t.y))];
  const cleanTrain = t2i.hasLayoutMap ? distinct(train) : [];
  const cleanVal = t2i.hasLayoutMap ? distinct(val) : [];
  const total = train.length + val.length + cleanTrain.length + cleanVal.length;
  let done = 0;
  /** E_txt = M_i2t(τi(·)) of each image, and M_clean's E'_txt of it */
  const words = async (imgs: RGBImage[]): Promise<{ raw: Float32Array[]; clean: Float32Array[] }> => {
    const out = { raw: [] as Float32Array[], clean: [] as Float32Array[] };
    for (let i = 0; i < imgs.length; i += 16) {
      const w = await imageWords(model, imgs.slice(i, i + 16));
      try {
        for (const key of ['raw', 'clean'] as const) out[key].push(...(await rowsOf(w[key])));
      } finally {
        tf.dispose([w.raw, w.clean]);
      }
      done += Math.min(16, imgs.length - i);
      opts.onCrop?.(done, total);
    }
    return out;
  };
  const trainWords = await words(train.map((t) => t.x));
  const valWords = await words(val.map((t) => t.x));
  const feats = {
    words: { train: trainWords.raw, val: valWords.raw },
    pixels: { train: train.map((t) => hazePixelFeatures(t.x)), val: val.map((t) => hazePixelFeatures(t.x)) },
  };
  const clamp = (v: number, [lo, hi]: readonly [number, number]) => Math.min(hi, Math.max(lo, v));
  const mean4 = (imgs: RGBImage[]) => imgs.reduce((a, im, i) => a + finitePsnr(thumbnailPsnr(im, val[i].y, 4)), 0) / imgs.length;
  const targets = train.map((t) => [t.params.beta, t.params.A]);
  const groups = train.map((t) => t.photo); // folds by photo
  const undone = new Map<string, RGBImage[]>(); // X undone with each probe's numbers, by 'features/kernel'
  const probes = (['words', 'pixels'] as const).flatMap((features) =>
    (['linear', 'rbf'] as const).map((kernel): HazeProbeRow => {
      const f = feats[features];
      const fit = kernel === 'linear' ? fitRidgeCv(f.train, targets, groups, lambdas) : fitRidgeCv(f.train, targets, groups, rbfLambdas, 4, { type: 'rbf', widths: rbfWidths });
      const pred = fit.predict(f.val);
      const xHat = val.map((t, i) => removeHaze(t.x, { beta: clamp(pred[i][0], HAZE_DEFAULTS.beta), A: clamp(pred[i][1], HAZE_DEFAULTS.A) }));
      undone.set(`${features}/${kernel}`, xHat);
      return {
        features,
        kernel,
        dims: f.train[0].length,
        lambda: fit.lambda,
        ...(fit.width === undefined ? {} : { width: fit.width }),
        r2: { beta: rSquared(pred.map((r) => r[0]), val.map((t) => t.params.beta)), A: rSquared(pred.map((r) => r[1]), val.map((t) => t.params.A)) },
        cvR2: { beta: fit.cvR2[0], A: fit.cvR2[1] },
        thumb4: mean4(xHat),
      };
    }),
  );
  /**
   * Stage 2 as a read-out: clean words E_txt(Y) − E_txt(X) by kernel ridge from the hazy words (λ and width as
   * cross-validated for β and A), against M_clean, each shown by the words' layout map at 4×4 (where G starts).
   */
  const cleanWordsProbe = async (): Promise<NonNullable<HazeProbeResult['cleanWords']>> => {
    const yTrain = (await words(cleanTrain)).raw;
    const yVal = (await words(cleanVal)).raw;
    const rbf = probes.find((r) => r.features === 'words' && r.kernel === 'rbf');
    if (!rbf) throw new Error('hazeWordsProbe: no kernel read-out of the words');
    const ofTrain = new Map(cleanTrain.map((y, i) => [y, i]));
    const ofVal = new Map(cleanVal.map((y, i) => [y, i]));
    const residual = train.map((t, i) => Float32Array.from(yTrain[ofTrain.get(t.y)!], (v, j) => v - trainWords.raw[i][j]));
    const predict = fitKernelRidge(trainWords.raw, residual, rbf.lambda, rbf.width);
    const kernelWords = predict(valWords.raw).map((d, i) => Float32Array.from(d, (v, j) => v + valWords.raw[i][j]));
    const [nw, dw] = [model.numWords, model.mapper.width];
    const map4 = (rows: Float32Array[]): number => {
      const imgs: RGBImage[] = [];
      for (let i = 0; i < rows.length; i += 16) {
        const part = rows.slice(i, i + 16);
        const w = tf.tensor3d(Float32Array.from(part.flatMap((r) => [...r])), [part.length, nw, dw]);
        try {
          imgs.push(...layoutMapImages(model, t2i, w));
        } finally {
          w.dispose();
        }
      }
      return mean4(imgs);
    };
    // with the mapper's linear colour path: the hazy words with that path reading other token colours — the clean
    // crop's (an oracle), and those of X undone with the haze numbers read from the words (the Gaussian read above)
    let colourPath: { clean: number; read: number } | undefined;
    const mapper = model.mapper;
    if (mapper.colorW) {
      const xHat = undone.get('words/rbf')!;
      const pathWords = { clean: [] as Float32Array[], read: [] as Float32Array[] };
      const featuresOf = async (imgs: RGBImage[]) => mapperFeatures(await Promise.all(imgs.map((im) => trainingView(im, model.imageSize))), model.cfg.encoder, model.cfg.mapper);
      for (let i = 0; i < val.length; i += 16) {
        const idx = [...Array(Math.min(16, val.length - i)).keys()].map((j) => i + j);
        const fs = [await featuresOf(idx.map((j) => val[j].x)), await featuresOf(idx.map((j) => val[j].y)), await featuresOf(idx.map((j) => xHat[j]))];
        try {
          for (const [key, f] of [['clean', fs[1]], ['read', fs[2]]] as const) {
            const w = tf.tidy(() => mapper.callWithColours(fs[0], mapper.tokenColours(f)));
            try {
              pathWords[key].push(...(await rowsOf(w)));
            } finally {
              w.dispose();
            }
          }
        } finally {
          tf.dispose(fs.flatMap((f) => [f.global, f.tokens]));
        }
      }
      colourPath = { clean: map4(pathWords.clean), read: map4(pathWords.read) };
    }
    return {
      lambda: rbf.lambda,
      width: rbf.width ?? NaN,
      map4: { input: map4(valWords.raw), mClean: map4(valWords.clean), kernelRidge: map4(kernelWords), clean: map4(val.map((t) => yVal[ofVal.get(t.y)!])), ...(colourPath ? { colourPath } : {}) },
    };
  };
  const cleanWords = t2i.hasLayoutMap ? await cleanWordsProbe() : undefined;
  const mid = (r: readonly [number, number]) => (r[0] + r[1]) / 2;
  return {
    photos: { train: new Set(train.map((t) => t.photo)).size, val: new Set(val.map((t) => t.photo)).size },
    crops: { train: train.length, val: val.length },
    probes,
    thumb4: { input: mean4(val.map((t) => t.x)), priorMean: mean4(val.map((t) => removeHaze(t.x, { beta: mid(HAZE_DEFAULTS.beta), A: mid(HAZE_DEFAULTS.A) }))) },
    ...(cleanWords ? { cleanWords } : {}),
  };
}
