/**
 * Additive white Gaussian noise, σ on the 0–255 scale.
 *
 * Two protocols:
 * - `'float'` (Restormer / TextualDegRemoval evaluation): y = x + n·σ/255, n ~ N(0,1) per value,
 *   NO clipping and NO quantisation; values may leave [0,1]. (Writing the result to an 8-bit file
 *   later clips and rounds it.)
 * - `'uint8'` (PromptIR `utils/dataset_utils.py` `_add_gaussian_noise` and `degradation_utils.py`):
 *   the clean image is first taken to 8 bit, k = round(clip(x,0,1)·255) (PromptIR's input is
 *   already uint8), then y = trunc(clip(k + n·σ, 0, 255)) / 255. `trunc` because PromptIR uses
 *   `np.clip(...).astype(np.uint8)`, which truncates toward zero (NOT round): this lowers the mean
 *   by ≈ 0.5/255 compared with rounding. We keep the truncation to reproduce their inputs.
 *
 * Noise values are drawn with `rng.normal()` in HWC order (R, G, B of pixel 0, then pixel 1, …).
 */
import { RGBImage, makeImage } from '../image';
import { Rng } from '../../util/rng';
import { Range, Ranges, checkParam, drawIn, mergeRanges, qualifier } from './common';

export type NoiseMode = 'float' | 'uint8';
export const NOISE_MODES: readonly NoiseMode[] = ['float', 'uint8'];

export interface NoiseParams {
  /** standard deviation on the 0–255 scale */
  sigma: number;
  /** 'float' (Restormer eval, no clip) or 'uint8' (PromptIR: clip + truncate to 8 bit) */
  mode: NoiseMode;
}

/** Allowed values of the numeric parameters. */
export const NOISE_LIMITS: { readonly sigma: Range } = { sigma: [0, 255] };
/** Sampling ranges: σ ~ U[0, 50] as in TextualDegRemoval's blind-denoising training data. */
export const NOISE_DEFAULTS: { readonly sigma: Range } = { sigma: [0, 50] };

/** Throws naming the parameter and its allowed range / values. */
export function validateNoise(p: NoiseParams): NoiseParams {
  checkParam('noise', 'sigma', p.sigma, NOISE_LIMITS.sigma);
  if (!NOISE_MODES.includes(p.mode)) throw new Error(`noise: mode must be one of ${NOISE_MODES.join(', ')}, got ${JSON.stringify(p.mode)}`);
  return p;
}

/** Draw σ uniformly from `ranges.sigma` (default [0, 50]); `mode` is not random. */
export function sampleNoise(rng: Rng, ranges?: Ranges<Pick<NoiseParams, 'sigma'>>, mode: NoiseMode = 'float'): NoiseParams {
  const r = mergeRanges('noise', NOISE_LIMITS, NOISE_DEFAULTS, ranges);
  return { sigma: drawIn(rng, r.sigma!), mode };
}

/**
 * Add Gaussian noise.
 * @param img [H,W,3] float32 RGB in [0,1]
 * @returns [H,W,3] float32; in 'float' mode values may lie outside [0,1]
 */
export function addGaussianNoise(img: RGBImage, params: NoiseParams, rng: Rng): RGBImage {
  const { sigma, mode } = validateNoise(params);
  const src = img.data;
  const out = new Float32Array(src.length);
  if (mode === 'float') {
    const s = sigma / 255;
    for (let i = 0; i < src.length; i++) out[i] = src[i] + rng.normal() * s;
  } else {
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      const k = v <= 0 || Number.isNaN(v) ? 0 : v >= 1 ? 255 : Math.round(v * 255);
      let y = k + rng.normal() * sigma;
      y = y < 0 ? 0 : y > 255 ? 255 : y;
      out[i] = Math.trunc(y) / 255;
    }
  }
  return makeImage(img.height, img.width, out);
}

/** 'slightly noisy' (σ < 10), 'noisy' (10 ≤ σ ≤ 30: σ15, σ25), 'heavily noisy' (σ > 30: σ50). */
export function noisePhrase(p: NoiseParams): string {
  return `${qualifier(p.sigma, 10, 30)}noisy`;
}
