/**
 * Non-local means denoising: A. Buades, B. Coll, J.-M. Morel, "A non-local algorithm for image
 * denoising", CVPR 2005 — with the conventions of OpenCV's `cv2.fastNlMeansDenoising` (photo module,
 * fast_nlmeans_denoising_invoker.hpp) and `cv2.fastNlMeansDenoisingColored`:
 *
 *   û(p) = Σ_q w(p,q)·v(q) / Σ_q w(p,q),  q over the search window (21×21) around p, p itself included;
 *   w(p,q) = exp(−d²(p,q) / (C·h²)),  d²(p,q) = (1/T²)·Σ_{template} Σ_c (v(p+o) − v(q+o))²,
 *   T×T template (7×7), C channels, weights below 0.001 set to 0; values on the 0–255 scale;
 *   the image extended by reflection (BORDER_REFLECT_101) for templates and windows past the edge.
 *
 * Colour spaces:
 *  - `'lab'` (fastNlMeansDenoisingColored): RGB → CIE L*a*b* as OpenCV's COLOR_LRGB2Lab (no sRGB gamma:
 *    the values are taken as linear; D65 white; 8-bit scaling L·255/100, a + 128, b + 128), L filtered
 *    with strength h (C = 1) and the (a, b) pair with hColor (C = 2) — two separate NLM passes — then
 *    back to RGB;
 *  - `'rgb'` (fastNlMeansDenoising on a 3-channel image): one pass on (R, G, B), C = 3.
 * Differences from OpenCV, both far below the noise: we work in float64 (OpenCV rounds the Lab planes
 * and the output to 8 bit and uses fixed-point weights from a table indexed by ⌊SSD/64⌋), and we take
 * the float input as it is (no clipping to [0,1], no 8-bit rounding). test/restore/classical.test.ts
 * cross-checks against cv2 (test/restore/classical_known_answers.py).
 *
 * Cost: for every one of the 21² offsets, the squared differences of the shifted image, box-summed
 * over the template with running sums — O(N·search²) independent of the template size.
 */
import { RGBImage, makeImage } from '../../data/image';
import { borderIndex } from '../../data/degrade/common';

export type NlmColorSpace = 'lab' | 'rgb';

export interface NlmOptions {
  /** filter strength h on the 0–255 scale (for L in 'lab', for R, G, B in 'rgb') */
  h: number;
  /** 'lab' only: strength for (a, b); default = h */
  hColor?: number;
  /** template (patch) side, odd; OpenCV default 7 */
  template?: number;
  /** search window side, odd; OpenCV default 21 */
  search?: number;
  /** default 'lab' (fastNlMeansDenoisingColored) */
  space?: NlmColorSpace;
}

const WEIGHT_THRESHOLD = 0.001;

/**
 * NLM on planes of the same shape (values on the 0–255 scale), one weight per pixel pair shared by
 * all planes (OpenCV's multi-channel fastNlMeansDenoising).
 * @param planes C planes [h,w] @returns C planes [h,w] float64
 */
export function nlmPlanes(planes: Float64Array[], h: number, w: number, strength: number, template = 7, search = 21): Float64Array[] {
  const C = planes.length;
  if (C < 1) throw new Error('nlmPlanes: needs at least one plane');
  for (const p of planes) if (p.length !== h * w) throw new Error(`nlmPlanes: a plane has ${p.length} values, expected ${h}*${w} = ${h * w}`);
  for (const [k, v] of [['template', template], ['search', search]] as const) {
    if (!(Number.isInteger(v) && v >= 1 && v % 2 === 1)) throw new Error(`nlmPlanes: ${k} must be an odd positive integer, got ${v}`);
  }
  if (!(strength >= 0 && Number.isFinite(strength))) throw new Error(`nlmPlanes: h must be a finite number ≥ 0, got ${strength}`);
  const t = (template - 1) / 2;
  const s = (search - 1) / 2;
  const P = s + t;
  const Hp = h + 2 * P;
  const Wp = w + 2 * P;
  // reflect-101 padding of every plane
  const pad = planes.map((src) => {
    const out = new Float64Array(Hp * Wp);
    const cols = Int32Array.from({ length: Wp }, (_, x) => borderIndex(x - P, w, 'reflect'));
    for (let y = 0; y < Hp; y++) {
      const sy = borderIndex(y - P, h, 'reflect') * w;
      const o = y * Wp;
      for (let x = 0; x < Wp; x++) out[o + x] = src[sy + cols[x]];
    }
    return out;
  });
  const acc = planes.map(() => new Float64Array(h * w));
  const wsum = new Float64Array(h * w);
  const T = template;
  // exp(−SSD/(T²·C·h²)); h = 0 gives weight 1 for identical templates only (OpenCV: NaN → 1)
  const scale = strength > 0 ? 1 / (T * T * C * strength * strength) : Infinity;
  // offset 0: every pixel with itself, weight 1
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      wsum[i] += 1;
      for (let c = 0; c < C; c++) acc[c][i] += pad[c][(y + P) * Wp + x + P];
    }
  }
  // scratch buffers for the largest region
  const maxRh = h + s;
  const maxRw = w + 2 * s;
  const D = new Float64Array((maxRh + 2 * t) * (maxRw + 2 * t));
  const rowSum = new Float64Array((maxRh + 2 * t) * maxRw);
  const colAcc = new Float64Array(maxRw);
  const E = new Float64Array(maxRh * maxRw);
  // Offsets d and −d share their template distances: SSD_{−d}(p) = SSD_d(p − d). For each d in one half
  // of the window, E(p) = SSD between the templates at p and p + d over the region (output ∪ output − d);
  // p takes p + d with weight w(E(p)) and p + d takes p with the same weight.
  for (let dy = 0; dy <= s; dy++) {
    for (let dx = dy === 0 ? 1 : -s; dx <= s; dx++) {
      // region of p in output coordinates (output pixel (y, x) ↔ padded (y + P, x + P))
      const y0 = -dy;
      const x0 = Math.min(0, -dx);
      const Rh = h + dy;
      const Rw = w + Math.abs(dx);
      const Dh = Rh + 2 * t;
      const Dw = Rw + 2 * t;
      // squared differences over the region grown by the template radius
      D.fill(0, 0, Dh * Dw);
      for (let c = 0; c < C; c++) {
        const pc = pad[c];
        for (let u = 0; u < Dh; u++) {
          const a = (y0 + P - t + u) * Wp + x0 + P - t;
          const b = a + dy * Wp + dx;
          const o = u * Dw;
          for (let v = 0; v < Dw; v++) {
            const d = pc[a + v] - pc[b + v];
            D[o + v] += d * d;
          }
        }
      }
      // template sums: horizontal running sums, then vertical
      for (let u = 0; u < Dh; u++) {
        const o = u * Dw;
        let run = 0;
        for (let v = 0; v < T; v++) run += D[o + v];
        const ro = u * Rw;
        rowSum[ro] = run;
        for (let x = 1; x < Rw; x++) {
          run += D[o + x + T - 1] - D[o + x - 1];
          rowSum[ro + x] = run;
        }
      }
      colAcc.fill(0, 0, Rw);
      for (let u = 0; u < T; u++) for (let x = 0; x < Rw; x++) colAcc[x] += rowSum[u * Rw + x];
      for (let y = 0; y < Rh; y++) {
        const o = y * Rw;
        for (let x = 0; x < Rw; x++) E[o + x] = colAcc[x];
        if (y + 1 < Rh) {
          const add = (y + T) * Rw;
          for (let x = 0; x < Rw; x++) colAcc[x] += rowSum[add + x] - rowSum[o + x];
        }
      }
      for (let ry = 0; ry < Rh; ry++) {
        const py = y0 + ry; // p's output row
        const qy = py + dy; // p + d's output row
        const pIn = py >= 0 && py < h;
        const qIn = qy >= 0 && qy < h;
        for (let rx = 0; rx < Rw; rx++) {
          const ssd = E[ry * Rw + rx];
          const wt = ssd <= 0 ? 1 : Math.exp(-ssd * scale);
          if (wt < WEIGHT_THRESHOLD) continue;
          const px = x0 + rx;
          const qx = px + dx;
          const pp = (py + P) * Wp + px + P; // padded index of p
          const pq = pp + dy * Wp + dx; // padded index of p + d
          if (pIn && px >= 0 && px < w) {
            const i = py * w + px;
            wsum[i] += wt;
            for (let c = 0; c < C; c++) acc[c][i] += wt * pad[c][pq];
          }
          if (qIn && qx >= 0 && qx < w) {
            const i = qy * w + qx;
            wsum[i] += wt;
            for (let c = 0; c < C; c++) acc[c][i] += wt * pad[c][pp];
          }
        }
      }
    }
  }
  for (const a of acc) for (let i = 0; i < a.length; i++) a[i] /= wsum[i];
  return acc;
}

// --- CIE L*a*b* as OpenCV COLOR_LRGB2Lab / COLOR_Lab2LRGB (sRGB primaries, D65, no gamma) ---

const XN = 0.950456;
const ZN = 1.088754;
const T_LIN = 0.008856;
const F_LIN = 7.787;
const F_OFF = 16 / 116;
const F_T = Math.cbrt(T_LIN);

function fLab(t: number): number {
  return t > T_LIN ? Math.cbrt(t) : F_LIN * t + F_OFF;
}
function fLabInv(f: number): number {
  return f > F_T ? f * f * f : (f - F_OFF) / F_LIN;
}

/**
 * RGB (taken as linear, [0,1] scale) → L*a*b* on OpenCV's 8-bit scale (L·255/100, a + 128, b + 128),
 * without rounding. @param img [H,W,3] @returns [L, a, b] planes [H,W]
 */
export function rgbToLab255(img: RGBImage): [Float64Array, Float64Array, Float64Array] {
  const n = img.height * img.width;
  const L = new Float64Array(n);
  const A = new Float64Array(n);
  const B = new Float64Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    const r = d[i * 3];
    const g = d[i * 3 + 1];
    const b = d[i * 3 + 2];
    const X = (0.412453 * r + 0.35758 * g + 0.180423 * b) / XN;
    const Y = 0.212671 * r + 0.71516 * g + 0.072169 * b;
    const Z = (0.019334 * r + 0.119193 * g + 0.950227 * b) / ZN;
    const fx = fLab(X);
    const fy = fLab(Y);
    const fz = fLab(Z);
    const l = Y > T_LIN ? 116 * fy - 16 : 903.3 * Y;
    L[i] = (l * 255) / 100;
    A[i] = 500 * (fx - fy) + 128;
    B[i] = 200 * (fy - fz) + 128;
  }
  return [L, A, B];
}

/** Inverse of `rgbToLab255`. @returns [H,W,3] float32 RGB (not clipped) */
export function lab255ToRgb(L: Float64Array, A: Float64Array, B: Float64Array, height: number, width: number): RGBImage {
  const n = height * width;
  const out = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    const l = (L[i] * 100) / 255;
    let Y: number;
    let fy: number;
    if (l > 903.3 * T_LIN) {
      fy = (l + 16) / 116;
      Y = fy * fy * fy;
    } else {
      Y = l / 903.3;
      fy = F_LIN * Y + F_OFF;
    }
    const X = fLabInv((A[i] - 128) / 500 + fy) * XN;
    const Z = fLabInv(fy - (B[i] - 128) / 200) * ZN;
    out[i * 3] = 3.240479 * X - 1.53715 * Y - 0.498535 * Z;
    out[i * 3 + 1] = -0.969256 * X + 1.875991 * Y + 0.041556 * Z;
    out[i * 3 + 2] = 0.055648 * X - 0.204043 * Y + 1.057311 * Z;
  }
  return makeImage(height, width, out);
}

/**
 * Non-local means on an RGB image with OpenCV's conventions (file header).
 * @param img [H,W,3] noisy, RGB on the [0,1] scale (float; values outside [0,1] are kept)
 * @returns [H,W,3] float32 (not clipped)
 */
export function nlmDenoise(img: RGBImage, opts: NlmOptions): RGBImage {
  const { height: H, width: W } = img;
  const template = opts.template ?? 7;
  const search = opts.search ?? 21;
  const space = opts.space ?? 'lab';
  if (space !== 'lab' && space !== 'rgb') throw new Error(`nlmDenoise: space must be 'lab' or 'rgb', got ${JSON.stringify(space)}`);
  if (space === 'rgb') {
    const n = H * W;
    const p = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) p[c][i] = img.data[i * 3 + c] * 255;
    const q = nlmPlanes(p, H, W, opts.h, template, search);
    const out = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[i * 3 + c] = q[c][i] / 255;
    return makeImage(H, W, out);
  }
  const [L, A, B] = rgbToLab255(img);
  const [Lq] = nlmPlanes([L], H, W, opts.h, template, search);
  const [Aq, Bq] = nlmPlanes([A, B], H, W, opts.hColor ?? opts.h, template, search);
  return lab255ToRgb(Lq, Aq, Bq, H, W);
}
