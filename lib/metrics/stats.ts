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
