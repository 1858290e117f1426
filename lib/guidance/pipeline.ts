/**
 * Degradation-free guidance generation (paper Sec. 3.2, Fig. 2a; official
 * scripts/generate/main_generate_reference.py):
 *
 *   X ─τi─▶ E_img ─M_i2t─▶ E_txt ─M_clean (unless raw)─▶ E'_txt ─splice into "a photo of a S"─▶ τt
 *     ─▶ context ─DDIM + CFG (uncond = empty prompt; UNet with the k/v copies)─▶ z0 ─D─▶ G
 *
 * Input view as the official script (the largest centred square) and as the training crops here:
 * resized to the T2I's imageSize (so noise and rain are seen at the scale they were trained at),
 * then τi's own resize to 224.
 * Deterministic: same input, settings and seed → same bytes (x_T from the seed; η = 0).
 * `guidanceCached` stores G as PNG under outputs/guidance/ keyed by the input's content hash and
 * every setting (checkpoint hashes included), written atomically.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { TextToImage } from '../t2i/model';
import { sampleLatents } from '../models/diffusion';
import { RGBImage, assertFinite } from '../data/image';
import { fromBatch, crop } from '../data/patches';
import { encodeImage, readImage, resizeImage } from '../data/io';
import { projectRoot, writeFileAtomic } from '../util/fsx';
import { CheckpointError } from '../util/checkpoint';
import { UserError } from '../util/errors';
import { GuidanceModel, wordsToContext, resolveStoredPath, t2iWeightsHash } from './model';
import { mapperFeatures } from './m_i2t';
import { layoutImages } from '../t2i/check';

export interface GuidanceOptions {
  /** seed of x_T (default: the config's sample.seed, official 42) */
  seed?: number;
  /** true: G(E_txt), no textual restoration; false (default): G(E'_txt) */
  raw?: boolean;
  /** DDIM steps (default: the guidance config's sample.steps) */
  steps?: number;
  /** CFG scale (default: the guidance config's sample.cfgScale) */
  cfgScale?: number;
  /** SDEdit start from the words' layout map at this strength (default: the guidance config's sample.fromLayout) */
  fromLayout?: number;
  onStep?: (step: number, total: number) => void | Promise<void>;
}

/**
 * The view of an input that matches the training crops: the largest centred square, resized
 * (Lanczos) to `size` (the T2I's imageSize) unless it already is that size.
 */
export async function trainingView(img: RGBImage, size: number): Promise<RGBImage> {
  const s = Math.min(img.height, img.width);
  const sq = img.height === img.width ? img : crop(img, Math.floor((img.height - s) / 2), Math.floor((img.width - s) / 2), s, s);
  return s === size ? sq : resizeImage(sq, size, size, 'lanczos3');
}

/**
 * τi + M_i2t (+ M_clean): the pseudo-words of each image (viewed as `trainingView`).
 * @param imgs RGB in [0,1], any sizes (centre square, resized for τi)
 * @returns {raw: E_txt, clean: E'_txt}, each [B,N,D]; the caller disposes
 */
export async function imageWords(model: GuidanceModel, imgs: RGBImage[]): Promise<{ raw: tf.Tensor3D; clean: tf.Tensor3D }> {
  const views = await Promise.all(imgs.map((im) => trainingView(im, model.imageSize)));
  const f = await mapperFeatures(views, model.cfg.encoder, model.cfg.mapper);
  try {
    return tf.tidy(() => {
      const raw = model.mapper.call(f);
      return { raw, clean: model.clean.call(raw) };
    });
  } finally {
    tf.dispose([f.global, f.tokens]);
  }
}

/**
 * Pseudo-words → guidance images: context of "a photo of a S", DDIM + CFG with the k/v copies, decoder.
 * @param words [B,N,D] (E_txt, E'_txt or anything in between); not disposed
 * @returns B images of the T2I's imageSize, RGB in [0,1]
 */
export async function generateFromWords(model: GuidanceModel, t2i: TextToImage, words: tf.Tensor3D, opts: GuidanceOptions = {}): Promise<RGBImage[]> {
  const steps = opts.steps ?? model.cfg.sample.steps;
  const cfgScale = opts.cfgScale ?? model.cfg.sample.cfgScale;
  const seed = opts.seed ?? model.cfg.sample.seed;
  const b = words.shape[0];
  const ctx = wordsToContext(t2i, words);
  const uncond = cfgScale === 1 ? null : t2i.context(['']);
  const fromLayout = opts.fromLayout ?? model.cfg.sample.fromLayout;
  // SDEdit start from the layout map the (k/v-copied) layout attention reads off the words
  const x0 = fromLayout != null ? t2i.layoutStart(ctx, model.kv.map.get(t2i.unet.layout?.attn.name ?? '')) : undefined;
  try {
    const s = t2i.latentSize;
    const z = await sampleLatents(t2i.unet, t2i.scheduler, ctx, uncond, {
      init: x0 && { x0, strength: fromLayout! },
      steps,
      cfgScale,
      eta: 0,
      seed,
      rowSeeds: new Array<number>(b).fill(seed), // each row as if alone: a batch gives each input its own G
      shape: [b, s, s, t2i.cfg.unet.latentChannels],
      kvOverride: model.kv.map,
      onStep: opts.onStep ? ({ step }) => opts.onStep!(step, steps) : undefined,
    });
    const x = t2i.decodeLatents(z);
    z.dispose();
    const imgs = fromBatch(x);
    x.dispose();
    for (const im of imgs) assertFinite(im.data, 'the guidance model (with its text-to-image model)');
    return imgs;
  } finally {
    ctx.dispose();
    uncond?.dispose();
    x0?.dispose();
  }
}

/**
 * The words' layout map decoded alone, no diffusion: where G starts (GuidanceConfig sample.fromLayout),
 * read through the k/v copies as generateFromWords reads it. Separates what the words carry (M_i2t,
 * M_clean) from what the sampler loses. Needs a text-to-image model with a layout map (hasLayoutMap).
 * @param words [B,N,D]; not disposed
 * @throws UserError when the text-to-image model has no layout map
 */
export function layoutMapImages(model: GuidanceModel, t2i: TextToImage, words: tf.Tensor3D): RGBImage[] {
  t2i.requireLayoutMap("the words' layout map of a guidance model");
  const ctx = wordsToContext(t2i, words);
  try {
    return layoutImages(t2i, ctx, model.kv.map.get(t2i.unet.layout?.attn.name ?? ''));
  } finally {
    ctx.dispose();
  }
}

/** G for each degraded image X: G(E'_txt), or G(E_txt) with `raw`. */
export async function generateGuidance(model: GuidanceModel, t2i: TextToImage, imgs: RGBImage[], opts: GuidanceOptions = {}): Promise<RGBImage[]> {
  const w = await imageWords(model, imgs);
  try {
    return await generateFromWords(model, t2i, opts.raw ? w.raw : w.clean, opts);
  } finally {
    tf.dispose([w.raw, w.clean]);
  }
}

/** SHA-256 of an image's pixels (size + float32 values): the same picture in any file format hashes alike. */
export function imageContentHash(img: RGBImage): string {
  return crypto
    .createHash('sha256')
    .update(`${img.height}x${img.width};`)
    .update(new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength))
    .digest('hex');
}

/** SHA-256 of a guidance model's weights (for cache keys). */
export function guidanceWeightsHash(model: GuidanceModel): string {
  const h = crypto.createHash('sha256');
  for (const [name, v] of [...model.params.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const d = v.dataSync() as Float32Array;
    h.update(`${name}:${v.shape.join('x')};`).update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  return h.digest('hex');
}

/** Default folder of cached guidance images: $TDR_GUIDANCE_CACHE, else outputs/guidance. */
export function defaultGuidanceCacheDir(): string {
  return process.env.TDR_GUIDANCE_CACHE || path.join(projectRoot(), 'outputs', 'guidance');
}

/** Cache key: input content, every setting, and both models' weights. */
export function guidanceCacheKey(model: GuidanceModel, t2i: TextToImage, img: RGBImage, opts: GuidanceOptions & { hashes?: { guidance: string; t2i: string } } = {}): string {
  const fromLayout = opts.fromLayout ?? model.cfg.sample.fromLayout;
  const settings = {
    seed: opts.seed ?? model.cfg.sample.seed,
    raw: !!opts.raw,
    steps: opts.steps ?? model.cfg.sample.steps,
    cfgScale: opts.cfgScale ?? model.cfg.sample.cfgScale,
    ...(fromLayout != null ? { fromLayout } : {}),
    guidance: opts.hashes?.guidance ?? guidanceWeightsHash(model),
    t2i: opts.hashes?.t2i ?? t2iWeightsHash(t2i),
    backend: tf.getBackend(),
  };
  return crypto.createHash('sha256').update(imageContentHash(img)).update(JSON.stringify(settings)).digest('hex').slice(0, 32);
}

/**
 * G for one image, cached as `<cacheDir>/<key>.png` (atomic write). Returns the PNG bytes, the
 * file and whether it came from the cache.
 */
export async function guidanceCached(
  model: GuidanceModel,
  t2i: TextToImage,
  img: RGBImage,
  opts: GuidanceOptions & { cacheDir?: string; hashes?: { guidance: string; t2i: string } } = {},
): Promise<{ png: Buffer; file: string; cached: boolean; image: RGBImage }> {
  const [r] = await guidanceCachedBatch(model, t2i, [img], opts);
  return r;
}

/** Inputs per DDIM batch when G is made for many images: env TDR_GUIDANCE_BATCH, else 8. */
export function guidanceBatchSize(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.TDR_GUIDANCE_BATCH;
  if (v == null || v === '') return 8;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`TDR_GUIDANCE_BATCH must be a positive integer, got '${v}'`);
  return n;
}

/**
 * `guidanceCached` for many images: the uncached ones are generated `batch` at a time (one DDIM run
 * of UNet batch 2·batch with CFG: the per-step overhead is shared, about 2–3× less time per image at
 * 8 than one by one; each row starts from its own seeded noise, so it is the image's own G, equal to
 * the one-by-one result up to float rounding). Same order as `imgs`.
 */
export async function guidanceCachedBatch(
  model: GuidanceModel,
  t2i: TextToImage,
  imgs: readonly RGBImage[],
  opts: GuidanceOptions & { cacheDir?: string; hashes?: { guidance: string; t2i: string }; batch?: number; onBatch?: (done: number, total: number) => void } = {},
): Promise<Array<{ png: Buffer; file: string; cached: boolean; image: RGBImage }>> {
  const dir = opts.cacheDir ?? defaultGuidanceCacheDir();
  const hashes = opts.hashes ?? { guidance: guidanceWeightsHash(model), t2i: t2iWeightsHash(t2i) };
  const out: Array<{ png: Buffer; file: string; cached: boolean; image: RGBImage }> = new Array(imgs.length);
  const files = imgs.map((img) => path.join(dir, `${guidanceCacheKey(model, t2i, img, { ...opts, hashes })}.png`));
  const todo: number[] = [];
  for (const [i, file] of files.entries()) {
    // a cache never fails the caller: an unreadable entry is made again, an unwritable folder is noted once
    try {
      if (fs.existsSync(file)) {
        const png = fs.readFileSync(file);
        out[i] = { png, file, cached: true, image: await readImage(png, {}, file) };
        continue;
      }
    } catch (e) {
      cacheNote(`cannot read the cached guidance ${file} (${(e as Error).message.split('\n')[0]}); generating it again`);
    }
    todo.push(i);
  }
  const bs = opts.batch ?? guidanceBatchSize();
  for (let k = 0; k < todo.length; k += bs) {
    const part = todo.slice(k, k + bs);
    const gs = await generateGuidance(model, t2i, part.map((i) => imgs[i]), opts);
    for (const [j, i] of part.entries()) {
      const png = await encodeImage(gs[j], 'png');
      const file = files[i];
      try {
        writeFileAtomic(file, png);
      } catch (e) {
        cacheNote(`cannot write the guidance cache in ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); going on without it (set TDR_GUIDANCE_CACHE to a writable folder)`);
      }
      // return what the cache will return next time (8-bit), so a cached and a fresh call agree
      out[i] = { png, file, cached: false, image: await readImage(png, {}, file) };
    }
    opts.onBatch?.(Math.min(k + bs, todo.length), todo.length);
  }
  return out;
}

const noted = new Set<string>();

/** One line on stderr per distinct cache problem and process. */
function cacheNote(msg: string): void {
  if (noted.has(msg)) return;
  noted.add(msg);
  process.stderr.write(`tdr: note: ${msg}\n`);
}

/**
 * Load a guidance checkpoint and the T2I model it was trained on (`t2iFile`, default: the path
 * stored in the checkpoint). A T2I with other weights is refused (hash mismatch).
 */
export function loadGuidancePair(file: string, opts: { t2iFile?: string } = {}): { guidance: GuidanceModel; t2i: TextToImage; t2iFile: string } {
  const h = GuidanceModel.readHeader(file);
  const t2iFile = opts.t2iFile ?? resolveStoredPath(h.t2i.path);
  if (!fs.existsSync(t2iFile)) {
    throw new CheckpointError(`${file}: its text-to-image checkpoint ${t2iFile} does not exist; give the one it was trained on (sha256 ${h.t2i.sha256.slice(0, 12)}…)`);
  }
  const t2i = TextToImage.load(t2iFile);
  try {
    return { guidance: GuidanceModel.load(file, t2i, { t2iLabel: t2iFile }), t2i, t2iFile };
  } catch (e) {
    t2i.dispose();
    throw e;
  }
}
