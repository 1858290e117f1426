/**
 * O(N) image filters the classical restorers need, on single planes ([H,W] float64, row-major):
 *
 * - `boxMean`: the mean over a (2r+1)×(2r+1) window by running sums (two 1-D passes), pixels outside
 *   the image taken by reflection — `'reflect101'` (OpenCV BORDER_REFLECT_101 = BORDER_DEFAULT,
 *   …2 1 | 0 1 2…) or `'reflect'` (BORDER_REFLECT, …1 0 | 0 1 2…). The cost does not depend on r.
 * - `minFilter`: the minimum over a (2r+1)×(2r+1) window truncated at the image border (what
 *   cv2.erode does with its default border value), by the van Herk / Gil–Werman algorithm
 *   (M. van Herk, "A fast algorithm for local minimum and maximum filters on rectangular and
 *   octagonal kernels", Pattern Recognition Letters 13, 1992; J. Gil, M. Werman, IEEE TPAMI 15,
 *   1993): about 3 comparisons per pixel and pass, whatever r.
 * - `guidedFilter`: the guided filter of K. He, J. Sun, X. Tang, "Guided Image Filtering" (ECCV 2010;
 *   IEEE TPAMI 35(6), 2013), Algorithm 1 for a grey guide and Sec. 3.5 (Eq. 19–20 of the TPAMI
 *   version) for a colour guide, built on `boxMean`.
 */
import { RGBImage } from '../../data/image';
import { borderIndex } from '../../data/degrade/common';

export type BoxBorder = 'reflect101' | 'reflect';

/** Index into [0, n) for an offset outside it, by reflection (any distance). */
function reflectIndex(i: number, n: number, border: BoxBorder): number {
  if (i >= 0 && i < n) return i;
  if (border === 'reflect101') return borderIndex(i, n, 'reflect');
  // reflect with the edge repeated: period 2n, …1 0 | 0 1…
  const period = 2 * n;
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - 1 - j;
  return j;
}

function checkPlane(what: string, src: Float64Array, h: number, w: number): void {
  if (!(Number.isInteger(h) && h > 0 && Number.isInteger(w) && w > 0)) throw new Error(`${what}: height and width must be positive integers, got ${h}x${w}`);
  if (src.length !== h * w) throw new Error(`${what}: plane has ${src.length} values, expected ${h}*${w} = ${h * w}`);
}

/**
 * Mean over the (2r+1)² window around every pixel (cv2.boxFilter(src, -1, (2r+1, 2r+1),
 * normalize=True, borderType) for the two reflections).
 * @param src [h,w] @returns [h,w] float64
 */
export function boxMean(src: Float64Array, h: number, w: number, r: number, border: BoxBorder = 'reflect101'): Float64Array {
  checkPlane('boxMean', src, h, w);
  if (!(Number.isInteger(r) && r >= 0)) throw new Error(`boxMean: radius must be a non-negative integer, got ${r}`);
  const k = 2 * r + 1;
  const inv = 1 / k;
  const tmp = new Float64Array(h * w);
  // horizontal: prefix sums over a reflected row of length w + 2r
  const cols = Int32Array.from({ length: w + 2 * r }, (_, i) => reflectIndex(i - r, w, border));
  const pre = new Float64Array(Math.max(w, h) + 2 * r + 1);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    pre[0] = 0;
    for (let i = 0; i < cols.length; i++) pre[i + 1] = pre[i] + src[row + cols[i]];
    for (let x = 0; x < w; x++) tmp[row + x] = (pre[x + k] - pre[x]) * inv;
  }
  // vertical: running sum over every column at once (row-major friendly)
  const out = new Float64Array(h * w);
  const rows = Int32Array.from({ length: h + 2 * r }, (_, i) => reflectIndex(i - r, h, border));
  const acc = new Float64Array(w);
  for (let i = 0; i < k; i++) {
    const s = rows[i] * w;
    for (let x = 0; x < w; x++) acc[x] += tmp[s + x];
  }
  for (let y = 0; y < h; y++) {
    const o = y * w;
    for (let x = 0; x < w; x++) out[o + x] = acc[x] * inv;
    if (y + 1 < h) {
      const add = rows[y + k] * w;
      const sub = rows[y] * w;
      for (let x = 0; x < w; x++) acc[x] += tmp[add + x] - tmp[sub + x];
    }
  }
  return out;
}

/** 1-D van Herk / Gil–Werman minimum over [i−r, i+r] ∩ [0, n) of `n` values read at `get(i)`. */
function minLine(n: number, r: number, get: (i: number) => number, put: (i: number, v: number) => void, g: Float64Array, hb: Float64Array): void {
  const k = 2 * r + 1;
  const m = n + 2 * r; // padded length; outside = +Infinity (ignored by the minimum)
  const val = (j: number) => (j < r || j >= n + r ? Infinity : get(j - r));
  // g: running minimum from the start of each block of k; hb: from the end of each block
  for (let j = 0; j < m; j++) g[j] = j % k === 0 ? val(j) : Math.min(g[j - 1], val(j));
  for (let j = m - 1; j >= 0; j--) hb[j] = j === m - 1 || (j + 1) % k === 0 ? val(j) : Math.min(hb[j + 1], val(j));
  // window of output i covers padded [i, i + k − 1]
  for (let i = 0; i < n; i++) put(i, Math.min(hb[i], g[i + k - 1]));
}

/**
 * Minimum over the (2r+1)² window around every pixel, the window cut at the image border
 * (= cv2.erode with a (2r+1)² rectangle and its default border). van Herk / Gil–Werman, O(N).
 * @param src [h,w] @returns [h,w] float64
 */
export function minFilter(src: Float64Array, h: number, w: number, r: number): Float64Array {
  checkPlane('minFilter', src, h, w);
  if (!(Number.isInteger(r) && r >= 0)) throw new Error(`minFilter: radius must be a non-negative integer, got ${r}`);
  if (r === 0) return Float64Array.from(src);
  const tmp = new Float64Array(h * w);
  const out = new Float64Array(h * w);
  const L = Math.max(h, w) + 2 * r;
  const g = new Float64Array(L);
  const hb = new Float64Array(L);
  for (let y = 0; y < h; y++) {
    const o = y * w;
    minLine(w, r, (i) => src[o + i], (i, v) => (tmp[o + i] = v), g, hb);
  }
  for (let x = 0; x < w; x++) minLine(h, r, (i) => tmp[i * w + x], (i, v) => (out[i * w + x] = v), g, hb);
  return out;
}

/** The three planes of an RGB image, float64, unscaled. */
export function rgbPlanes(img: RGBImage): [Float64Array, Float64Array, Float64Array] {
  const n = img.height * img.width;
  const p: [Float64Array, Float64Array, Float64Array] = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
  for (let i = 0; i < n; i++) {
    p[0][i] = img.data[i * 3];
    p[1][i] = img.data[i * 3 + 1];
    p[2][i] = img.data[i * 3 + 2];
  }
  return p;
}

/**
 * Guided filter with a grey guide I (He et al., TPAMI 2013, Algorithm 1):
 *   a = cov(I,p) / (var(I) + ε),  b = mean(p) − a·mean(I),  q = mean(a)·I + mean(b)
 * all means over (2r+1)² windows (`boxMean`).
 * @param guide [h,w] I @param src [h,w] p @returns [h,w] q
 */
export function guidedFilterGrey(guide: Float64Array, src: Float64Array, h: number, w: number, r: number, eps: number, border: BoxBorder = 'reflect101'): Float64Array {
  checkPlane('guidedFilter guide', guide, h, w);
  checkPlane('guidedFilter input', src, h, w);
  const n = h * w;
  const f = (v: Float64Array) => boxMean(v, h, w, r, border);
  const II = new Float64Array(n);
  const Ip = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    II[i] = guide[i] * guide[i];
    Ip[i] = guide[i] * src[i];
  }
  const mI = f(guide);
  const mp = f(src);
  const mII = f(II);
  const mIp = f(Ip);
  const a = new Float64Array(n);
  const b = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = mII[i] - mI[i] * mI[i];
    a[i] = (mIp[i] - mI[i] * mp[i]) / (v + eps);
    b[i] = mp[i] - a[i] * mI[i];
  }
  const ma = f(a);
  const mb = f(b);
  const q = new Float64Array(n);
  for (let i = 0; i < n; i++) q[i] = ma[i] * guide[i] + mb[i];
  return q;
}

/**
 * Guided filter with a colour guide I (He et al., TPAMI 2013, Sec. 3.5, Eq. 19–20):
 *   a_k = (Σ_k + εU)⁻¹ (mean_k(I·p) − μ_k·p̄_k),  b_k = p̄_k − a_kᵀμ_k,  q_i = mean(a)_iᵀ I_i + mean(b)_i
 * with Σ_k the 3×3 covariance of I in window k (cv2.ximgproc.guidedFilter with a 3-channel guide).
 * @param guide [h,w,3] I @param src [h,w] p @returns [h,w] q
 */
export function guidedFilterColor(guide: RGBImage, src: Float64Array, r: number, eps: number, border: BoxBorder = 'reflect101'): Float64Array {
  const { height: h, width: w } = guide;
  checkPlane('guidedFilter input', src, h, w);
  const n = h * w;
  const f = (v: Float64Array) => boxMean(v, h, w, r, border);
  const [R, G, B] = rgbPlanes(guide);
  const prod = (a: Float64Array, b: Float64Array) => {
    const o = new Float64Array(n);
    for (let i = 0; i < n; i++) o[i] = a[i] * b[i];
    return o;
  };
  const mR = f(R), mG = f(G), mB = f(B), mp = f(src);
  const mRp = f(prod(R, src)), mGp = f(prod(G, src)), mBp = f(prod(B, src));
  const vRR = f(prod(R, R)), vRG = f(prod(R, G)), vRB = f(prod(R, B)), vGG = f(prod(G, G)), vGB = f(prod(G, B)), vBB = f(prod(B, B));
  const aR = new Float64Array(n), aG = new Float64Array(n), aB = new Float64Array(n), b = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // Σ + εU (symmetric)
    const rr = vRR[i] - mR[i] * mR[i] + eps;
    const rg = vRG[i] - mR[i] * mG[i];
    const rb = vRB[i] - mR[i] * mB[i];
    const gg = vGG[i] - mG[i] * mG[i] + eps;
    const gb = vGB[i] - mG[i] * mB[i];
    const bb = vBB[i] - mB[i] * mB[i] + eps;
    const cR = mRp[i] - mR[i] * mp[i];
    const cG = mGp[i] - mG[i] * mp[i];
    const cB = mBp[i] - mB[i] * mp[i];
    // inverse of the symmetric 3×3 by cofactors
    const i00 = gg * bb - gb * gb;
    const i01 = gb * rb - rg * bb;
    const i02 = rg * gb - gg * rb;
    const i11 = rr * bb - rb * rb;
    const i12 = rb * rg - rr * gb;
    const i22 = rr * gg - rg * rg;
    const det = rr * i00 + rg * i01 + rb * i02;
    aR[i] = (i00 * cR + i01 * cG + i02 * cB) / det;
    aG[i] = (i01 * cR + i11 * cG + i12 * cB) / det;
    aB[i] = (i02 * cR + i12 * cG + i22 * cB) / det;
    b[i] = mp[i] - aR[i] * mR[i] - aG[i] * mG[i] - aB[i] * mB[i];
  }
  const maR = f(aR), maG = f(aG), maB = f(aB), mb = f(b);
  const q = new Float64Array(n);
  for (let i = 0; i < n; i++) q[i] = maR[i] * R[i] + maG[i] * G[i] + maB[i] * B[i] + mb[i];
  return q;
}
