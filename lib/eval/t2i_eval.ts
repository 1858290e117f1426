/**
 * Does the text-to-image model follow the text? Two checks of issue #3:
 * 1. degradation words steer it: for the same caption and seed, ", hazy" should raise the mean dark
 *    channel and ", noisy" the high-frequency energy of the sample, against the plain caption;
 * 2. it generates rather than copies: the distance of a sample to its nearest training crop is
 *    compared with the autoencoder's own reconstruction error on training crops (a copy would be
 *    about that close).
 */
import * as tf from '@tensorflow/tfjs';
import { TextToImage } from '../models/t2i';
import { RGBImage } from '../data/image';
import { darkChannel, highFrequencyEnergy, meanSquaredDistance, meanStd } from './stats';
import { cacheCrops, CacheItem } from '../train/stages/t2i';
import { toBatch, fromBatch } from '../data/patches';

export interface WordEffectRow {
  caption: string;
  seed: number;
  darkPlain: number;
  darkHazy: number;
  hfPlain: number;
  hfNoisy: number;
}

export interface WordEffectSummary {
  rows: WordEffectRow[];
  /** mean dark channel, plain vs ", hazy" */
  dark: { plain: number; hazy: number; ratio: number; raisedFraction: number };
  /** mean high-frequency energy, plain vs ", noisy" */
  hf: { plain: number; noisy: number; ratio: number; raisedFraction: number };
}

/** Generate plain / ", hazy" / ", noisy" for every caption × seed and measure both statistics. */
export async function degradationWordEffect(
  model: TextToImage,
  captions: readonly string[],
  seeds: readonly number[],
  opts: { steps?: number; cfgScale?: number; onImage?: (caption: string, seed: number, imgs: RGBImage[]) => void | Promise<void> } = {},
): Promise<WordEffectSummary> {
  const rows: WordEffectRow[] = [];
  for (const caption of captions) {
    for (const seed of seeds) {
      const [plain, hazy, noisy] = await model.generate([caption, `${caption}, hazy`, `${caption}, noisy`], { seed, steps: opts.steps, cfgScale: opts.cfgScale });
      await opts.onImage?.(caption, seed, [plain, hazy, noisy]);
      rows.push({ caption, seed, darkPlain: darkChannel(plain), darkHazy: darkChannel(hazy), hfPlain: highFrequencyEnergy(plain), hfNoisy: highFrequencyEnergy(noisy) });
    }
  }
  const m = (f: (r: WordEffectRow) => number) => meanStd(rows.map(f)).mean;
  const frac = (f: (r: WordEffectRow) => boolean) => rows.filter(f).length / rows.length;
  return {
    rows,
    dark: { plain: m((r) => r.darkPlain), hazy: m((r) => r.darkHazy), ratio: m((r) => r.darkHazy) / m((r) => r.darkPlain), raisedFraction: frac((r) => r.darkHazy > r.darkPlain) },
    hf: { plain: m((r) => r.hfPlain), noisy: m((r) => r.hfNoisy), ratio: m((r) => r.hfNoisy) / m((r) => r.hfPlain), raisedFraction: frac((r) => r.hfNoisy > r.hfPlain) },
  };
}

export interface CopyCheck {
  /** per sample: distance (MSE, 0–255 scale) to its nearest clean training crop, and that crop */
  samples: Array<{ distance: number; nearest: CacheItem; nearestImage: RGBImage }>;
  /** the autoencoder's reconstruction MSE on clean training crops: what a memorised copy would score */
  aeReconstruction: { mean: number; max: number };
}

/** Nearest clean training crop of each sample, against the AE's reconstruction error on those crops. */
export async function copyCheck(model: TextToImage, samples: RGBImage[], opts: { reconstructionCrops?: number } = {}): Promise<CopyCheck> {
  const crops = (await cacheCrops(model.cfg, { cleanOnly: true })).filter((c) => c.item.task === 'clean');
  const out: CopyCheck['samples'] = samples.map((s) => {
    let best = { distance: Infinity, i: -1 };
    crops.forEach((c, i) => {
      const d = meanSquaredDistance(s, c.image);
      if (d < best.distance) best = { distance: d, i };
    });
    return { distance: best.distance, nearest: crops[best.i].item, nearestImage: crops[best.i].image };
  });
  const n = Math.min(opts.reconstructionCrops ?? 16, crops.length);
  const step = Math.max(1, Math.floor(crops.length / n));
  const pick = Array.from({ length: n }, (_, i) => crops[i * step].image);
  const recT = tf.tidy(() => model.decodeLatents(model.encodeImages(toBatch(pick))));
  const rec = fromBatch(recT);
  recT.dispose();
  const errs = rec.map((r, i) => meanSquaredDistance(r, pick[i]));
  return { samples: out, aeReconstruction: { mean: meanStd(errs).mean, max: Math.max(...errs) } };
}

/**
 * Autoencoder reconstructions of centred crops of validation photos, clean and noisy (σ25), with
 * their PSNR: what the decoder can and cannot represent (noise is the hard case for an f4 AE).
 */
export async function aeReconstructions(model: TextToImage, n: number): Promise<Array<{ id: string; clean: RGBImage; rec: RGBImage; noisy: RGBImage; recNoisy: RGBImage; psnr: number; psnrNoisy: number }>> {
  const { loadPhotos, centerCrop } = await import('../data/patches');
  const { degrade } = await import('../data/degrade');
  const { clip01 } = await import('../data/image');
  const { psnr } = await import('./metrics');
  const photos = (await loadPhotos('val', model.cfg.photoShortSide)).slice(0, n);
  const out = [];
  for (const p of photos) {
    const clean = centerCrop(p.image, model.cfg.imageSize);
    const noisy = clip01(degrade(clean, { task: 'noise', seed: 1, sigma: 25 }).image);
    const t = tf.tidy(() => model.decodeLatents(model.encodeImages(toBatch([clean, noisy]))));
    const [rec, recNoisy] = fromBatch(t);
    t.dispose();
    out.push({ id: p.entry.id, clean, rec, noisy, recNoisy, psnr: psnr(clean, rec), psnrNoisy: psnr(noisy, recNoisy) });
  }
  return out;
}
