/**
 * Small raster drawing for figures: rectangles on an image (match boxes) and a scalar map as a
 * colour image (similarity maps). Pure JS on RGBImage; the input is never modified.
 */
import { RGBImage, makeImage } from '../data/image';

export interface Box {
  /** top-left corner and size in pixels */
  y: number;
  x: number;
  h: number;
  w: number;
  /** RGB in [0,1] */
  color: [number, number, number];
}

/** Distinct colours for boxes (Tableau 10). */
export const BOX_COLOURS: Array<[number, number, number]> = [
  [0.84, 0.15, 0.16],
  [0.12, 0.47, 0.71],
  [0.17, 0.63, 0.17],
  [1.0, 0.5, 0.05],
  [0.58, 0.4, 0.74],
  [0.09, 0.75, 0.81],
  [0.89, 0.47, 0.76],
  [0.74, 0.74, 0.13],
];

/** A copy of `img` with the outlines of `boxes` (clipped to the image), `thickness` px wide. */
export function drawBoxes(img: RGBImage, boxes: readonly Box[], thickness = 2): RGBImage {
  const out = makeImage(img.height, img.width, Float32Array.from(img.data));
  const set = (y: number, x: number, c: [number, number, number]) => {
    if (y < 0 || x < 0 || y >= out.height || x >= out.width) return;
    const i = (y * out.width + x) * 3;
    out.data[i] = c[0];
    out.data[i + 1] = c[1];
    out.data[i + 2] = c[2];
  };
  for (const b of boxes) {
    for (let t = 0; t < thickness; t++) {
      for (let x = b.x; x < b.x + b.w; x++) {
        set(b.y + t, x, b.color);
        set(b.y + b.h - 1 - t, x, b.color);
      }
      for (let y = b.y; y < b.y + b.h; y++) {
        set(y, b.x + t, b.color);
        set(y, b.x + b.w - 1 - t, b.color);
      }
    }
  }
  return out;
}

// viridis at 5 stops, linearly interpolated
const VIRIDIS: Array<[number, number, number]> = [
  [0.267, 0.005, 0.329],
  [0.229, 0.322, 0.546],
  [0.128, 0.567, 0.551],
  [0.369, 0.789, 0.383],
  [0.993, 0.906, 0.144],
];

/**
 * A scalar map [h×w] (row-major) as a viridis image, each cell `scale`×`scale` pixels.
 * @param range value range mapped to the colour scale (default: the map's min..max)
 */
export function heatmap(values: ArrayLike<number>, h: number, w: number, opts: { scale?: number; range?: [number, number] } = {}): RGBImage {
  if (values.length !== h * w) throw new Error(`heatmap: ${values.length} values for a ${h}×${w} map`);
  const s = opts.scale ?? 1;
  let [lo, hi] = opts.range ?? [Infinity, -Infinity];
  if (!opts.range) for (let i = 0; i < values.length; i++) (lo = Math.min(lo, values[i])), (hi = Math.max(hi, values[i]));
  const out = makeImage(h * s, w * s);
  for (let y = 0; y < h * s; y++)
    for (let x = 0; x < w * s; x++) {
      const v = values[Math.floor(y / s) * w + Math.floor(x / s)];
      const t = Math.min(1, Math.max(0, hi > lo ? (v - lo) / (hi - lo) : 0.5)) * (VIRIDIS.length - 1);
      const k = Math.min(VIRIDIS.length - 2, Math.floor(t));
      const f = t - k;
      const o = (y * w * s + x) * 3;
      for (let c = 0; c < 3; c++) out.data[o + c] = VIRIDIS[k][c] * (1 - f) + VIRIDIS[k + 1][c] * f;
    }
  return out;
}
