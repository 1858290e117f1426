/**
 * Image statistics that measure how much of a degradation an image carries, used to check that
 * degradation words steer the text-to-image model (", hazy" should raise the dark channel,
 * ", noisy" the high-frequency energy) and, later, that guidance from E'_txt carries less of the
 * degradation than guidance from E_txt (paper Fig. 1).
 */
import { RGBImage } from '../data/image';

/**
 * Mean dark channel (He, Sun & Tang, "Single Image Haze Removal Using Dark Channel Prior", CVPR 2009):
 * D(x) = min over a patch×patch window of min over RGB. Haze lifts it towards the airlight; clear
 * outdoor images have D ≈ 0 in most places. Borders use the window clipped to the image.
 * @param img RGB in [0,1]; @returns mean of D over the image, in [0,1]
 */
export function darkChannel(img: RGBImage, patch = 15): number {
  const { height: h, width: w, data } = img;
  const r = Math.floor(patch / 2);
  const m = new Float64Array(h * w);
  for (let i = 0; i < h * w; i++) m[i] = Math.min(data[i * 3], data[i * 3 + 1], data[i * 3 + 2]);
  // separable min filter: rows then columns
  const tmp = new Float64Array(h * w);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let v = Infinity;
      for (let k = Math.max(0, x - r); k <= Math.min(w - 1, x + r); k++) v = Math.min(v, m[y * w + k]);
      tmp[y * w + x] = v;
    }
  let sum = 0;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let v = Infinity;
      for (let k = Math.max(0, y - r); k <= Math.min(h - 1, y + r); k++) v = Math.min(v, tmp[k * w + x]);
      sum += v;
    }
  return sum / (h * w);
}

/**
 * High-frequency energy: mean squared response of the discrete Laplacian (4-neighbour, interior
 * pixels, per channel, values on the 0–255 scale). Noise and rain streaks raise it; blur lowers it.
 */
export function highFrequencyEnergy(img: RGBImage): number {
  const { height: h, width: w, data } = img;
  if (h < 3 || w < 3) throw new Error(`highFrequencyEnergy: image ${h}x${w} is smaller than 3x3`);
  let sum = 0;
  let n = 0;
  for (let y = 1; y < h - 1; y++)
    for (let x = 1; x < w - 1; x++)
      for (let c = 0; c < 3; c++) {
        const i = (y * w + x) * 3 + c;
        const lap = 4 * data[i] - data[i - 3] - data[i + 3] - data[i - w * 3] - data[i + w * 3];
        sum += (lap * 255) ** 2;
        n++;
      }
  return sum / n;
}

/** Mean squared difference per value (0–255 scale) between two images of equal shape. */
export function meanSquaredDistance(a: RGBImage, b: RGBImage): number {
  if (a.height !== b.height || a.width !== b.width) throw new Error(`meanSquaredDistance: shapes ${a.height}x${a.width} and ${b.height}x${b.width} differ`);
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += ((a.data[i] - b.data[i]) * 255) ** 2;
  return s / a.data.length;
}

/** The k candidates nearest to `query` by mean squared distance, nearest first. */
export function nearest<T extends { image: RGBImage }>(query: RGBImage, candidates: readonly T[], k = 1): Array<T & { distance: number }> {
  return candidates
    .map((c) => ({ ...c, distance: meanSquaredDistance(query, c.image) }))
    .sort((x, y) => x.distance - y.distance)
    .slice(0, k);
}

/** Median (the mean of the two middle values for an even count; NaN for none): the timing summaries of the benchmarks. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Mean and (population) standard deviation. */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
  return { mean, std };
}

/**
 * Ridge regression with an intercept: W minimising ‖[X 1]·W − Y‖² + λ‖W‖² (the intercept row is
 * penalised too, negligibly for λ ≪ n), by the normal equations and a Cholesky factorisation.
 * @param x row-major [n,p]; @param y row-major [n,q]
 * @returns predict(x') for row-major [m,p] → [m,q]
 * @throws Error when the shapes disagree or the system is not positive definite (λ ≤ 0 with collinear X)
 */
export function ridgeFit(x: Float32Array, y: Float32Array, n: number, p: number, q: number, lambda: number): (x2: Float32Array, m: number) => Float64Array {
  if (x.length !== n * p || y.length !== n * q) throw new Error(`ridgeFit: x must hold ${n}×${p} and y ${n}×${q} values, got ${x.length} and ${y.length}`);
  const d = p + 1;
  const a = new Float64Array(d * d);
  const b = new Float64Array(d * q);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) row[j] = x[i * p + j];
    row[p] = 1;
    for (let j = 0; j < d; j++) {
      const rj = row[j];
      if (rj === 0) continue;
      for (let k = j; k < d; k++) a[j * d + k] += rj * row[k];
      for (let k = 0; k < q; k++) b[j * q + k] += rj * y[i * q + k];
    }
  }
  for (let j = 0; j < d; j++) {
    a[j * d + j] += lambda;
    for (let k = 0; k < j; k++) a[j * d + k] = a[k * d + j];
  }
  choleskyInPlace(a, d, 'ridgeFit: the normal equations are not positive definite (collinear inputs: use lambda > 0)');
  // solve L·Lᵀ·W = b, column by column
  const w = new Float64Array(d * q);
  for (let c = 0; c < q; c++) {
    const col = choleskySolve(a, d, Float64Array.from({ length: d }, (_, i) => b[i * q + c]));
    for (let i = 0; i < d; i++) w[i * q + c] = col[i];
  }
  return (x2, m) => {
    if (x2.length !== m * p) throw new Error(`ridgeFit: predict needs ${m}×${p} values, got ${x2.length}`);
    const out = new Float64Array(m * q);
    for (let i = 0; i < m; i++) {
      for (let c = 0; c < q; c++) {
        let s = w[p * q + c];
        for (let j = 0; j < p; j++) s += x2[i * p + j] * w[j * q + c];
        out[i * q + c] = s;
      }
    }
    return out;
  };
}

/**
 * Cholesky factorisation a = L·Lᵀ of a symmetric positive-definite [d,d] row-major matrix, in place: reads the
 * lower triangle and leaves L there.
 * @throws Error(`notPositive`) when a pivot is ≤ 0 (the matrix is not positive definite)
 */
export function choleskyInPlace(a: Float64Array, d: number, notPositive: string): void {
  for (let j = 0; j < d; j++) {
    let s = a[j * d + j];
    for (let k = 0; k < j; k++) s -= a[j * d + k] ** 2;
    if (!(s > 0)) throw new Error(notPositive);
    const ljj = Math.sqrt(s);
    a[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let t = a[i * d + j];
      for (let k = 0; k < j; k++) t -= a[i * d + k] * a[j * d + k];
      a[i * d + j] = t / ljj;
    }
  }
}

/** Solve L·Lᵀ·x = b with L from `choleskyInPlace` (forward, then backward substitution). */
export function choleskySolve(l: Float64Array, d: number, b: ArrayLike<number>): Float64Array {
  const z = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let t = b[i];
    for (let k = 0; k < i; k++) t -= l[i * d + k] * z[k];
    z[i] = t / l[i * d + i];
  }
  const x = new Float64Array(d);
  for (let i = d - 1; i >= 0; i--) {
    let t = z[i];
    for (let k = i + 1; k < d; k++) t -= l[k * d + i] * x[k];
    x[i] = t / l[i * d + i];
  }
  return x;
}
