/**
 * Defocus blur: a normalised disk (pillbox) PSF of radius r with a small Gaussian anti-alias, as
 * `disk(radius, alias_blur)` in hendrycks/robustness ImageNet-C `make_imagenet_c.py`
 * : D(x,y) = [x² + y² ≤ r²] / Σ, then Gaussian-blurred with σ = aliasBlur.
 *
 * Differences from ImageNet-C, on purpose: our grid is ±(ceil(r)+2) (theirs is ±8 for r ≤ 8,
 * which clips nothing but wastes taps), the anti-alias Gaussian has radius ceil(3σ) (theirs a fixed
 * 3×3 / 5×5 cv2 kernel) with zeros outside the grid, and the result is re-normalised to sum 1.
 * ImageNet-C severities 1–5 use (r, aliasBlur) = (3,0.1), (4,0.5), (6,0.5), (8,0.5), (10,0.5).
 * The image is convolved with reflect-101 border (cv2.filter2D's default, as ImageNet-C).
 */
import { RGBImage } from '../image';
import { Rng } from '../../util/rng';
import { Kernel, Range, Ranges, checkParam, convolve, drawIn, gaussian1d, mergeRanges, normaliseKernel, qualifier } from './common';

export interface DefocusParams {
  /** disk radius in pixels */
  radius: number;
  /** σ of the anti-alias Gaussian in pixels (0 = none) */
  aliasBlur: number;
}

export const DEFOCUS_KEYS = ['radius', 'aliasBlur'] as const;
export const DEFOCUS_LIMITS: { readonly [K in keyof DefocusParams]: Range } = { radius: [0.5, 25], aliasBlur: [0, 2] };
export const DEFOCUS_DEFAULTS: { readonly [K in keyof DefocusParams]: Range } = { radius: [1, 6], aliasBlur: [0.1, 0.5] };

export function validateDefocus(p: DefocusParams): DefocusParams {
  for (const k of DEFOCUS_KEYS) checkParam('defocus', k, p[k], DEFOCUS_LIMITS[k]);
  return p;
}

/** Draw radius then aliasBlur uniformly from their ranges. */
export function sampleDefocus(rng: Rng, ranges?: Ranges<DefocusParams>): DefocusParams {
  const r = mergeRanges('defocus', DEFOCUS_LIMITS, DEFOCUS_DEFAULTS, ranges);
  return { radius: drawIn(rng, r.radius!), aliasBlur: drawIn(rng, r.aliasBlur!) };
}

/** The anti-aliased disk PSF, odd square of size 2·(ceil(r)+2)+1, sum 1. */
export function diskKernel(radius: number, aliasBlur: number): Kernel {
  validateDefocus({ radius, aliasBlur });
  const R = Math.ceil(radius) + 2;
  const size = 2 * R + 1;
  const disk = new Float64Array(size * size);
  for (let y = -R; y <= R; y++) for (let x = -R; x <= R; x++) disk[(y + R) * size + x + R] = x * x + y * y <= radius * radius ? 1 : 0;
  normaliseKernel('diskKernel', { size, weights: disk });
  if (aliasBlur === 0) return { size, weights: disk };
  const gr = Math.max(1, Math.ceil(3 * aliasBlur));
  const g = gaussian1d(aliasBlur, gr);
  const tmp = new Float64Array(disk.length);
  const out = new Float64Array(disk.length);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      let s = 0;
      for (let i = -gr; i <= gr; i++) if (x + i >= 0 && x + i < size) s += g[i + gr] * disk[y * size + x + i];
      tmp[y * size + x] = s;
    }
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      let s = 0;
      for (let i = -gr; i <= gr; i++) if (y + i >= 0 && y + i < size) s += g[i + gr] * tmp[(y + i) * size + x];
      out[y * size + x] = s;
    }
  return normaliseKernel('diskKernel', { size, weights: out });
}

/**
 * Blur with the disk PSF. Uses no randomness (`rng` keeps the common signature).
 * @param img [H,W,3] float32 RGB in [0,1]
 * @returns [H,W,3] float32 in [0,1]
 */
export function defocusBlur(img: RGBImage, params: DefocusParams, _rng?: Rng): RGBImage {
  const { radius, aliasBlur } = validateDefocus(params);
  return convolve(img, diskKernel(radius, aliasBlur), 'reflect');
}

/** 'slightly blurry' (r < 2), 'blurry', 'heavily blurry' (r > 6). */
export function defocusPhrase(p: DefocusParams): string {
  return `${qualifier(p.radius, 2, 6)}blurry`;
}
