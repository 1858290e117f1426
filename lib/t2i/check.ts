/**
 * Does the text-to-image model follow the text? Two checks:
 * 1. degradation words steer it: for the same caption and seed, ", hazy" should raise the mean dark
 *    channel and ", noisy" the high-frequency energy of the sample, against the plain caption;
 * 2. it generates rather than copies: the distance of a sample to its nearest training crop is
 *    compared with the autoencoder's own reconstruction error on training crops (a copy would be
 *    about that close).
 */
import * as tf from '@tensorflow/tfjs';
import { TextToImage } from './model';
import { RGBImage } from '../data/image';
import { darkChannel, highFrequencyEnergy, meanSquaredDistance, meanStd, ridgeFit } from '../metrics/stats';
import { cacheCrops, CacheItem } from './train';
import { toBatch, fromBatch } from '../data/patches';
import type { PhotoSplit } from '../data/corpus';
import { cellColours, featureTokens } from '../models/word_mapper';
import { Linear } from '../models/nn';

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
  const { psnr } = await import('../metrics/metrics');
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

/**
 * How much high-frequency detail the autoencoder keeps: mean HF energy (Laplacian, lib/metrics/stats) of the
 * clean crops, their reconstructions, the σ25-noisy crops and theirs; `noiseKept` = (AE(X) − AE(Y)) / (X − Y),
 * the share of the noise's HF excess that survives encoding. The guidance can only carry what the latents
 * carry: a low `noiseKept` means noise cannot reach G through any text (docs/experiments.md: the autoencoder's high-frequency loss).
 */
export function aeHighFrequency(recs: ReadonlyArray<{ clean: RGBImage; rec: RGBImage; noisy: RGBImage; recNoisy: RGBImage }>): { clean: number; rec: number; noisy: number; recNoisy: number; noiseKept: number } {
  if (!recs.length) throw new Error('aeHighFrequency: no reconstructions');
  const mean = (k: 'clean' | 'rec' | 'noisy' | 'recNoisy') => recs.reduce((a, r) => a + highFrequencyEnergy(r[k]), 0) / recs.length;
  const m = { clean: mean('clean'), rec: mean('rec'), noisy: mean('noisy'), recNoisy: mean('recNoisy') };
  return { ...m, noiseKept: (m.recNoisy - m.rec) / (m.noisy - m.clean) };
}

export interface ContentRetrievalRow {
  photoId: string;
  seed: number;
  /** 1 = the sample's nearest training photo (frozen-encoder cosine similarity) is its caption's photo */
  rank: number;
  nearestId: string;
}

export interface ContentRetrieval {
  rows: ContentRetrievalRow[];
  /** the same statistic for samples of the empty prompt, scored against the same photos (the chance level) */
  unconditional: ContentRetrievalRow[];
  photos: number;
  top1: number;
  top5: number;
  meanRank: number;
  uncondTop1: number;
  uncondTop5: number;
  uncondMeanRank: number;
}

/**
 * Do CONTENT words steer the model? For each training photo's caption and seed, the sample is
 * encoded by the frozen image encoder (MobileNetV2 global vector, lib/models/image_encoder.ts — not trained on this
 * corpus, so it is an independent judge) and ranked against every training photo (mean feature of
 * five imageSize crops: centre and corners). Rank 1 = the sample looks most like its own caption's
 * photo. Chance: top-1 = 1/photos, top-5 = 5/photos; the empty prompt's samples measure it empirically
 * (each unconditional sample is scored against the photo of the caption it replaces).
 */
export async function contentRetrieval(
  model: TextToImage,
  captionsOf: Array<{ id: string; caption: string }>,
  seeds: readonly number[],
  opts: { steps?: number; cfgScale?: number; onImage?: (id: string, seed: number, img: RGBImage, uncond: RGBImage) => void | Promise<void> } = {},
): Promise<ContentRetrieval> {
  const { unitGlobalFeatures: feature } = await import('../models/image_encoder');
  const { crop } = await import('../data/patches');
  const photos = await import('../data/patches').then((m) => m.loadPhotos('train', model.cfg.photoShortSide));
  const s = model.cfg.imageSize;
  const refs: Array<{ id: string; v: Float32Array }> = [];
  for (const p of photos) {
    const { width: w, height: h } = p.image;
    const at = [[(h - s) >> 1, (w - s) >> 1], [0, 0], [0, w - s], [h - s, 0], [h - s, w - s]];
    const vs = await feature(at.map(([y, x]) => crop(p.image, y, x, s, s)));
    const v = new Float32Array(vs[0].length);
    for (const u of vs) for (let i = 0; i < v.length; i++) v[i] += u[i] / vs.length;
    refs.push({ id: p.entry.id, v });
  }
  const rankOf = (q: Float32Array, id: string): ContentRetrievalRow & { seed: number } => {
    const sims = refs.map((r) => ({ id: r.id, sim: r.v.reduce((a, x, i) => a + x * q[i], 0) })).sort((a, b) => b.sim - a.sim);
    const rank = sims.findIndex((x) => x.id === id) + 1;
    if (rank === 0) throw new Error(`contentRetrieval: '${id}' is not a training photo`);
    return { photoId: id, seed: 0, rank, nearestId: sims[0].id };
  };
  const rows: ContentRetrievalRow[] = [];
  const unconditional: ContentRetrievalRow[] = [];
  for (const { id, caption } of captionsOf) {
    for (const seed of seeds) {
      const [img, un] = await model.generate([caption, ''], { seed, steps: opts.steps, cfgScale: opts.cfgScale });
      await opts.onImage?.(id, seed, img, un);
      const [q, qu] = await feature([img, un]);
      rows.push({ ...rankOf(q, id), seed });
      unconditional.push({ ...rankOf(qu, id), seed });
    }
  }
  const stat = (rs: ContentRetrievalRow[]) => ({
    top1: rs.filter((r) => r.rank === 1).length / rs.length,
    top5: rs.filter((r) => r.rank <= 5).length / rs.length,
    meanRank: meanStd(rs.map((r) => r.rank)).mean,
  });
  const c = stat(rows);
  const u = stat(unconditional);
  return { rows, unconditional, photos: refs.length, ...c, uncondTop1: u.top1, uncondTop5: u.top5, uncondMeanRank: u.meanRank };
}

export interface WordsReconstruction {
  /** per validation photo: its clean centre crop Y, the image drawn from its own pseudo-words, and ranks */
  rows: Array<{ id: string; y: RGBImage; g: RGBImage; rank: number; psnrOwn: number; featureRank: number }>;
  /** 16×16 thumbnail PSNR retrieval among the validation crops (chance: top-1 = 1/photos) */
  thumbnail: { top1: number; meanRank: number; n: number };
  /** the frozen image encoder's global-feature cosine retrieval among the same crops */
  feature: { top1: number; meanRank: number; n: number };
  photos: number;
  /** mean PSNR (dB) of G to its own photo at 16×16 and at 4×4 thumbnails (the 4×4 is what a guided restorer must beat on colour) */
  psnrOwn16: number;
  psnrOwn4: number;
  /**
   * models with words.layoutLoss: the layout map of the same words decoded by the autoencoder alone
   * (no diffusion): how much of the photo's layout the words carry, ranked the same way
   */
  layout?: { top1: number; meanRank: number; n: number; psnr16: number };
  /** the SDEdit strength used (GenerateOptions.fromLayout), if any */
  fromLayout?: number;
}

/**
 * The diffusion autoencoder through the text space, measured on photos NO stage has seen: each
 * validation photo's centre crop Y (at photoShortSide, imageSize) → the model's own pseudo-words →
 * DDIM + CFG from the words alone (no k/v copies, no M_clean) → an image that should show Y. Ranked
 * against all validation crops by 16×16 thumbnail PSNR (`thumbnailRanks`) and by the frozen encoder's
 * feature cosine. This is the upper bound of what guidance from these words can show.
 */
export async function wordsReconstruction(
  model: TextToImage,
  opts: { limit?: number; seed?: number; steps?: number; cfgScale?: number; batch?: number; fromLayout?: number; onImage?: (i: number, n: number) => void } = {},
): Promise<WordsReconstruction> {
  const { loadPhotos, centerCrop } = await import('../data/patches');
  const { thumbnailRanks, summariseRanks, thumbnailPsnr } = await import('../metrics/content');
  const { unitGlobalFeatures } = await import('../models/image_encoder');
  const photos = await loadPhotos('val', model.cfg.photoShortSide, opts.limit);
  const ys = photos.map((p) => centerCrop(p.image, model.cfg.imageSize));
  const gs: RGBImage[] = [];
  const maps: RGBImage[] = [];
  const withLayout = model.hasLayoutMap;
  const bs = opts.batch ?? 4;
  for (let i = 0; i < ys.length; i += bs) {
    const part = ys.slice(i, i + bs);
    const w = await model.imageWords(part);
    const ctx = model.wordsContext(w);
    w.dispose();
    try {
      gs.push(...(await model.generate(ctx, { seed: opts.seed ?? 42, steps: opts.steps, cfgScale: opts.cfgScale, fromLayout: opts.fromLayout })));
      if (withLayout) maps.push(...layoutImages(model, ctx));
    } finally {
      ctx.dispose();
    }
    opts.onImage?.(Math.min(i + bs, ys.length), ys.length);
  }
  const own = ys.map((_, i) => i);
  const ranks = thumbnailRanks(gs, ys, own);
  const layoutRanks = withLayout ? thumbnailRanks(maps, ys, own) : undefined;
  const fy = await unitGlobalFeatures(ys);
  const fg = await unitGlobalFeatures(gs);
  const featureRanks = fg.map((g, i) => {
    const sims = fy.map((r) => r.reduce((a, x, k) => a + x * g[k], 0));
    return { rank: 1 + sims.filter((v, j) => j !== i && v >= sims[i]).length };
  });
  return {
    rows: photos.map((p, i) => ({ id: p.entry.id, y: ys[i], g: gs[i], rank: ranks[i].rank, psnrOwn: ranks[i].psnrOwn, featureRank: featureRanks[i].rank })),
    thumbnail: summariseRanks(ranks),
    feature: summariseRanks(featureRanks),
    photos: ys.length,
    psnrOwn16: ranks.reduce((a, r) => a + r.psnrOwn, 0) / ranks.length,
    psnrOwn4: gs.reduce((a, g, i) => a + thumbnailPsnr(g, ys[i], 4), 0) / gs.length,
    ...(layoutRanks ? { layout: { ...summariseRanks(layoutRanks), psnr16: layoutRanks.reduce((a, r) => a + r.psnrOwn, 0) / layoutRanks.length } } : {}),
    ...(opts.fromLayout != null ? { fromLayout: opts.fromLayout } : {}),
  };
}

/**
 * The layout map of a context decoded as an image: its first latentChannels channels (what
 * words.layoutLoss regresses: the crop's scaled latent pooled to the layout grid), bilinearly
 * resized to the latent size, through the autoencoder's decoder. No diffusion. `kv`: the layout head's
 * k/v projections to read the context with instead of its own (a guidance model's copies).
 */
export function layoutImages(model: TextToImage, ctx: tf.Tensor3D, kv?: { k: Linear; v: Linear }): RGBImage[] {
  const x = tf.tidy(() => model.decodeLatents(model.layoutStart(ctx, kv)));
  try {
    return fromBatch(x);
  } finally {
    x.dispose();
  }
}

/** How faithfully the words' layout map shows a set of crops (`layoutFidelity`). */
export interface LayoutFidelitySplit {
  split: PhotoSplit;
  photos: number;
  /** mean area-thumbnail PSNR (dB) to the crop of its words' layout map decoded alone, at 4×4 and 8×8 */
  map4: number;
  map8: number;
  /** the same for the best a map on this grid can do: the crop's own latent pooled to the layout grid, decoded */
  ceiling4: number;
  ceiling8: number;
  /** the layout objective (words.layoutLoss) on these crops, and the variance of its target (so 1 − mse/var is R²) */
  mse: number;
  targetVar: number;
  /**
   * a yardstick for what the words could carry: a linear map (ridge, λ = 1) from the crop's token-cell
   * colours (the mapper's colour channels) to its pooled latent, fitted on the training crops of the
   * latent cache (clean, every scale) — its mean squared error and decoded 4×4 PSNR on these crops
   */
  probe: { mse: number; map4: number };
}

/**
 * The words' layout map on photos no stage has seen (the validation photos) against the training
 * photos it learned from (their centre crops at photoShortSide): a large gap means the mapper
 * remembers the training photos' colours instead of reading the colours of the photo it is given.
 * No diffusion; the colour probe encodes the clean training crops of the latent cache (`probeCrops`: at
 * most that many, evenly spread; default all). Needs a model trained with unet.layout and words.layoutLoss.
 */
export async function layoutFidelity(model: TextToImage, opts: { limit?: number; probeCrops?: number } = {}): Promise<LayoutFidelitySplit[]> {
  const { loadPhotos, centerCrop } = await import('../data/patches');
  const { thumbnailPsnr } = await import('../metrics/content');
  model.requireLayoutMap('the layout fidelity check');
  if (!model.words || !model.unet.layout || !model.cfg.words) throw new Error('unreachable: requireLayoutMap passed'); // narrows the types
  const g = model.unet.cfg.layout!.grid;
  const cells = Math.sqrt(featureTokens(model.cfg.words.encoder, model.cfg.words.mapper));
  const c = model.cfg.unet.latentChannels;
  const s = model.latentSize;
  const pool = (z: tf.Tensor4D) => tf.avgPool(z, [s / g, s / g], [s / g, s / g], 'valid') as tf.Tensor4D; // the layout objective's target
  // the colour probe, fitted on the training crops: token-cell colours → pooled latent
  const crops = await cacheCrops(model.cfg, { cleanOnly: true });
  const every = Math.max(1, Math.ceil(crops.length / (opts.probeCrops ?? crops.length))); // probeCrops: at most that many, evenly spread
  const fitImgs = crops.filter((_, i) => i % every === 0).map((k) => k.image);
  const fitX: Float32Array[] = [];
  const fitY: Float32Array[] = [];
  for (let i = 0; i < fitImgs.length; i += 16) {
    const x = toBatch(fitImgs.slice(i, i + 16));
    const [a, b] = tf.tidy(() => [cellColours(x, cells), pool(model.encodeImages(x))]);
    fitX.push(a.dataSync() as Float32Array);
    fitY.push(b.dataSync() as Float32Array);
    tf.dispose([x, a, b]);
  }
  const pIn = cells * cells * 3;
  const probe = ridgeFit(concatF32(fitX), concatF32(fitY), fitImgs.length, pIn, g * g * c, 1);
  const out: LayoutFidelitySplit[] = [];
  for (const split of ['val', 'train'] as const) {
    const photos = await loadPhotos(split, model.cfg.photoShortSide, opts.limit ?? 25);
    const ys = photos.map((p) => centerCrop(p.image, model.cfg.imageSize));
    const maps: RGBImage[] = [];
    const ceil: RGBImage[] = [];
    const colours: Float32Array[] = [];
    const targets: Float32Array[] = [];
    let se = 0;
    for (let i = 0; i < ys.length; i += 8) {
      const x = toBatch(ys.slice(i, i + 8));
      const z = model.encodeImages(x);
      const w = await model.imageWords(x);
      const ctx = model.wordsContext(w);
      const target = pool(z);
      const col = cellColours(x, cells);
      const mapImg = tf.tidy(() => model.decodeLatents(model.layoutStart(ctx)));
      const ceilImg = tf.tidy(() => model.decodeLatents(tf.image.resizeBilinear(target, [s, s], true)));
      const mse = model.unet.layoutLoss(ctx, z);
      maps.push(...fromBatch(mapImg));
      ceil.push(...fromBatch(ceilImg));
      se += mse.dataSync()[0] * x.shape[0];
      targets.push(target.dataSync() as Float32Array);
      colours.push(col.dataSync() as Float32Array);
      tf.dispose([x, z, w, ctx, target, col, mapImg, ceilImg, mse]);
    }
    const y = concatF32(targets);
    const pred = Float32Array.from(probe(concatF32(colours), ys.length));
    const probeMse = pred.reduce((a, v, i) => a + (v - y[i]) ** 2, 0) / pred.length;
    const probeImgs = tf.tidy(() => model.decodeLatents(tf.image.resizeBilinear(tf.tensor4d(pred, [ys.length, g, g, c]), [s, s], true)));
    const probed = fromBatch(probeImgs);
    probeImgs.dispose();
    const mean = (f: (i: number) => number) => ys.reduce((a, _, i) => a + f(i), 0) / ys.length;
    out.push({
      split,
      photos: ys.length,
      map4: mean((i) => thumbnailPsnr(maps[i], ys[i], 4)),
      map8: mean((i) => thumbnailPsnr(maps[i], ys[i], 8)),
      ceiling4: mean((i) => thumbnailPsnr(ceil[i], ys[i], 4)),
      ceiling8: mean((i) => thumbnailPsnr(ceil[i], ys[i], 8)),
      mse: se / ys.length,
      targetVar: channelVariance(targets, c),
      probe: { mse: probeMse, map4: mean((i) => thumbnailPsnr(probed[i], ys[i], 4)) },
    });
  }
  return out;
}

function concatF32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Mean over channels of each channel's variance, for row-major [..., C] arrays. */
function channelVariance(parts: readonly Float32Array[], c: number): number {
  const sum = new Float64Array(c);
  const sq = new Float64Array(c);
  let n = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      sum[i % c] += p[i];
      sq[i % c] += p[i] * p[i];
    }
    n += p.length / c;
  }
  let v = 0;
  for (let k = 0; k < c; k++) v += sq[k] / n - (sum[k] / n) ** 2;
  return v / c;
}
