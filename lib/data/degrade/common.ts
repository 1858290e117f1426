/**
 * Shared pieces of the degradation families (paper's M1 synthesis): parameter ranges and their
 * validation, square convolution kernels, and a sparse-tap 2-D convolution on RGBImage.
 *
 * Everything here is pure JS on typed arrays: float64 accumulation, float32 storage.
 */
import { RGBImage, makeImage } from '../image';
import { Rng } from '../../util/rng';

/** A closed interval [lo, hi]. */
export type Range = readonly [number, number];

/** Allowed (validation) or default (sampling) ranges for each numeric parameter of a family. */
export type Ranges<P> = { readonly [K in keyof P]?: Range };

/**
 * Throws unless `value` is a finite number in [lo, hi]. The message names the family, the
 * parameter and the allowed range: `noise: sigma must be a number in [0, 255], got NaN`.
 */
export function checkParam(family: string, name: string, value: unknown, [lo, hi]: Range): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || value > hi) {
    throw new Error(`${family}: ${name} must be a number in [${lo}, ${hi}], got ${typeof value === 'number' ? value : JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Validate user-given sampling ranges against the allowed limits and merge them over the
 * defaults. A range must satisfy limit.lo <= lo <= hi <= limit.hi.
 */
export function mergeRanges<P>(family: string, limits: Ranges<P>, defaults: Ranges<P>, given?: Ranges<P>): Ranges<P> {
  const out: Record<string, Range> = { ...(defaults as Record<string, Range>) };
  for (const [name, r] of Object.entries((given ?? {}) as Record<string, Range | undefined>)) {
    if (r === undefined) continue;
    const lim = (limits as Record<string, Range | undefined>)[name];
    if (!lim) throw new Error(`${family}: unknown parameter '${name}' in ranges (expected ${Object.keys(limits).join(', ')})`);
    if (!Array.isArray(r) || r.length !== 2) throw new Error(`${family}: range for ${name} must be [lo, hi], got ${JSON.stringify(r)}`);
    checkParam(family, `${name} range lo`, r[0], lim);
    checkParam(family, `${name} range hi`, r[1], lim);
    if (r[0] > r[1]) throw new Error(`${family}: range for ${name} must have lo <= hi, got [${r[0]}, ${r[1]}]`);
    out[name] = [r[0], r[1]];
  }
  return out as Ranges<P>;
}

/** Draw uniformly from a range (exactly `lo` when lo == hi; one rng draw either way). */
export function drawIn(rng: Rng, r: Range): number {
  return rng.uniform(r[0], r[1]);
}

/**
 * A square, odd-sized 2-D kernel, centred at (radius, radius).
 * `weights` is row-major [size, size], float64.
 */
export interface Kernel {
  readonly size: number;
  readonly weights: Float64Array;
}

/** Sum of a kernel's weights (1 for every PSF produced here). */
export function kernelSum(k: Kernel): number {
  let s = 0;
  for (let i = 0; i < k.weights.length; i++) s += k.weights[i];
  return s;
}

/** Divide a kernel by its sum in place; throws if the sum is not positive. */
export function normaliseKernel(what: string, k: Kernel): Kernel {
  const s = kernelSum(k);
  if (!(s > 0)) throw new Error(`${what}: kernel has non-positive sum ${s}`);
  for (let i = 0; i < k.weights.length; i++) k.weights[i] /= s;
  return k;
}

/** Normalised 1-D Gaussian exp(-x²/2σ²), x = -radius..radius (cv2.getGaussianKernel for σ > 0). */
export function gaussian1d(sigma: number, radius: number): Float64Array {
  const g = new Float64Array(2 * radius + 1);
  let s = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp(-(i * i) / (2 * sigma * sigma));
    g[i + radius] = v;
    s += v;
  }
  for (let i = 0; i < g.length; i++) g[i] /= s;
  return g;
}

export type Border = 'replicate' | 'reflect';

/** Index into [0, n) under a border rule. 'reflect' is reflect-101 (cv2 default: …2 1 | 0 1 2 …). */
export function borderIndex(i: number, n: number, border: Border): number {
  if (i >= 0 && i < n) return i;
  if (border === 'replicate' || n === 1) return i < 0 ? 0 : n - 1;
  const period = 2 * n - 2;
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - j;
  return j;
}

/**
 * 2-D convolution of every channel with `k` (true convolution: out(p) = Σ_q k(q)·img(p − q);
 * the same as correlation for point-symmetric kernels), output the same size as the input,
 * pixels outside the image taken by `border`. Zero taps are skipped, so sparse PSFs (motion
 * trajectories) are cheap. Accumulates in float64.
 *
 * @param img [H,W,3] float32
 * @returns [H,W,3] float32
 */
export function convolve(img: RGBImage, k: Kernel, border: Border = 'replicate'): RGBImage {
  const { height: H, width: W } = img;
  const r = (k.size - 1) / 2;
  if (!(Number.isInteger(r) && r >= 0 && k.weights.length === k.size * k.size)) {
    throw new Error(`convolve: kernel must be square with odd size, got size ${k.size} and ${k.weights.length} weights`);
  }
  // padded copy [H+2r, W+2r, 3]
  const Hp = H + 2 * r;
  const Wp = W + 2 * r;
  const pad = new Float32Array(Hp * Wp * 3);
  const colIdx = new Int32Array(Wp);
  for (let x = 0; x < Wp; x++) colIdx[x] = borderIndex(x - r, W, border);
  for (let y = 0; y < Hp; y++) {
    const sy = borderIndex(y - r, H, border);
    for (let x = 0; x < Wp; x++) {
      const s = (sy * W + colIdx[x]) * 3;
      const d = (y * Wp + x) * 3;
      pad[d] = img.data[s];
      pad[d + 1] = img.data[s + 1];
      pad[d + 2] = img.data[s + 2];
    }
  }
  const acc = new Float64Array(H * W * 3);
  const rowLen = W * 3;
  for (let ky = 0; ky < k.size; ky++) {
    for (let kx = 0; kx < k.size; kx++) {
      const w = k.weights[ky * k.size + kx];
      if (w === 0) continue;
      // convolution: out(y,x) += w · img(y − (ky−r), x − (kx−r)) = pad(y + 2r − ky, x + 2r − kx)
      const oy = 2 * r - ky;
      const ox = 2 * r - kx;
      for (let y = 0; y < H; y++) {
        const src = ((y + oy) * Wp + ox) * 3;
        const dst = y * rowLen;
        for (let j = 0; j < rowLen; j++) acc[dst + j] += w * pad[src + j];
      }
    }
  }
  return makeImage(H, W, Float32Array.from(acc));
}

/** Phrase qualifier: 'slightly ', '' or 'heavily ' from a strength and two thresholds. */
export function qualifier(strength: number, slightBelow: number, heavyAbove: number): string {
  return strength < slightBelow ? 'slightly ' : strength > heavyAbove ? 'heavily ' : '';
}
