/**
 * Patch sampling for training: corpus photos loaded once (downscaled), random crops with flips,
 * and batches as tensors. All randomness comes from the caller's Rng, so a batch is a function of
 * (seed, step) — what exact resume needs.
 */
import * as tf from '@tensorflow/tfjs';
import { RGBImage, makeImage } from './image';
import { resizeImage } from './io';
import { CorpusEntry, listEntries, loadCorpusImage, Split } from './corpus';
import { Rng } from '../util/rng';

export interface LoadedPhoto {
  entry: CorpusEntry;
  image: RGBImage;
}

/** Resize so that the SHORT side equals `shortSide` (Lanczos; upscales if needed). */
export async function fitShortSide(img: RGBImage, shortSide: number): Promise<RGBImage> {
  const s = shortSide / Math.min(img.width, img.height);
  if (Math.abs(s - 1) < 1e-9) return img;
  return resizeImage(img, Math.max(shortSide, Math.round(img.width * s)), Math.max(shortSide, Math.round(img.height * s)), 'lanczos3');
}

const cache = new Map<string, Promise<LoadedPhoto[]>>();

/** All photos of a split, checksummed and resized to the given short side; cached per process. */
export function loadPhotos(split: Split, shortSide: number, limit?: number): Promise<LoadedPhoto[]> {
  const key = `${split}:${shortSide}:${limit ?? ''}`;
  let p = cache.get(key);
  if (!p) {
    p = (async () => {
      const entries = listEntries(split).slice(0, limit ?? Infinity);
      const out: LoadedPhoto[] = [];
      for (const entry of entries) out.push({ entry, image: await fitShortSide(await loadCorpusImage(entry), shortSide) });
      return out;
    })();
    cache.set(key, p);
  }
  return p;
}

/** A size×size crop at a random position, flipped horizontally with probability 1/2 when `flip`. */
export function randomCrop(img: RGBImage, size: number, rng: Rng, opts: { flip?: boolean } = {}): RGBImage {
  if (img.height < size || img.width < size) throw new Error(`randomCrop: image ${img.height}x${img.width} is smaller than the crop ${size}`);
  const y0 = rng.int(img.height - size + 1);
  const x0 = rng.int(img.width - size + 1);
  const flip = (opts.flip ?? true) && rng.random() < 0.5;
  return crop(img, y0, x0, size, size, flip);
}

/** The crop [y0, y0+h) × [x0, x0+w), optionally mirrored left-right. */
export function crop(img: RGBImage, y0: number, x0: number, h: number, w: number, flip = false): RGBImage {
  if (y0 < 0 || x0 < 0 || y0 + h > img.height || x0 + w > img.width) {
    throw new Error(`crop: window ${h}x${w} at (${y0},${x0}) exceeds the image ${img.height}x${img.width}`);
  }
  const out = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sx = flip ? x0 + w - 1 - x : x0 + x;
      const si = ((y0 + y) * img.width + sx) * 3;
      const di = (y * w + x) * 3;
      out[di] = img.data[si];
      out[di + 1] = img.data[si + 1];
      out[di + 2] = img.data[si + 2];
    }
  }
  return makeImage(h, w, out);
}

/** The centred size×size crop. */
export function centerCrop(img: RGBImage, size: number): RGBImage {
  return crop(img, Math.floor((img.height - size) / 2), Math.floor((img.width - size) / 2), size, size);
}

/** Images of one size → [B,H,W,3] float32 tensor. */
export function toBatch(imgs: RGBImage[]): tf.Tensor4D {
  if (imgs.length === 0) throw new Error('toBatch: no images');
  const { height: h, width: w } = imgs[0];
  const data = new Float32Array(imgs.length * h * w * 3);
  imgs.forEach((im, i) => {
    if (im.height !== h || im.width !== w) throw new Error(`toBatch: image ${i} is ${im.height}x${im.width}, expected ${h}x${w}`);
    data.set(im.data, i * h * w * 3);
  });
  return tf.tensor4d(data, [imgs.length, h, w, 3]);
}

/** [B,H,W,3] (or [H,W,3]) tensor → RGBImages (values as they are; clip when saving). */
export function fromBatch(t: tf.Tensor): RGBImage[] {
  const t4 = t.rank === 3 ? t.expandDims(0) : t;
  const [b, h, w, c] = t4.shape as number[];
  if (c !== 3) throw new Error(`fromBatch: expected 3 channels, got shape [${t4.shape}]`);
  const data = t4.dataSync() as Float32Array;
  if (t4 !== t) t4.dispose();
  return Array.from({ length: b }, (_, i) => makeImage(h, w, data.slice(i * h * w * 3, (i + 1) * h * w * 3)));
}
