/**
 * Stage 0b (docs/notation.md, "Training stages"): train the text encoder τt and the conditional UNet ε_θ of the small
 * text-to-image model with Eq. (1), on captioned clean AND degraded crops of the training photos,
 * so that degradation words in a caption ("…, hazy") produce the degradation.
 *
 * 1. autoencoder: trained first (stage 0a, ./autoencoder.ts), then frozen; latent scale measured.
 * 2. latent cache: for every crop scale (`cropScales`, default photoShortSide) and training photo,
 *    `crops` crops (imageSize, random position and flip), each clean and `degradedPerCrop` times
 *    degraded (tasks in turn, `taskWeights` times each; random strength), and `words.colorJitter`
 *    times colour-jittered (words only), with captions
 *    "a photo of <caption>[, <phrase>]" (true only of whole-scene crops, those at photoShortSide);
 *    encoded once with E (z·scale), and with `words` also their τi features. Deterministic.
 * 3. training: batches of cached latents; with `words`, a share words.prob of the rows (any crop) is
 *    conditioned on the crop's OWN pseudo-words "a photo of a S", S := mapper(τi(crop)) (the diffusion
 *    autoencoder through the text space, trained end to end with the text encoder and UNet), the
 *    rest (whole-scene crops only) on their captions; with probability condDropProb the condition is
 *    replaced by the empty prompt (classifier-free guidance, Ho & Salimans 2021); loss Eq. (1).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { T2IConfig, cropScalesOf, parseT2IConfig } from './presets';
import { portablePath } from '../util/paths';
import { mapperFeatures, featureDim, featureTokens } from '../models/word_mapper';
import { TextToImage } from './model';
import { Params } from '../models/params';
import { buildVocab, PROMPT_TEMPLATE } from '../models/tokenizer';
import { diffusionLossWith, drawDiffusionNoise } from '../models/diffusion';
import { train, Stage, StepLoss, TrainResult, loadWeights, CHECKPOINT_FILE, LogRecord } from '../train/loop';
import { trainAutoencoder, measureLatentScale, autoencoderKey } from './autoencoder';
import { loadPhotos, randomCrop, toBatch } from '../data/patches';
import { listEntries } from '../data/corpus';
import { degrade, taskTurn, Task, DegradeOptions } from '../data/degrade';
import { trainingCaption, DEGRADATION_WORDS } from '../data/captions';
import { RGBImage, clip01 } from '../data/image';
import { colorJitter } from '../data/color_jitter';
import { saveCheckpoint, loadCheckpoint, Named, CheckpointError } from '../util/checkpoint';
import * as crypto from 'node:crypto';
import { Rng } from '../util/rng';
import { loopSettings } from '../train/config';

export interface CacheItem {
  photoId: string;
  crop: number;
  task: Task | 'clean';
  caption: string;
  /** the seed of the degradation (or 0 for clean) */
  seed: number;
  /** short side the photo was resized to before cropping (absent: photoShortSide) */
  scale?: number;
  /** false: the crop shows only part of the scene, so its caption is not true of it (words only) */
  wholeScene?: boolean;
  /** a colour-jittered copy of clean crop `crop` (words.colorJitter): the seed of its colour transform; words only */
  jitter?: number;
}

/**
 * The cache's crops as images, regenerated deterministically (no need to store pixels): used to
 * build the latent cache and to find the nearest training crop of a sample.
 */
export async function cacheCrops(cfg: T2IConfig, opts: { cleanOnly?: boolean } = {}): Promise<Array<{ item: CacheItem; image: RGBImage }>> {
  const out: Array<{ item: CacheItem; image: RGBImage }> = [];
  const rng = new Rng(cfg.unetTrain.seed * 7919 + 17);
  let k = 0;
  const turn = taskTurn(cfg.taskWeights);
  const jitters = cfg.words?.colorJitter ?? 0;
  for (const sc of cropScalesOf(cfg)) {
    const photos = await loadPhotos('train', sc.shortSide);
    const whole = sc.shortSide === cfg.photoShortSide;
    const where = cfg.cropScales ? { scale: sc.shortSide, wholeScene: whole } : {}; // the plain cache keeps its old items
    for (const p of photos) {
      for (let c = 0; c < sc.crops; c++) {
        const img = randomCrop(p.image, cfg.imageSize, rng);
        out.push({ item: { photoId: p.entry.id, crop: c, task: 'clean', caption: trainingCaption(p.entry), seed: 0, ...where }, image: img });
        for (let d = 0; d < cfg.degradedPerCrop; d++) {
          const task = turn[k++ % turn.length];
          const seed = rng.nextUint32();
          if (opts.cleanOnly) continue;
          const r = degrade(img, { task, seed } as DegradeOptions);
          out.push({ item: { photoId: p.entry.id, crop: c, task, caption: trainingCaption(p.entry, r.phrase), seed, ...where }, image: clip01(r.image) });
        }
        for (let j = 0; j < jitters; j++) {
          const jitter = rng.nextUint32();
          if (opts.cleanOnly) continue; // not a crop of a real photo
          out.push({ item: { photoId: p.entry.id, crop: c, task: 'clean', caption: trainingCaption(p.entry), seed: 0, scale: sc.shortSide, wholeScene: false, jitter }, image: colorJitter(img, jitter) });
        }
      }
    }
  }
  return out;
}

/** What a latent cache is made of: a cache built with other values is rebuilt, never reused. */
function latentCacheSignature(cfg: T2IConfig): Record<string, unknown> {
  return {
    imageSize: cfg.imageSize,
    photoShortSide: cfg.photoShortSide,
    autoencoder: autoencoderKey(cfg), // the AE's settings (not its weights)
    cropsPerPhoto: cfg.cropsPerPhoto,
    ...(cfg.cropScales ? { cropScales: cfg.cropScales } : {}),
    ...(cfg.words ? { features: { encoder: cfg.words.encoder, tokenPool: cfg.words.mapper.tokenPool, color: cfg.words.mapper.color } } : {}),
    ...(cfg.words?.colorJitter ? { colorJitter: cfg.words.colorJitter } : {}), // absent when 0: earlier caches stay valid
    degradedPerCrop: cfg.degradedPerCrop,
    taskWeights: cfg.taskWeights,
    seed: cfg.unetTrain.seed,
  };
}

export interface LatentCache {
  items: CacheItem[];
  /** [N,h,w,C] scaled latents, row-major */
  z: Float32Array;
  shape: [number, number, number, number];
  latentScale: number;
  /** with `words`: τi features of every crop, global [N,dim] and tokens [N,T,dim], row-major */
  features?: { global: Float32Array; tokens: Float32Array; dim: number; numTokens: number };
}

/** A cache file's contents (kind 'latent-cache'). */
function readLatentCache(meta: Record<string, unknown>, tensors: Map<string, { shape: number[]; data: Float32Array }>): LatentCache {
  const z = tensors.get('z')!;
  const g = tensors.get('global');
  const t = tensors.get('tokens');
  const features = g && t ? { global: g.data, tokens: t.data, dim: g.shape[1], numTokens: t.shape[1] } : undefined;
  return { items: meta.items as CacheItem[], z: z.data, shape: z.shape as LatentCache['shape'], latentScale: Number(meta.latentScale), features };
}

/** Build (or load from `file`) the latent cache of a trained autoencoder. */
export async function latentCache(model: TextToImage, cfg: T2IConfig, file: string, opts: { quiet?: boolean } = {}): Promise<LatentCache> {
  const signature = latentCacheSignature(cfg);
  if (fs.existsSync(file)) {
    const { meta, tensors } = loadCheckpoint(file);
    if (JSON.stringify(meta.signature) === JSON.stringify(signature)) return readLatentCache(meta, tensors);
    if (!opts.quiet) process.stderr.write(`${file}: built with other cache settings; rebuilding it\n`);
  }
  const crops = await cacheCrops(cfg);
  const s = model.latentSize;
  const c = cfg.autoencoder.latentChannels;
  const z = new Float32Array(crops.length * s * s * c);
  const per = s * s * c;
  const w = cfg.words;
  const dim = w ? featureDim(w.encoder, w.mapper) : 0;
  const numTokens = w ? featureTokens(w.encoder, w.mapper) : 0;
  const global = new Float32Array(crops.length * dim);
  const tokens = new Float32Array(crops.length * numTokens * dim);
  for (let i = 0; i < crops.length; i += 16) {
    const part = crops.slice(i, i + 16).map((x) => x.image);
    const x = toBatch(part);
    const zt = tf.tidy(() => model.encodeImages(x));
    z.set(zt.dataSync() as Float32Array, i * per);
    zt.dispose();
    if (w) {
      const f = await mapperFeatures(x, w.encoder, w.mapper);
      global.set(f.global.dataSync() as Float32Array, i * dim);
      tokens.set(f.tokens.dataSync() as Float32Array, i * numTokens * dim);
      tf.dispose([f.global, f.tokens]);
    }
    x.dispose();
    if (!opts.quiet) process.stderr.write(`\rlatent cache ${Math.min(i + 16, crops.length)}/${crops.length}`);
  }
  if (!opts.quiet) process.stderr.write('\n');
  const items = crops.map((x) => x.item);
  const shape: LatentCache['shape'] = [crops.length, s, s, c];
  const tensors = new Map([['z', { shape: [...shape], data: z }]]);
  if (w) {
    tensors.set('global', { shape: [crops.length, dim], data: global });
    tensors.set('tokens', { shape: [crops.length, numTokens, dim], data: tokens });
  }
  saveCheckpoint(file, { kind: 'latent-cache', signature, items, latentScale: model.latentScale }, tensors);
  return readLatentCache({ items, latentScale: model.latentScale }, tensors);
}

/** Every prompt the model should know the tokens of: training captions, validation captions, phrases. */
export function vocabTexts(cache: LatentCache): string[] {
  const val = listEntries('val').map((e) => trainingCaption(e));
  const phrases = DEGRADATION_WORDS.flatMap((w) => [w, `slightly ${w}`, `heavily ${w}`]);
  return [...cache.items.map((i) => i.caption), ...val, ...phrases, PROMPT_TEMPLATE, ''];
}

export interface T2IBatch {
  /** [B,h,w,C] latents: the `nWords` rows conditioned on their own words first, then the caption rows */
  z: tf.Tensor4D;
  /** ids of the caption rows (B − nWords; the empty prompt where the condition was dropped) */
  ids: number[][];
  /** τi features of the word rows: global [nWords,dim], tokens [nWords,T,dim], and unit normals for the word noise */
  words?: { global: tf.Tensor2D; tokens: tf.Tensor3D; noise?: Float32Array };
  /** Eq. (1)'s t and ε, drawn in getBatch (so a batch can be split across workers) */
  noise: { t: number[]; eps: Float32Array };
}

function wordRows(b: T2IBatch): number {
  return b.words ? b.words.global.shape[0] : 0;
}

export function t2iStage(model: TextToImage, cfg: T2IConfig, cache: LatentCache): Stage<T2IBatch> {
  const [n, h, w, c] = cache.shape;
  const per = h * w * c;
  const empty = model.tokenize([''])[0];
  const ids = model.tokenize(cache.items.map((i) => i.caption));
  const words = cfg.words;
  const f = cache.features;
  if (words && (!f || !model.words)) throw new Error('t2iStage: a config with `words` needs a latent cache with τi features and a model with a mapper');
  const wordShape = model.words ? [model.words.numWords, cfg.text.width] : [0, 0];
  const captioned = cache.items.flatMap((it, k) => (it.wholeScene === false ? [] : [k])); // crops their caption is true of
  if (captioned.length === 0) throw new Error('t2iStage: no whole-scene crop in the cache: nothing to train the captions on');
  return {
    params: model.params,
    getBatch(_step, rng) {
      const b = cfg.unetTrain.batch;
      const wordIdx: number[] = [];
      const capRows: Array<{ k: number; ids: number[] }> = [];
      for (let i = 0; i < b; i++) {
        const viaWords = !!words && rng.random() < words.prob; // a row on its crop's own words, else on a caption
        const k = viaWords ? rng.int(n) : captioned[rng.int(captioned.length)];
        const drop = rng.random() < cfg.condDropProb; // CFG: drop the condition
        if (drop) capRows.push({ k, ids: empty });
        else if (viaWords) wordIdx.push(k);
        else capRows.push({ k, ids: ids[k] });
      }
      const order = [...wordIdx, ...capRows.map((r) => r.k)];
      const data = new Float32Array(b * per);
      order.forEach((k, i) => data.set(cache.z.subarray(k * per, (k + 1) * per), i * per));
      const noise = drawDiffusionNoise(rng, [b, h, w, c], cfg.numTrainSteps, cfg.offsetNoise);
      let wb: T2IBatch['words'];
      if (f && wordIdx.length > 0) {
        const wn = words!.noise > 0 ? Float32Array.from({ length: wordIdx.length * wordShape[0] * wordShape[1] }, () => rng.normal()) : undefined;
        wb = {
          global: tf.tensor2d(gatherRows(f.global, f.dim, wordIdx), [wordIdx.length, f.dim]),
          tokens: tf.tensor3d(gatherRows(f.tokens, f.numTokens * f.dim, wordIdx), [wordIdx.length, f.numTokens, f.dim]),
          noise: wn,
        };
      }
      return { z: tf.tensor4d(data, [b, h, w, c]), ids: capRows.map((r) => r.ids), words: wb, noise };
    },
    loss(batch) {
      const parts: tf.Tensor3D[] = [];
      if (batch.words) {
        let e = model.words!.call({ global: batch.words.global, tokens: batch.words.tokens }); // the crop's own pseudo-words
        if (batch.words.noise) {
          const ms = tf.mean(tf.square(e));
          const rms = Math.sqrt(ms.dataSync()[0]); // a constant: noise relative to the words' own scale
          ms.dispose();
          e = tf.add(e, tf.mul(tf.tensor3d(batch.words.noise, e.shape), rms * words!.noise)) as tf.Tensor3D;
        }
        parts.push(model.wordsContext(e));
      }
      if (batch.ids.length > 0) parts.push(model.text.encode(batch.ids).context);
      const ctx = parts.length === 1 ? parts[0] : (tf.concat(parts, 0) as tf.Tensor3D);
      const l = diffusionLossWith(model.unet, batch.z, ctx, batch.noise, { scheduler: model.scheduler }); // Eq. (1)
      const nw = wordRows(batch);
      if (!words || words.layoutLoss === 0) return { total: l, parts: { l_eps: l } } as StepLoss;
      if (nw === 0) return { total: l, parts: { l_eps: l, l_layout: tf.scalar(0) } }; // no word rows in this batch
      // auxiliary: the word rows' layout map regresses their latents pooled to the layout grid (config `layoutLoss`)
      const lay = tf.tidy(() => model.unet.layoutLoss(ctx.slice([0, 0, 0], [nw, -1, -1]), batch.z.slice([0, 0, 0, 0], [nw, -1, -1, -1])));
      const total = tf.add(l, tf.mul(lay, words.layoutLoss)) as tf.Scalar;
      return { total, parts: { l_eps: l, l_layout: lay } };
    },
    disposeBatch(b) {
      b.z.dispose();
      if (b.words) tf.dispose([b.words.global, b.words.tokens]);
    },
    sliceBatch(b, start, end) {
      const k = wordRows(b);
      const ws = Math.min(start, k);
      const we = Math.min(end, k);
      const per1 = wordShape[0] * wordShape[1];
      return {
        z: b.z.slice([start], [end - start]),
        ids: b.ids.slice(Math.max(start - k, 0), Math.max(end - k, 0)),
        words:
          b.words && we > ws
            ? {
                global: b.words.global.slice([ws, 0], [we - ws, -1]),
                tokens: b.words.tokens.slice([ws, 0, 0], [we - ws, -1, -1]),
                noise: b.words.noise?.slice(ws * per1, we * per1),
              }
            : undefined,
        noise: { t: b.noise.t.slice(start, end), eps: b.noise.eps.slice(start * per, end * per) },
      };
    },
    batchSize(b) {
      return b.noise.t.length;
    },
  };
}

/**
 * The layout warm-up (config `words.layoutSteps`): random crops' cached τi features → word mapper →
 * text encoder → the UNet's layout head, regressing the crop's latent average-pooled to the layout
 * grid (the `layoutLoss` term of `t2iStage`, alone). Only `words`, `text` and `unet.layout` are
 * trainable (the caller freezes the rest). No diffusion, no captions.
 */
export function t2iLayoutStage(model: TextToImage, cfg: T2IConfig, cache: LatentCache): Stage<LayoutBatch> {
  const [n, h, w, c] = cache.shape;
  const per = h * w * c;
  const f = cache.features;
  const words = cfg.words;
  if (!words || !f || !model.words || !model.unet.layout) throw new Error('t2iLayoutStage: needs words, a latent cache with τi features and unet.layout');
  return {
    params: model.params,
    getBatch(_step, rng) {
      const idx = Array.from({ length: words.layoutBatch }, () => rng.int(n));
      const z = new Float32Array(idx.length * per);
      idx.forEach((k, i) => z.set(cache.z.subarray(k * per, (k + 1) * per), i * per));
      return {
        z: tf.tensor4d(z, [idx.length, h, w, c]),
        global: tf.tensor2d(gatherRows(f.global, f.dim, idx), [idx.length, f.dim]),
        tokens: tf.tensor3d(gatherRows(f.tokens, f.numTokens * f.dim, idx), [idx.length, f.numTokens, f.dim]),
      };
    },
    loss(b) {
      const ctx = model.wordsContext(model.words!.call({ global: b.global, tokens: b.tokens }));
      const l = model.unet.layoutLoss(ctx, b.z);
      return { total: l, parts: { l_layout: l } };
    },
    disposeBatch(b) {
      tf.dispose([b.z, b.global, b.tokens]);
    },
    sliceBatch(b, start, end) {
      return { z: b.z.slice([start], [end - start]), global: b.global.slice([start], [end - start]), tokens: b.tokens.slice([start], [end - start]) };
    },
    batchSize(b) {
      return b.z.shape[0];
    },
  };
}

export interface LayoutBatch {
  z: tf.Tensor4D;
  global: tf.Tensor2D;
  tokens: tf.Tensor3D;
}

/** Rows `idx` of a row-major [M,...] array, as one Float32Array. */
function gatherRows(src: Float32Array, rowSize: number, idx: readonly number[]): Float32Array {
  const out = new Float32Array(idx.length * rowSize);
  idx.forEach((k, i) => out.set(src.subarray(k * rowSize, (k + 1) * rowSize), i * rowSize));
  return out;
}

/**
 * Worker factory (../parallel.ts): the same stage in a training worker. The autoencoder is not
 * needed there (the latents are cached), only the cache, the vocabulary and the model's shapes.
 */
export async function t2iStageForWorker(args: { config: T2IConfig; cacheFile: string }): Promise<Stage<T2IBatch>> {
  const { meta, tensors } = loadCheckpoint(args.cacheFile);
  const cache = readLatentCache(meta, tensors);
  const model = new TextToImage(args.config, buildVocab(vocabTexts(cache)), new Params(), cache.latentScale);
  model.params.freeze(['ae']);
  return t2iStage(model, args.config, cache);
}

/**
 * The autoencoder of an existing text-to-image checkpoint, for a stage 0 that keeps it (`aeFrom`):
 * its `ae.` weights and latent scale. Its AE settings (`autoencoderKey`) must equal `cfg`'s.
 * @throws CheckpointError naming the file when it is no T2I checkpoint or its autoencoder differs
 */
export function autoencoderFrom(file: string, cfg: T2IConfig): { weights: Named; latentScale: number; ref: { file: string; sha256: string } } {
  const { meta, tensors } = loadCheckpoint(file);
  if (meta.kind !== 't2i') throw new CheckpointError(`${file}: not a text-to-image checkpoint (kind '${String(meta.kind)}'); --ae-from takes one written by 'tdr train t2i'`);
  const theirs = parseT2IConfig(meta.config, `${file}: config`);
  const a = JSON.stringify(autoencoderKey(theirs));
  const b = JSON.stringify(autoencoderKey(cfg));
  if (a !== b) throw new CheckpointError(`${file}: its autoencoder was trained with other settings (${a}); this config needs ${b}`);
  const weights: Named = new Map([...tensors].filter(([n]) => n.startsWith('ae.')));
  const latentScale = Number(meta.latentScale);
  if (!(latentScale > 0 && Number.isFinite(latentScale))) throw new CheckpointError(`${file}: latentScale must be a positive number, got ${String(meta.latentScale)}`);
  return { weights, latentScale, ref: { file: portablePath(file), sha256: crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex') } };
}

/**
 * The whole stage 0: AE (resumable; or kept from another T2I checkpoint with `aeFrom`), latent cache,
 * then text encoder + UNet (resumable), in `<runDir>/ae` and `<runDir>/t2i`; returns the trained
 * model (EMA weights) — the caller saves it. `stopAt`: the UNet stage ends at that step of its schedule.
 */
export async function trainTextToImage(
  cfg: T2IConfig,
  runDir: string,
  opts: { quiet?: boolean; maxStepsThisCall?: number; workers?: number; aeFrom?: string; stopAt?: number; onLog?: (stage: 'ae' | 't2i-layout' | 't2i', rec: LogRecord) => void | Promise<void> } = {},
): Promise<{ model: TextToImage | null; ae: TrainResult; layout?: TrainResult; t2i?: TrainResult; aeFrom?: { file: string; sha256: string } }> {
  let latentScale: number;
  let aeWeights: Named;
  let aeResult: TrainResult;
  let aeFrom: { file: string; sha256: string } | undefined;
  if (opts.aeFrom) {
    const kept = autoencoderFrom(opts.aeFrom, cfg);
    ({ latentScale, weights: aeWeights } = kept);
    aeFrom = kept.ref;
    aeResult = { step: cfg.aeTrain.steps, interrupted: false, resumedFrom: cfg.aeTrain.steps, log: [] };
  } else {
    const aeRun = await trainAutoencoder(cfg, path.join(runDir, 'ae'), { quiet: opts.quiet, maxStepsThisCall: opts.maxStepsThisCall, workers: opts.workers, onLog: (r) => opts.onLog?.('ae', r) });
    if (aeRun.result.interrupted) {
      aeRun.params.dispose();
      return { model: null, ae: aeRun.result };
    }
    latentScale = await measureLatentScale(aeRun.ae, cfg);
    aeWeights = aeRun.params.snapshot();
    aeRun.params.dispose();
    aeResult = aeRun.result;
  }

  const dir = path.join(runDir, 't2i');
  fs.mkdirSync(dir, { recursive: true });
  // a cache needs only the AE: build it with a throw-away vocabulary, then the real one from its captions
  const probe = new TextToImage(cfg, buildVocab(['']), new Params(), latentScale);
  probe.params.assign(aeWeights, { source: 'autoencoder run', allowMissing: true, allowExtra: false });
  const cacheFile = path.join(dir, 'latents.tdrc');
  const cache = await latentCache(probe, cfg, cacheFile, { quiet: opts.quiet });
  probe.dispose();

  const model = new TextToImage(cfg, buildVocab(vocabTexts(cache)), new Params(), cache.latentScale);
  model.params.assign(aeWeights, { source: 'autoencoder run', allowMissing: true });
  model.params.freeze(['ae']);
  if (cfg.words && cfg.words.layoutSteps > 0 && !fs.existsSync(path.join(dir, CHECKPOINT_FILE))) {
    // layout warm-up (config words.layoutSteps), before the UNet stage has a checkpoint of its own
    const layoutDir = path.join(runDir, 't2i-layout');
    model.params.freeze(['unet']);
    model.params.unfreeze(['unet.layout']);
    const { batch: _b, ...loop } = cfg.unetTrain;
    const lay = await train(t2iLayoutStage(model, cfg, cache), { ...loop, steps: cfg.words.layoutSteps, warmup: Math.min(loop.warmup, Math.floor(cfg.words.layoutSteps / 10)) }, {
      runDir: layoutDir,
      meta: { stage: 't2i-layout', config: cfg, vocab: model.vocab.toJSON(), latentScale: cache.latentScale },
      label: 't2i-layout',
      quiet: opts.quiet,
      maxStepsThisCall: opts.maxStepsThisCall,
      onLog: (r) => opts.onLog?.('t2i-layout', r),
    });
    model.params.unfreeze(['unet']);
    if (lay.interrupted) {
      model.dispose();
      return { model: null, ae: aeResult, layout: lay };
    }
    loadWeights(path.join(layoutDir, CHECKPOINT_FILE), model.params, { useEma: false }); // the warm-up's own weights: its EMA would lag
  }
  const trainCfg = loopSettings(cfg.unetTrain);
  const t2i = await train(t2iStage(model, cfg, cache), trainCfg, {
    runDir: dir,
    meta: { stage: 't2i', config: cfg, vocab: model.vocab.toJSON(), latentScale: cache.latentScale, ...(aeFrom ? { aeFrom } : {}) },
    label: 't2i',
    quiet: opts.quiet,
    maxStepsThisCall: opts.maxStepsThisCall,
    stopAt: opts.stopAt, // a snapshot of the UNet stage's schedule (tdr train t2i --stop-at)
    onLog: (r) => opts.onLog?.('t2i', r),
    parallel: opts.workers && opts.workers > 1 ? { workers: opts.workers, factory: { module: __filename, fn: 't2iStageForWorker', args: { config: cfg, cacheFile } } } : undefined,
  });
  loadWeights(path.join(dir, CHECKPOINT_FILE), model.params, { useEma: true });
  return { model, ae: aeResult, t2i, aeFrom };
}
