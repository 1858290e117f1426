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

/** A stack of channels on the [0,255] scale, float64, each [h,w] row-major. */
interface Planes {
  h: number;
  w: number;
  channels: Float64Array[];
}

function shapeOf(img: RGBImage): string {
  return `[${img.height},${img.width},3]`;
}

/** Validate a pair of images and options, crop, scale to [0,255], optionally quantise and take Y. */
function prepare(what: string, a: RGBImage, b: RGBImage, opts: MetricOptions, minSize: number): [Planes, Planes] {
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
  return [toPlanes(what, 'a', a, crop, h, w, opts), toPlanes(what, 'b', b, crop, h, w, opts)];
}

function toPlanes(what: string, name: string, img: RGBImage, crop: number, h: number, w: number, opts: MetricOptions): Planes {
  const rgb = [new Float64Array(h * w), new Float64Array(h * w), new Float64Array(h * w)];
  const q = opts.quantize ?? false;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = ((y + crop) * img.width + (x + crop)) * 3;
      for (let c = 0; c < 3; c++) {
        const v = img.data[s + c];
        if (!Number.isFinite(v)) throw new Error(`${what}: ${name} has a non-finite value ${v} at (y=${y + crop}, x=${x + crop}, c=${c})`);
        rgb[c][y * w + x] = q ? (v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255)) : v * 255;
      }
    }
  }
  if (!opts.yChannel) return { h, w, channels: rgb };
  const Y = new Float64Array(h * w);
  for (let i = 0; i < Y.length; i++) Y[i] = rgbToY(rgb[0][i], rgb[1][i], rgb[2][i]);
  return { h, w, channels: [Y] };
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
  let se = 0;
  let n = 0;
  for (let c = 0; c < pa.channels.length; c++) {
    const x = pa.channels[c];
    const y = pb.channels[c];
    for (let i = 0; i < x.length; i++) {
      const d = x[i] - y[i];
      se += d * d;
    }
    n += x.length;
  }
  const mse = se / n;
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

/** Separable 11×11 Gaussian filter, 'valid' output [h−10, w−10]. */
function filterValid(x: Float64Array, h: number, w: number): Float64Array {
  const g = SSIM_WINDOW_1D;
  const w2 = w - 10;
  const h2 = h - 10;
  const tmp = new Float64Array(h * w2);
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < w2; xx++) {
      let s = 0;
      const base = y * w + xx;
      for (let k = 0; k < 11; k++) s += g[k] * x[base + k];
      tmp[y * w2 + xx] = s;
    }
  }
  const out = new Float64Array(h2 * w2);
  for (let y = 0; y < h2; y++) {
    for (let xx = 0; xx < w2; xx++) {
      let s = 0;
      for (let k = 0; k < 11; k++) s += g[k] * tmp[(y + k) * w2 + xx];
      out[y * w2 + xx] = s;
    }
  }
  return out;
}

/** SSIM of one channel pair (BasicSR `_ssim`): mean of the valid SSIM map. */
function ssimChannel(x: Float64Array, y: Float64Array, h: number, w: number): number {
  return ssimWith(x, y, (v) => filterValid(v, h, w));
}

/** SSIM of x and y with the local-mean filter `f`: filters x, y, x², y², xy and averages the map. */
function ssimWith(x: Float64Array, y: Float64Array, f: (v: Float64Array) => Float64Array): number {
  const n = x.length;
  const xx = new Float64Array(n);
  const yy = new Float64Array(n);
  const xy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xx[i] = x[i] * x[i];
    yy[i] = y[i] * y[i];
    xy[i] = x[i] * y[i];
  }
  return ssimMapMean(f(x), f(y), f(xx), f(yy), f(xy));
}

/** mean over the map of ((2μxμy + C1)(2σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2)). */
function ssimMapMean(mx: Float64Array, my: Float64Array, exx: Float64Array, eyy: Float64Array, exy: Float64Array): number {
  let s = 0;
  for (let i = 0; i < mx.length; i++) {
    const m1 = mx[i];
    const m2 = my[i];
    const m12 = m1 * m2;
    const m1s = m1 * m1;
    const m2s = m2 * m2;
    const s1 = exx[i] - m1s;
    const s2 = eyy[i] - m2s;
    const s12 = exy[i] - m12;
    s += ((2 * m12 + C1) * (2 * s12 + C2)) / ((m1s + m2s + C1) * (s1 + s2 + C2));
  }
  return s / mx.length;
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
  for (let c = 0; c < pa.channels.length; c++) s += ssimChannel(pa.channels[c], pb.channels[c], pa.h, pa.w);
  return s / pa.channels.length;
}

/** Separable 11-tap Gaussian along H, W and C with replicate padding 5; same-size output [h,w,3]. */
function filter3d(v: Float64Array, h: number, w: number, C: number): Float64Array {
  const g = SSIM_WINDOW_1D;
  // clamped (replicate) source index for every offset position -5 … n+4
  const clampTable = (n: number) => Int32Array.from({ length: n + 10 }, (_, i) => Math.min(n - 1, Math.max(0, i - 5)));
  const cc = clampTable(C);
  const cw = clampTable(w);
  const ch = clampTable(h);
  const a = new Float64Array(v.length);
  const b = new Float64Array(v.length);
  // along C (innermost), layout [h,w,C]
  for (let p = 0; p < h * w; p++) {
    const base = p * C;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let k = 0; k < 11; k++) s += g[k] * v[base + cc[c + k]];
      a[base + c] = s;
    }
  }
  // along W
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let k = 0; k < 11; k++) s += g[k] * a[(row + cw[x + k]) * C + c];
        b[(row + x) * C + c] = s;
      }
    }
  }
  // along H
  const rowLen = w * C;
  for (let y = 0; y < h; y++) {
    for (let j = 0; j < rowLen; j++) {
      let s = 0;
      for (let k = 0; k < 11; k++) s += g[k] * b[ch[y + k] * rowLen + j];
      a[y * rowLen + j] = s;
    }
  }
  return a;
}

/**
 * 3-D SSIM as reported by TextualDegRemoval / Restormer for RGB (`_ssim_3d`; see the file header):
 * 11×11×11 Gaussian (σ 1.5) over H, W and the colour axis, replicate padding, mean of the full map.
 * `yChannel` is not allowed (the official Y path is a 2-D SSIM).
 * @param a [H,W,3] float32 RGB in [0,1] (reference)
 * @param b [H,W,3] float32 RGB in [0,1]
 */
export function ssim3d(a: RGBImage, b: RGBImage, opts: Omit<MetricOptions, 'yChannel'> = {}): number {
  if ((opts as MetricOptions).yChannel) throw new Error('ssim3d: yChannel is not supported (3-D SSIM runs across the RGB channels)');
  const [pa, pb] = prepare('ssim3d', a, b, opts, 1);
  const { h, w } = pa;
  const n = h * w * 3;
  const x = new Float64Array(n);
  const y = new Float64Array(n);
  for (let p = 0; p < h * w; p++) {
    for (let c = 0; c < 3; c++) {
      x[p * 3 + c] = pa.channels[c][p];
      y[p * 3 + c] = pb.channels[c][p];
    }
  }
  return ssimWith(x, y, (v) => filter3d(v, h, w, 3));
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
