/**
 * Haze by the atmospheric scattering model (Koschmieder; as liruoteng/HeavyRainRemoval `datagen/render_haze.m`):
 *
 *   I(p) = J(p)·t(p) + A·(1 − t(p)),   t(p) = exp(−β·d(p))
 *
 * J = clean image, A = global (grey) atmospheric light, β = scattering coefficient, d = depth.
 * We have no depth maps, so d is a synthetic depth proxy (`depthProxy`): far at the top of the
 * frame and towards the centre (a typical outdoor photo: sky and horizon up, vanishing point near
 * the middle, ground close at the bottom corners):
 *
 *   v = 1 − y/(H−1)                        (1 at the top row, 0 at the bottom row)
 *   c = 1 − ‖p − centre‖ / ‖corner − centre‖  (1 at the centre, 0 at the corners)
 *   d0 = Gaussian_σ(0.6·v + 0.4·c),   σ = max(1, 0.02·min(H,W)), replicate border
 *   d = 0.1 + 0.9·d0  ∈ [0.1, 1]           (nothing is at zero distance, so all pixels get haze)
 *
 * Since d ≤ 1, β here is "extinction over the whole scene depth": β = 1 → t ≥ e^−1 ≈ 0.37,
 * β = 3 → t ≥ 0.05. `render_haze.m` (normalised depth) uses β ∈ [2.6, 4.6] / [3, 4.2] and
 * A ∈ [0.25, 0.95] / [0.3, 0.9]; RESIDE uses metric depths with much smaller β, not comparable.
 * Our default sampling is β ~ U[0.8, 2.8], A ~ U[0.7, 1.0] (visible but not opaque haze).
 */
import { RGBImage, makeImage } from '../image';
import { Rng } from '../../util/rng';
import { Range, Ranges, borderIndex, checkParam, drawIn, gaussian1d, mergeRanges, qualifier } from './common';

export interface HazeParams {
  /** scattering coefficient β (per unit of the [0.1,1] depth proxy) */
  beta: number;
  /** atmospheric light A (grey, 0–1 scale) */
  A: number;
}

export const HAZE_KEYS = ['beta', 'A'] as const;
export const HAZE_LIMITS: { readonly [K in keyof HazeParams]: Range } = { beta: [0, 6], A: [0, 1] };
export const HAZE_DEFAULTS: { readonly [K in keyof HazeParams]: Range } = { beta: [0.8, 2.8], A: [0.7, 1] };

export function validateHaze(p: HazeParams): HazeParams {
  for (const k of HAZE_KEYS) checkParam('haze', k, p[k], HAZE_LIMITS[k]);
  return p;
}

/** Draw β then A uniformly from their ranges. */
export function sampleHaze(rng: Rng, ranges?: Ranges<HazeParams>): HazeParams {
  const r = mergeRanges('haze', HAZE_LIMITS, HAZE_DEFAULTS, ranges);
  return { beta: drawIn(rng, r.beta!), A: drawIn(rng, r.A!) };
}

/** The synthetic depth d, [H,W] float64 in [0.1, 1] (see the file header). Deterministic. */
export function depthProxy(height: number, width: number): Float64Array {
  const d0 = new Float64Array(height * width);
  const cy = (height - 1) / 2;
  const cx = (width - 1) / 2;
  const rMax = Math.hypot(cy, cx) || 1;
  for (let y = 0; y < height; y++) {
    const v = height > 1 ? 1 - y / (height - 1) : 0.5;
    for (let x = 0; x < width; x++) {
      const c = 1 - Math.hypot(y - cy, x - cx) / rMax;
      d0[y * width + x] = 0.6 * v + 0.4 * c;
    }
  }
  const sigma = Math.max(1, 0.02 * Math.min(height, width));
  const radius = Math.ceil(3 * sigma);
  const g = gaussian1d(sigma, radius);
  const cx2 = Int32Array.from({ length: width + 2 * radius }, (_, i) => borderIndex(i - radius, width, 'replicate'));
  const cy2 = Int32Array.from({ length: height + 2 * radius }, (_, i) => borderIndex(i - radius, height, 'replicate'));
  const tmp = new Float64Array(d0.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let i = 0; i <= 2 * radius; i++) s += g[i] * d0[y * width + cx2[x + i]];
      tmp[y * width + x] = s;
    }
  }
  const out = new Float64Array(d0.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let s = 0;
      for (let i = 0; i <= 2 * radius; i++) s += g[i] * tmp[cy2[y + i] * width + x];
      out[y * width + x] = 0.1 + 0.9 * s;
    }
  }
  return out;
}

/** Per pixel of an H×W image: the transmission t = exp(−β·d) and the air light it lets in, A·(1 − t). */
function scattering(height: number, width: number, params: HazeParams): { t: Float64Array; air: Float64Array } {
  const { beta, A } = validateHaze(params);
  const d = depthProxy(height, width);
  const t = d.map((v) => Math.exp(-beta * v));
  return { t, air: t.map((v) => A * (1 - v)) };
}

/**
 * I = J·t + A·(1 − t), t = exp(−β·d). Uses no randomness (the `rng` argument keeps the common
 * signature).
 * @param img [H,W,3] float32 RGB in [0,1]
 * @returns [H,W,3] float32 in [0,1] when J and A are
 */
export function addHaze(img: RGBImage, params: HazeParams, _rng?: Rng): RGBImage {
  const { t, air } = scattering(img.height, img.width, params);
  const out = new Float32Array(img.data.length);
  for (let p = 0; p < t.length; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = img.data[p * 3 + c] * t[p] + air[p];
  return makeImage(img.height, img.width, out);
}

/**
 * The inverse of `addHaze` for given β and A: J = (I − A·(1 − t)) / t, t = exp(−β·d), clipped to [0,1].
 * With the true numbers it returns the clean image (up to rounding); the synthetic haze is two numbers
 * per image, so dehazing it is estimating β and A (lib/guidance/haze_probe.ts asks how well the pseudo-words
 * of a hazy crop determine them).
 */
export function removeHaze(img: RGBImage, params: HazeParams): RGBImage {
  const { t, air } = scattering(img.height, img.width, params);
  const out = new Float32Array(img.data.length);
  for (let p = 0; p < t.length; p++) for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.min(1, Math.max(0, (img.data[p * 3 + c] - air[p]) / t[p]));
  return makeImage(img.height, img.width, out);
}

/** 'slightly hazy' (β < 1), 'hazy', 'heavily hazy' (β > 2.2). */
export function hazePhrase(p: HazeParams): string {
  return `${qualifier(p.beta, 1, 2.2)}hazy`;
}
