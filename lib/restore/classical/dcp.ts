/**
 * Dark channel prior dehazing: K. He, J. Sun, X. Tang, "Single Image Haze Removal Using Dark Channel
 * Prior", CVPR 2009 / IEEE TPAMI 33(12), 2011; the raw transmission refined with the guided filter of
 * K. He, J. Sun, X. Tang, "Guided Image Filtering", ECCV 2010 / IEEE TPAMI 35(6), 2013 (Sec. 4,
 * "Haze removal", in place of the soft matting of the 2009 paper).
 *
 * Haze model (TPAMI 2011 Eq. 1): I(x) = J(x)·t(x) + A·(1 − t(x)) — the model lib/data/degrade/haze.ts
 * synthesises (grey A, t = exp(−β·d) from a synthetic depth). Steps:
 *   1. dark channel  I^dark(x) = min_{y∈Ω(x)} min_c I^c(y)                 (Eq. 5), Ω = 15×15 patch;
 *   2. atmospheric light A: among the brightest 0.1 % of the dark channel, the pixel of highest
 *      intensity in I (Sec. 4.4; "intensity" = R + G + B here; ties by the lower pixel index);
 *   3. raw transmission  t̃(x) = 1 − ω·min_{y∈Ω(x)} min_c I^c(y)/A^c        (Eq. 12), ω = 0.95;
 *   4. refinement: t = guided filter of t̃ with the hazy image I as the colour guide, r = 20,
 *      ε = 10⁻³ (the guided-filter paper's haze-removal example, ECCV 2010 Fig. 10; intensities in
 *      [0,1]);
 *   5. recovery  J(x) = (I(x) − A) / max(t(x), t0) + A                       (Eq. 22), t0 = 0.1.
 * Borders: the min filters cut the window at the image edge (cv2.erode); the guided filter's box
 * means reflect (OpenCV BORDER_REFLECT, as cv2.ximgproc.guidedFilter). All parameters are the
 * papers' absolute pixel values; they were chosen for photos of about 600×400 px.
 *
 * Everything is float64 on typed arrays; the output is NOT clipped (J can leave [0,1] where t is
 * small), so callers clip like they clip a network's output.
 */
import { RGBImage, makeImage } from '../../data/image';
import { BoxBorder, guidedFilterColor, minFilter } from './filters';

export interface DcpOptions {
  /** side of the square patch Ω (odd); paper: 15 */
  patch: number;
  /** fraction of haze kept for depth perception; paper: 0.95 */
  omega: number;
  /** lower bound of t in the recovery; paper: 0.1 */
  t0: number;
  /** fraction of the brightest dark-channel pixels searched for A; paper: 0.001 */
  topFraction: number;
  /** guided-filter radius; guided-filter paper's haze example (ECCV 2010 Fig. 10): 20 */
  gfRadius: number;
  /** guided-filter regulariser ε (intensities in [0,1]); guided-filter paper's haze example (ECCV 2010 Fig. 10): 1e-3 */
  gfEps: number;
  /** border of the guided filter's box means (cv2.ximgproc.guidedFilter: 'reflect') */
  gfBorder: BoxBorder;
  /** a known atmospheric light (RGB) instead of step 2's estimate — for tests and studies */
  airlight?: readonly [number, number, number];
}

/** The papers' parameters (see the file header). */
export const DCP_DEFAULTS: Readonly<DcpOptions> = { patch: 15, omega: 0.95, t0: 0.1, topFraction: 0.001, gfRadius: 20, gfEps: 1e-3, gfBorder: 'reflect' };

export interface DcpResult {
  /** [H,W,3] the recovered scene radiance J (not clipped) */
  image: RGBImage;
  /** estimated atmospheric light A, RGB */
  airlight: [number, number, number];
  /** [H,W] dark channel of I (Eq. 5) */
  dark: Float64Array;
  /** [H,W] raw transmission t̃ (Eq. 12) */
  rawTransmission: Float64Array;
  /** [H,W] refined transmission t (guided filter) */
  transmission: Float64Array;
}

function checkOptions(o: DcpOptions): void {
  const bad = (k: string, want: string, v: unknown) => new Error(`dehazeDcp: ${k} must be ${want}, got ${String(v)}`);
  if (!(Number.isInteger(o.patch) && o.patch >= 1 && o.patch % 2 === 1)) throw bad('patch', 'an odd positive integer', o.patch);
  if (!(o.omega > 0 && o.omega <= 1)) throw bad('omega', 'in (0, 1]', o.omega);
  if (!(o.t0 > 0 && o.t0 <= 1)) throw bad('t0', 'in (0, 1]', o.t0);
  if (!(o.topFraction > 0 && o.topFraction <= 1)) throw bad('topFraction', 'in (0, 1]', o.topFraction);
  if (!(Number.isInteger(o.gfRadius) && o.gfRadius >= 1)) throw bad('gfRadius', 'a positive integer', o.gfRadius);
  if (!(o.gfEps > 0)) throw bad('gfEps', 'positive', o.gfEps);
}

/** Per-pixel minimum over the channels of `img` divided by `a` (a = [1,1,1]: the plain minimum). [H,W] */
function minOverChannels(img: RGBImage, a: readonly number[] = [1, 1, 1]): Float64Array {
  const n = img.height * img.width;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.min(img.data[i * 3] / a[0], img.data[i * 3 + 1] / a[1], img.data[i * 3 + 2] / a[2]);
  return out;
}

/** Dark channel (Eq. 5): min over a patch×patch window and the colour channels. [H,W] */
export function darkChannel(img: RGBImage, patch: number = DCP_DEFAULTS.patch): Float64Array {
  return minFilter(minOverChannels(img), img.height, img.width, (patch - 1) / 2);
}

/**
 * Atmospheric light (Sec. 4.4): of the max(1, floor(N·topFraction)) pixels with the brightest dark
 * channel (ties: lower index first), the one with the highest R + G + B in I (ties: lower index).
 */
export function estimateAirlight(img: RGBImage, dark: Float64Array, topFraction: number = DCP_DEFAULTS.topFraction): [number, number, number] {
  const n = img.height * img.width;
  if (dark.length !== n) throw new Error(`estimateAirlight: dark channel has ${dark.length} values, expected ${n}`);
  const k = Math.max(1, Math.floor(n * topFraction));
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => dark[b] - dark[a] || a - b);
  let best = idx[0];
  let bestI = -Infinity;
  for (let j = 0; j < k; j++) {
    const p = idx[j];
    const s = img.data[p * 3] + img.data[p * 3 + 1] + img.data[p * 3 + 2];
    if (s > bestI || (s === bestI && p < best)) {
      bestI = s;
      best = p;
    }
  }
  return [img.data[best * 3], img.data[best * 3 + 1], img.data[best * 3 + 2]];
}

/**
 * Dehaze one image with the dark channel prior and guided-filter refinement (file header).
 * @param img [H,W,3] hazy image, RGB in [0,1]
 */
export function dehazeDcp(img: RGBImage, opts: Partial<DcpOptions> = {}): DcpResult {
  const o: DcpOptions = { ...DCP_DEFAULTS, ...opts };
  checkOptions(o);
  const { height: h, width: w } = img;
  const n = h * w;
  const r = (o.patch - 1) / 2;
  const dark = minFilter(minOverChannels(img), h, w, r);
  if (o.airlight && !(o.airlight.length === 3 && o.airlight.every((v) => v > 0 && v <= 1))) throw new Error(`dehazeDcp: airlight must be 3 values in (0, 1], got ${JSON.stringify(o.airlight)}`);
  const A: [number, number, number] = o.airlight ? [o.airlight[0], o.airlight[1], o.airlight[2]] : estimateAirlight(img, dark, o.topFraction);
  // a black A would divide by zero: keep it strictly positive (only for a black image)
  const Aeff = A.map((v) => Math.max(v, 1e-6));
  const normDark = minFilter(minOverChannels(img, Aeff), h, w, r);
  const raw = new Float64Array(n);
  for (let i = 0; i < n; i++) raw[i] = 1 - o.omega * normDark[i];
  const t = guidedFilterColor(img, raw, o.gfRadius, o.gfEps, o.gfBorder);
  const out = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    const ti = Math.max(t[i], o.t0);
    for (let c = 0; c < 3; c++) out[i * 3 + c] = (img.data[i * 3 + c] - A[c]) / ti + A[c];
  }
  return { image: makeImage(h, w, out), airlight: A, dark, rawTransmission: raw, transmission: t };
}
