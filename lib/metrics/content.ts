/**
 * Does an image show the photo it was made from? Content retrieval by small thumbnails: each
 * generated image is compared with every candidate photo at s×s (area-averaged, default 16×16) by
 * PSNR, and the rank of its own photo among the candidates is its score (1 = its own photo is the
 * closest). At 16×16 only the layout of colours and light remains, which is what guidance from a
 * 128-px text-to-image model can be asked to keep; fine texture is not compared.
 */
import { RGBImage, makeImage } from '../data/image';

/**
 * Area-averaged s×s thumbnail (box filter over the exact pixel footprint of each cell, fractional
 * edges weighted), [s,s,3]; any input size ≥ 1×1.
 */
export function areaThumbnail(img: RGBImage, size = 16): RGBImage {
  const { height: h, width: w, data } = img;
  const out = new Float32Array(size * size * 3);
  const sy = h / size;
  const sx = w / size;
  for (let ty = 0; ty < size; ty++) {
    const y0 = ty * sy;
    const y1 = y0 + sy;
    for (let tx = 0; tx < size; tx++) {
      const x0 = tx * sx;
      const x1 = x0 + sx;
      let r = 0;
      let g = 0;
      let b = 0;
      let wsum = 0;
      for (let y = Math.floor(y0); y < Math.min(h, Math.ceil(y1)); y++) {
        const wy = Math.min(y + 1, y1) - Math.max(y, y0);
        for (let x = Math.floor(x0); x < Math.min(w, Math.ceil(x1)); x++) {
          const wx = Math.min(x + 1, x1) - Math.max(x, x0);
          const wt = wy * wx;
          const i = (y * w + x) * 3;
          r += wt * data[i];
          g += wt * data[i + 1];
          b += wt * data[i + 2];
          wsum += wt;
        }
      }
      const o = (ty * size + tx) * 3;
      out[o] = r / wsum;
      out[o + 1] = g / wsum;
      out[o + 2] = b / wsum;
    }
  }
  return makeImage(size, size, out);
}

/** PSNR (dB, peak 1) of a's s×s area thumbnail to b's (any sizes): how truly a shows b's layout of colours at s×s. */
export function thumbnailPsnr(a: RGBImage, b: RGBImage, size = 16): number {
  return psnrUnit(areaThumbnail(a, size), areaThumbnail(b, size));
}

/**
 * A thumbnail PSNR fit for averaging: identical thumbnails (PSNR +∞) count as 99 dB, so that one
 * perfect match does not make a mean infinite.
 */
export function finitePsnr(db: number): number {
  return Math.min(db, 99);
}

/** PSNR (dB, peak 1) between two images of the same size, values as they are (no clipping). */
function psnrUnit(a: RGBImage, b: RGBImage): number {
  let se = 0;
  for (let i = 0; i < a.data.length; i++) se += (a.data[i] - b.data[i]) ** 2;
  const mse = se / a.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10(1 / mse);
}

export interface ThumbnailRank {
  /** rank of the own photo among all candidates (1 = closest); ties count against it */
  rank: number;
  /** PSNR (dB, 0–1 scale) of the image's thumbnail to its own photo's */
  psnrOwn: number;
  /** the best PSNR among the OTHER candidates */
  psnrBestOther: number;
}

/**
 * For each image i, the rank of candidate `own[i]` among `candidates` by s×s thumbnail PSNR.
 * @param images generated images (any size)
 * @param candidates the photos to rank (any size; each is thumbnailed once)
 * @param own index into candidates of each image's own photo
 */
export function thumbnailRanks(images: readonly RGBImage[], candidates: readonly RGBImage[], own: readonly number[], size = 16): ThumbnailRank[] {
  if (images.length !== own.length) throw new Error(`thumbnailRanks: ${images.length} images but ${own.length} own indices`);
  const refs = candidates.map((c) => areaThumbnail(c, size));
  return images.map((img, i) => {
    if (own[i] < 0 || own[i] >= refs.length) throw new Error(`thumbnailRanks: own[${i}] = ${own[i]} is not a candidate index (0…${refs.length - 1})`);
    const t = areaThumbnail(img, size);
    const p = refs.map((r) => psnrUnit(t, r));
    const mine = p[own[i]];
    const others = p.filter((_, j) => j !== own[i]);
    return { rank: 1 + others.filter((v) => v >= mine).length, psnrOwn: mine, psnrBestOther: Math.max(-Infinity, ...others) };
  });
}

/** Share of rank-1 results and the mean rank. */
export function summariseRanks(r: readonly { rank: number }[]): { top1: number; meanRank: number; n: number } {
  if (r.length === 0) return { top1: NaN, meanRank: NaN, n: 0 };
  return { top1: r.filter((x) => x.rank === 1).length / r.length, meanRank: r.reduce((a, x) => a + x.rank, 0) / r.length, n: r.length };
}
