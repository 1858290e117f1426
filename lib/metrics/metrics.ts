/**
 * PSNR and SSIM with the conventions of XPixelGroup/BasicSR `basicsr/metrics/psnr_ssim.py`,
 * plus the 3-D SSIM that TextualDegRemoval (`metrics/psnr_ssim.py` `_ssim_3d`) and Restormer report for RGB.
 *
 * Inputs: RGBImage, float32 RGB HWC in [0,1]. Every metric first maps the values to the
 * [0,255] scale in float64 (v·255) and computes on those numbers WITHOUT rounding, as BasicSR
 * does with whatever array it is given (it only casts to float64). Option `quantize: true` first
 * applies round(clip(v,0,1)·255), i.e. BasicSR's `tensor2img` (what the official evaluation scripts
 * do to the network output before measuring) — use it for images read from 8-bit files, where it
 * also removes the float32 error of k/255 (up to ~1.5e-5 on the 255 scale).
 *
 * - `cropBorder` pixels are removed on each side before anything else (BasicSR `crop_border`).
 * - `yChannel`: BT.601 luma as MATLAB rgb2ycbcr / BasicSR `to_y_channel`:
 *   Y = 16 + 65.481·R + 128.553·G + 24.966·B with R,G,B in [0,1] → Y in [16, 235]
 *   (BasicSR reads BGR with cv2 and applies the same weights to the right channels).
 * - PSNR = 10·log10(255² / MSE), MSE over all values (all channels). Identical images give
 *   `Infinity` (BasicSR returns float('inf')); `JSON.stringify` turns it into `null`, which is
 *   what the CLI's --json prints.
 * - SSIM (`ssim`): BasicSR `_ssim` = Wang et al. SSIM_index.m v1.0: 11×11 Gaussian window, σ 1.5
 *   (cv2.getGaussianKernel(11, 1.5) outer product), C1 = (0.01·255)², C2 = (0.03·255)², 'valid'
 *   filtering (the map is (H−10)×(W−10): no border handling), mean of the map, computed per channel
 *   and averaged over channels. Needs H, W ≥ 11 after cropping.
 * - 3-D SSIM (`ssim3d`): `_ssim_3d` in TextualDegRemoval `metrics/psnr_ssim.py` (from Restormer /
 *   NAFNet / HINet): the window is the 11×11×11 separable Gaussian g⊗g⊗g (g = 11-tap, σ 1.5) over
 *   (H, W, C) — the 3 colour channels are the third dimension — with 'replicate' padding of 5 in all
 *   three dimensions (so the channel axis is padded to 13 by repeating R and B) and a same-size
 *   output; SSIM is the mean of the H×W×3 map. Same C1, C2 (the official code picks max 255 unless
 *   the image's max is ≤ 1, then 1; with our ×255 mapping that is always 255). The official code
 *   runs this in float32 on the GPU (torch Conv3d); we use float64, so expect differences ~1e-6.
 *   Not comparable with `ssim` (different window and border handling).
 *
 * Note (not copied): TextualDegRemoval's Y-channel SSIM `_ssim_cly` uses replicate padding and no
 * crop instead of BasicSR's valid filtering; `ssim(…, {yChannel: true})` here is the BasicSR one.
 */
import { RGBImage } from '../data/image';

export interface MetricOptions {
  /** pixels removed on each side before measuring (BasicSR crop_border); default 0 */
  cropBorder?: number;
  /** measure on BT.601 Y (16–235) instead of RGB; default false */
  yChannel?: boolean;
  /** round(clip(v,0,1)·255) first, like BasicSR tensor2img; default false (v·255 as is) */
  quantize?: boolean;
}

/**
 * An image as rows of channels on the [0,255] scale (float64), read on demand from the RGBImage:
 * cropped, optionally quantised, optionally as Y. Memory: one row at a time (the metrics below stream
 * over rows, so a 24-Mpixel pair needs no more than its two float32 images).
 */
interface Rows {
  h: number;
  w: number;
  /** 3 (RGB) or 1 (Y) */
  channels: number;
  /** fill `out` (length w) with row y of channel c */
  row(c: number, y: number, out: Float64Array): void;
}

function shapeOf(img: RGBImage): string {
  return `[${img.height},${img.width},3]`;
}

/** Validate a pair of images and options (shapes, crop, finite values) and view them as rows. */
function prepare(what: string, a: RGBImage, b: RGBImage, opts: MetricOptions, minSize: number): [Rows, Rows] {
  for (const [name, img] of [['a', a], ['b', b]] as const) {
    if (!img || !(img.data instanceof Float32Array) || img.data.length !== img.height * img.width * 3) {
      throw new Error(`${what}: ${name} must be an RGBImage (float32 data of length H*W*3)`);
    }
  }
  if (a.height !== b.height || a.width !== b.width) {
    throw new Error(`${what}: a ${shapeOf(a)} and b ${shapeOf(b)} must have equal shapes`);
  }
  const crop = opts.cropBorder ?? 0;
  if (!(Number.isInteger(crop) && crop >= 0)) throw new Error(`${what}: cropBorder must be a non-negative integer, got ${crop}`);
  const h = a.height - 2 * crop;
  const w = a.width - 2 * crop;
  if (h < minSize || w < minSize) {
    throw new Error(`${what}: image ${shapeOf(a)} with cropBorder ${crop} leaves ${h}x${w}, need at least ${minSize}x${minSize}`);
  }
  for (const [name, img] of [['a', a], ['b', b]] as const) checkFinite(what, name, img, crop, h, w);
  return [rowsOf(a, crop, h, w, opts), rowsOf(b, crop, h, w, opts)];
}

function checkFinite(what: string, name: string, img: RGBImage, crop: number, h: number, w: number): void {
  for (let y = 0; y < h; y++) {
    const base = ((y + crop) * img.width + crop) * 3;
    for (let i = 0; i < w * 3; i++) {
      const v = img.data[base + i];
      if (!Number.isFinite(v)) throw new Error(`${what}: ${name} has a non-finite value ${v} at (y=${y + crop}, x=${Math.floor(i / 3) + crop}, c=${i % 3})`);
    }
  }
}

function rowsOf(img: RGBImage, crop: number, h: number, w: number, opts: MetricOptions): Rows {
  const q = opts.quantize ?? false;
  const scaled = (v: number) => (q ? (v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255)) : v * 255);
  const d = img.data;
  if (!opts.yChannel) {
    return {
      h,
      w,
      channels: 3,
      row(c, y, out) {
        const base = ((y + crop) * img.width + crop) * 3 + c;
        for (let x = 0; x < w; x++) out[x] = scaled(d[base + 3 * x]);
      },
    };
  }
  return {
    h,
    w,
    channels: 1,
    row(_c, y, out) {
      const base = ((y + crop) * img.width + crop) * 3;
      for (let x = 0; x < w; x++) out[x] = rgbToY(scaled(d[base + 3 * x]), scaled(d[base + 3 * x + 1]), scaled(d[base + 3 * x + 2]));
    },
  };
}

/**
 * BT.601 luma on the [0,255] scale from R, G, B on the [0,255] scale:
 * Y = 16 + (65.481·R + 128.553·G + 24.966·B)/255 (MATLAB rgb2ycbcr, BasicSR rgb2ycbcr y_only).
 */
export function rgbToY(r: number, g: number, b: number): number {
  return 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255;
}

/**
 * PSNR in dB, peak 255, on RGB (all channels) or Y.
 * @param a [H,W,3] float32 RGB in [0,1] (reference)
 * @param b [H,W,3] float32 RGB in [0,1]
 * @returns dB; Infinity when the (cropped, converted) images are identical
 */
export function psnr(a: RGBImage, b: RGBImage, opts: MetricOptions = {}): number {
  const [pa, pb] = prepare('psnr', a, b, opts, 1);
  const { h, w } = pa;
  const x = new Float64Array(w);
  const y = new Float64Array(w);
  let se = 0;
  // channel by channel, rows in order: the same summation order as over whole planes
  for (let c = 0; c < pa.channels; c++) {
    for (let r = 0; r < h; r++) {
      pa.row(c, r, x);
      pb.row(c, r, y);
      for (let i = 0; i < w; i++) {
        const d = x[i] - y[i];
        se += d * d;
      }
    }
  }
  const mse = se / (h * w * pa.channels);
  if (mse === 0) return Infinity;
  return 10 * Math.log10((255 * 255) / mse);
}

const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;
/** cv2.getGaussianKernel(11, 1.5): exp(−(i−5)²/(2·1.5²)), i = 0..10, normalised. */
export const SSIM_WINDOW_1D: Float64Array = (() => {
  const g = new Float64Array(11);
  let s = 0;
  for (let i = 0; i < 11; i++) s += g[i] = Math.exp(-((i - 5) ** 2) / (2 * 1.5 * 1.5));
  for (let i = 0; i < 11; i++) g[i] /= s;
  return g;
})();

const [G0, G1, G2, G3, G4, G5, G6, G7, G8, G9, G10] = SSIM_WINDOW_1D;

/** dst[i] = Σ_k g[k]·src[off + i·step + k] for i < n (k ascending: the sums of a plain loop). */
function tap11(src: Float64Array, off: number, step: number, dst: Float64Array, n: number): void {
  for (let i = 0, b = off; i < n; i++, b += step) {
    dst[i] = G0 * src[b] + G1 * src[b + 1] + G2 * src[b + 2] + G3 * src[b + 3] + G4 * src[b + 4] + G5 * src[b + 5] + G6 * src[b + 6] + G7 * src[b + 7] + G8 * src[b + 8] + G9 * src[b + 9] + G10 * src[b + 10];
  }
}

/** dst[j] = Σ_k g[k]·rows[k][j] for j < n (k ascending). */
function vertical11(rows: Float64Array[], dst: Float64Array, n: number): void {
  const [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10] = rows;
  for (let j = 0; j < n; j++) {
    dst[j] = G0 * r0[j] + G1 * r1[j] + G2 * r2[j] + G3 * r3[j] + G4 * r4[j] + G5 * r5[j] + G6 * r6[j] + G7 * r7[j] + G8 * r8[j] + G9 * r9[j] + G10 * r10[j];
  }
}

/** One term of the SSIM map: ((2μxμy + C1)(2σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2)). */
function ssimTerm(m1: number, m2: number, exx: number, eyy: number, exy: number): number {
  const m12 = m1 * m2;
  const m1s = m1 * m1;
  const m2s = m2 * m2;
  const s1 = exx - m1s;
  const s2 = eyy - m2s;
  const s12 = exy - m12;
  return ((2 * m12 + C1) * (2 * s12 + C2)) / ((m1s + m2s + C1) * (s1 + s2 + C2));
}

/**
 * SSIM of one channel pair (BasicSR `_ssim`): mean of the valid SSIM map. Separable 11×11 Gaussian:
 * each input row is filtered horizontally into a ring of 11 rows of x, y, x², y², xy, and each output
 * row is the vertical sum over the ring (same sums, same order, as filtering whole planes).
 */
function ssimChannel(pa: Rows, pb: Rows, c: number): number {
  const g = SSIM_WINDOW_1D;
  const { h, w } = pa;
  const w2 = w - 10;
  const h2 = h - 10;
  const x = new Float64Array(w);
  const y = new Float64Array(w);
  const sq = [new Float64Array(w), new Float64Array(w), new Float64Array(w)];
  // ring[q][k]: horizontally filtered row (input row index ≡ k mod 11) of quantity q (x, y, xx, yy, xy)
  const ring = Array.from({ length: 5 }, () => Array.from({ length: 11 }, () => new Float64Array(w2)));
  const hfilter = (src: Float64Array, dst: Float64Array) => tap11(src, 0, 1, dst, w2);
  const mu = Array.from({ length: 5 }, () => new Float64Array(w2));
  let sum = 0;
  for (let r = 0; r < h; r++) {
    pa.row(c, r, x);
    pb.row(c, r, y);
    for (let i = 0; i < w; i++) {
      sq[0][i] = x[i] * x[i];
      sq[1][i] = y[i] * y[i];
      sq[2][i] = x[i] * y[i];
    }
    const slot = r % 11;
    hfilter(x, ring[0][slot]);
    hfilter(y, ring[1][slot]);
    hfilter(sq[0], ring[2][slot]);
    hfilter(sq[1], ring[3][slot]);
    hfilter(sq[2], ring[4][slot]);
    const oy = r - 10; // output row complete once input row oy+10 is in
    if (oy < 0) continue;
    for (let q = 0; q < 5; q++) vertical11(Array.from({ length: 11 }, (_, k) => ring[q][(oy + k) % 11]), mu[q], w2);
    for (let xx = 0; xx < w2; xx++) sum += ssimTerm(mu[0][xx], mu[1][xx], mu[2][xx], mu[3][xx], mu[4][xx]);
  }
  return sum / (h2 * w2);
}

/**
 * SSIM (BasicSR `calculate_ssim`, non-3-D): per-channel Gaussian-window SSIM, valid filtering,
 * averaged over channels (or on Y). Range [−1, 1], 1 for identical images.
 * @param a [H,W,3] float32 RGB in [0,1] (reference); H, W ≥ 11 + 2·cropBorder
 * @param b [H,W,3] float32 RGB in [0,1]
 */
export function ssim(a: RGBImage, b: RGBImage, opts: MetricOptions = {}): number {
  const [pa, pb] = prepare('ssim', a, b, opts, 11);
  let s = 0;
  for (let c = 0; c < pa.channels; c++) s += ssimChannel(pa, pb, c);
  return s / pa.channels;
}

/**
 * 3-D SSIM as reported by TextualDegRemoval / Restormer for RGB (`_ssim_3d`; see the file header):
 * 11×11×11 Gaussian (σ 1.5) over H, W and the colour axis, replicate padding, mean of the full map.
 * `yChannel` is not allowed (the official Y path is a 2-D SSIM). Streams over rows: each input row of
 * x, y, x², y², xy ([w,3]) is filtered along C and W, and each output row is the sum along H over a
 * ring of 11 such rows (replicate padding = clamped row indices).
 * @param a [H,W,3] float32 RGB in [0,1] (reference)
 * @param b [H,W,3] float32 RGB in [0,1]
 */
export function ssim3d(a: RGBImage, b: RGBImage, opts: Omit<MetricOptions, 'yChannel'> = {}): number {
  if ((opts as MetricOptions).yChannel) throw new Error('ssim3d: yChannel is not supported (3-D SSIM runs across the RGB channels)');
  const [pa, pb] = prepare('ssim3d', a, b, opts, 1);
  const { h, w } = pa;
  const C = 3;
  const g = SSIM_WINDOW_1D;
  const clampTable = (n: number) => Int32Array.from({ length: n + 10 }, (_, i) => Math.min(n - 1, Math.max(0, i - 5)));
  const cc = clampTable(C);
  const cw = clampTable(w);
  const ch = clampTable(h);
  const rowLen = w * C;
  const chan = new Float64Array(w);
  const v = Array.from({ length: 5 }, () => new Float64Array(rowLen)); // x, y, xx, yy, xy of one row, [w,3]
  const tmp = new Float64Array(rowLen);
  // filtered rows (C then W) of every quantity for the input rows still needed, keyed by row index mod 11
  const ring = Array.from({ length: 5 }, () => Array.from({ length: 11 }, () => new Float64Array(rowLen)));
  const filled = new Int32Array(11).fill(-1);
  const filterRow = (r: number) => {
    const slot = r % 11;
    if (filled[slot] === r) return;
    for (let c = 0; c < C; c++) {
      pa.row(c, r, chan);
      for (let x = 0; x < w; x++) v[0][x * C + c] = chan[x];
      pb.row(c, r, chan);
      for (let x = 0; x < w; x++) v[1][x * C + c] = chan[x];
    }
    for (let i = 0; i < rowLen; i++) {
      v[2][i] = v[0][i] * v[0][i];
      v[3][i] = v[1][i] * v[1][i];
      v[4][i] = v[0][i] * v[1][i];
    }
    for (let q = 0; q < 5; q++) {
      const src = v[q];
      // along C (innermost)
      for (let x = 0; x < w; x++) {
        const base = x * C;
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let k = 0; k < 11; k++) s += g[k] * src[base + cc[c + k]];
          tmp[base + c] = s;
        }
      }
      // along W
      const dst = ring[q][slot];
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let k = 0; k < 11; k++) s += g[k] * tmp[cw[x + k] * C + c];
          dst[x * C + c] = s;
        }
      }
    }
    filled[slot] = r;
  };
  const mu = Array.from({ length: 5 }, () => new Float64Array(rowLen));
  let sum = 0;
  for (let y = 0; y < h; y++) {
    // rows y−5 … y+5, clamped; with h < 11 a clamped row repeats, and the ring always holds the needed ones
    const need = Array.from({ length: 11 }, (_, k) => ch[y + k]);
    for (let q = 0; q < 5; q++) mu[q].fill(0);
    for (let k = 0; k < 11; k++) {
      filterRow(need[k]);
    }
    for (let q = 0; q < 5; q++) vertical11(need.map((r) => ring[q][r % 11]), mu[q], rowLen);
    for (let j = 0; j < rowLen; j++) sum += ssimTerm(mu[0][j], mu[1][j], mu[2][j], mu[3][j], mu[4][j]);
  }
  return sum / (h * rowLen);
}

export interface Metrics {
  /** RGB PSNR, dB (Infinity if identical) */
  psnr: number;
  /** RGB SSIM, BasicSR per-channel */
  ssim: number;
  /** Y-channel PSNR, dB */
  psnrY: number;
  /** Y-channel SSIM, BasicSR */
  ssimY: number;
  /** RGB 3-D SSIM, TextualDegRemoval/Restormer */
  ssim3d: number;
}

/**
 * All metrics of `test` against `clean` with one crop border (and optional quantisation).
 * @param clean [H,W,3] float32 RGB in [0,1]
 * @param test [H,W,3] float32 RGB in [0,1]
 */
export function computeMetrics(clean: RGBImage, test: RGBImage, opts: Omit<MetricOptions, 'yChannel'> = {}): Metrics {
  const base = { cropBorder: opts.cropBorder ?? 0, quantize: opts.quantize ?? false };
  return {
    psnr: psnr(clean, test, base),
    ssim: ssim(clean, test, base),
    psnrY: psnr(clean, test, { ...base, yChannel: true }),
    ssimY: ssim(clean, test, { ...base, yChannel: true }),
    ssim3d: ssim3d(clean, test, base),
  };
}
