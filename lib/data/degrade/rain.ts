/**
 * Rain streaks, Rain100L-like, additive model O = clip(B + S, 0, 1) (after
 * liruoteng/HeavyRainRemoval `render_rain.m` and the common Python variant that motion-blurs
 * thresholded uniform noise with a rotated line kernel).
 *
 * Streak layer S (one grey channel, added to R, G and B alike):
 * 1. seeds: on a canvas larger than the image by the kernel radius on every side (so streaks can
 *    enter from outside), each pixel is a seed with probability `density`, with amplitude
 *    a ~ U[0.5, 1];
 * 2. each seed is smeared with a normalised line kernel of `length` px at `angle` degrees from the
 *    vertical (positive = the streak's lower end leans right), rasterised by bilinear splatting;
 * 3. S = min(1, intensity · length · (seeds ∗ line)): the factor `length` undoes the kernel
 *    normalisation so that a streak's core brightness ≈ a · intensity independently of its length.
 *
 * Parameters: density (seeds per pixel), length (px), angle (degrees), intensity (peak brightness).
 */
import { RGBImage, makeImage } from '../image';
import { Rng } from '../../util/rng';
import { Kernel, Range, Ranges, checkParam, drawIn, mergeRanges, normaliseKernel, qualifier } from './common';

export interface RainParams {
  /** probability that a pixel seeds a streak */
  density: number;
  /** streak length in pixels */
  length: number;
  /** streak angle in degrees from the vertical, positive leaning right at the bottom */
  angle: number;
  /** peak brightness added by a streak (0–1 scale) */
  intensity: number;
}

export const RAIN_KEYS = ['density', 'length', 'angle', 'intensity'] as const;

export const RAIN_LIMITS: { readonly [K in keyof RainParams]: Range } = {
  density: [0, 0.2],
  length: [1, 100],
  angle: [-90, 90],
  intensity: [0, 1],
};
/** Light rain like Rain100L: sparse, thin, fairly long streaks, at most ±30° from vertical. */
export const RAIN_DEFAULTS: { readonly [K in keyof RainParams]: Range } = {
  density: [0.002, 0.02],
  length: [10, 40],
  angle: [-30, 30],
  intensity: [0.5, 0.9],
};

export function validateRain(p: RainParams): RainParams {
  for (const k of RAIN_KEYS) checkParam('rain', k, p[k], RAIN_LIMITS[k]);
  return p;
}

/** Draw density, length, angle, intensity (in that order) uniformly from their ranges. */
export function sampleRain(rng: Rng, ranges?: Ranges<RainParams>): RainParams {
  const r = mergeRanges('rain', RAIN_LIMITS, RAIN_DEFAULTS, ranges);
  return { density: drawIn(rng, r.density!), length: drawIn(rng, r.length!), angle: drawIn(rng, r.angle!), intensity: drawIn(rng, r.intensity!) };
}

/**
 * Normalised line kernel (sum 1): a segment of `length` px through the centre at `angle`
 * degrees from the vertical, sampled every 1/4 px and splatted bilinearly.
 */
export function lineKernel(length: number, angle: number): Kernel {
  checkParam('lineKernel', 'length', length, RAIN_LIMITS.length);
  checkParam('lineKernel', 'angle', angle, RAIN_LIMITS.angle);
  const radius = Math.ceil(length / 2) + 1;
  const size = 2 * radius + 1;
  const w = new Float64Array(size * size);
  const th = (angle * Math.PI) / 180;
  const dx = Math.sin(th);
  const dy = Math.cos(th);
  const n = Math.max(2, Math.ceil(length * 4) + 1);
  for (let i = 0; i < n; i++) {
    const t = -length / 2 + (length * i) / (n - 1);
    splat(w, size, radius + t * dx, radius + t * dy, 1);
  }
  return normaliseKernel('lineKernel', { size, weights: w });
}

/** Add `v` at the sub-pixel point (x, y) of a [size,size] grid with bilinear weights. */
export function splat(w: Float64Array, size: number, x: number, y: number, v: number): void {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const fx = x - x0;
  const fy = y - y0;
  const put = (xx: number, yy: number, a: number) => {
    if (a !== 0 && xx >= 0 && xx < size && yy >= 0 && yy < size) w[yy * size + xx] += a * v;
  };
  put(x0, y0, (1 - fx) * (1 - fy));
  put(x0 + 1, y0, fx * (1 - fy));
  put(x0, y0 + 1, (1 - fx) * fy);
  put(x0 + 1, y0 + 1, fx * fy);
}

/**
 * The streak layer S, [H,W] float64 in [0,1].
 * Random draws: per canvas pixel (row-major) one `rng.random()`, plus one `rng.uniform` per seed.
 */
export function rainLayer(height: number, width: number, params: RainParams, rng: Rng): Float64Array {
  const { density, length, angle, intensity } = validateRain(params);
  const k = lineKernel(length, angle);
  const r = (k.size - 1) / 2;
  const S = new Float64Array(height * width);
  const Hc = height + 2 * r;
  const Wc = width + 2 * r;
  for (let cy = 0; cy < Hc; cy++) {
    for (let cx = 0; cx < Wc; cx++) {
      if (rng.random() >= density) continue;
      const a = rng.uniform(0.5, 1);
      // seed at image coords (cy − r, cx − r); the kernel's centre lands there
      const y0 = cy - 2 * r;
      const x0 = cx - 2 * r;
      for (let ky = 0; ky < k.size; ky++) {
        const y = y0 + ky;
        if (y < 0 || y >= height) continue;
        for (let kx = 0; kx < k.size; kx++) {
          const x = x0 + kx;
          const kw = k.weights[ky * k.size + kx];
          if (kw === 0 || x < 0 || x >= width) continue;
          S[y * width + x] += a * kw;
        }
      }
    }
  }
  const gain = intensity * length;
  for (let i = 0; i < S.length; i++) S[i] = Math.min(1, S[i] * gain);
  return S;
}

/**
 * O = clip(B + S, 0, 1) with S from `rainLayer`.
 * @param img [H,W,3] float32 RGB in [0,1]
 * @returns [H,W,3] float32 in [0,1]
 */
export function addRain(img: RGBImage, params: RainParams, rng: Rng): RGBImage {
  const S = rainLayer(img.height, img.width, params, rng);
  const out = new Float32Array(img.data.length);
  for (let p = 0; p < S.length; p++) {
    for (let c = 0; c < 3; c++) {
      const v = img.data[p * 3 + c] + S[p];
      out[p * 3 + c] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return makeImage(img.height, img.width, out);
}

/** 'slightly rainy' (density < 0.005), 'rainy', 'heavily rainy' (density > 0.03). */
export function rainPhrase(p: RainParams): string {
  return `${qualifier(p.density, 0.005, 0.03)}rainy`;
}
