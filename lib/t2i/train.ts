/**
 * Stage 0b (docs/notation.md, "Training stages"): train the text encoder τt and the conditional UNet ε_θ of the small
 * text-to-image model with Eq. (1), on captioned clean AND degraded crops of the training photos,
 * so that degradation words in a caption ("…, hazy") produce the degradation.
 *
 * 1. autoencoder: trained first (stage 0a, ./autoencoder.ts), then frozen; latent scale measured.
 * 2. latent cache: for every training photo, `cropsPerPhoto` crops (imageSize, random position and
 *    flip), each clean and `degradedPerCrop` times degraded (tasks in turn, `taskWeights` times each;
 *    random strength), with
 *    captions "a photo of <caption>[, <phrase>]"; encoded once with E (z·scale). Deterministic.
 * 3. training: batches of cached latents; with probability condDropProb the caption is replaced by
 *    the empty prompt (classifier-free guidance, Ho & Salimans 2021); loss Eq. (1).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { T2IConfig } from './presets';
import { TextToImage } from './model';
import { Params } from '../models/params';
import { buildVocab, PROMPT_TEMPLATE } from '../models/tokenizer';
import { diffusionLossWith, drawDiffusionNoise } from '../models/diffusion';
import { train, Stage, TrainResult, loadWeights, CHECKPOINT_FILE, LogRecord } from '../train/loop';
import { trainAutoencoder, measureLatentScale, autoencoderKey } from './autoencoder';
import { loadPhotos, randomCrop, toBatch } from '../data/patches';
import { listEntries } from '../data/corpus';
import { degrade, taskTurn, Task, DegradeOptions } from '../data/degrade';
import { trainingCaption, DEGRADATION_WORDS } from '../data/captions';
import { RGBImage, clip01 } from '../data/image';
import { saveCheckpoint, loadCheckpoint } from '../util/checkpoint';
import { Rng } from '../util/rng';
import { loopSettings } from '../train/config';

export interface CacheItem {
  photoId: string;
  crop: number;
  task: Task | 'clean';
  caption: string;
  /** the seed of the degradation (or 0 for clean) */
  seed: number;
}

/**
 * The cache's crops as images, regenerated deterministically (no need to store pixels): used to
 * build the latent cache and to find the nearest training crop of a sample.
 */
export async function cacheCrops(cfg: T2IConfig, opts: { cleanOnly?: boolean } = {}): Promise<Array<{ item: CacheItem; image: RGBImage }>> {
  const photos = await loadPhotos('train', cfg.photoShortSide);
  const out: Array<{ item: CacheItem; image: RGBImage }> = [];
  const rng = new Rng(cfg.unetTrain.seed * 7919 + 17);
  let k = 0;
  const turn = taskTurn(cfg.taskWeights);
  for (const p of photos) {
    for (let c = 0; c < cfg.cropsPerPhoto; c++) {
      const img = randomCrop(p.image, cfg.imageSize, rng);
      out.push({ item: { photoId: p.entry.id, crop: c, task: 'clean', caption: trainingCaption(p.entry), seed: 0 }, image: img });
      for (let d = 0; d < cfg.degradedPerCrop; d++) {
        const task = turn[k++ % turn.length];
        const seed = rng.nextUint32();
        if (opts.cleanOnly) continue;
        const r = degrade(img, { task, seed } as DegradeOptions);
        out.push({ item: { photoId: p.entry.id, crop: c, task, caption: trainingCaption(p.entry, r.phrase), seed }, image: clip01(r.image) });
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
}

/** Build (or load from `file`) the latent cache of a trained autoencoder. */
export async function latentCache(model: TextToImage, cfg: T2IConfig, file: string, opts: { quiet?: boolean } = {}): Promise<LatentCache> {
  const signature = latentCacheSignature(cfg);
  if (fs.existsSync(file)) {
    const { meta, tensors } = loadCheckpoint(file);
    if (JSON.stringify(meta.signature) === JSON.stringify(signature)) {
      const z = tensors.get('z')!;
      return { items: meta.items as CacheItem[], z: z.data, shape: z.shape as LatentCache['shape'], latentScale: Number(meta.latentScale) };
    }
    if (!opts.quiet) process.stderr.write(`${file}: built with other cache settings; rebuilding it\n`);
  }
  const crops = await cacheCrops(cfg);
  const s = model.latentSize;
  const c = cfg.autoencoder.latentChannels;
  const z = new Float32Array(crops.length * s * s * c);
  const per = s * s * c;
  for (let i = 0; i < crops.length; i += 16) {
    const part = crops.slice(i, i + 16).map((x) => x.image);
    const zt = tf.tidy(() => model.encodeImages(toBatch(part)));
    z.set(zt.dataSync() as Float32Array, i * per);
    zt.dispose();
    if (!opts.quiet) process.stderr.write(`\rlatent cache ${Math.min(i + 16, crops.length)}/${crops.length}`);
  }
  if (!opts.quiet) process.stderr.write('\n');
  const items = crops.map((x) => x.item);
  const shape: LatentCache['shape'] = [crops.length, s, s, c];
  saveCheckpoint(file, { kind: 'latent-cache', signature, items, latentScale: model.latentScale }, new Map([['z', { shape, data: z }]]));
  return { items, z, shape, latentScale: model.latentScale };
}

/** Every prompt the model should know the tokens of: training captions, validation captions, phrases. */
export function vocabTexts(cache: LatentCache): string[] {
  const val = listEntries('val').map((e) => trainingCaption(e));
  const phrases = DEGRADATION_WORDS.flatMap((w) => [w, `slightly ${w}`, `heavily ${w}`]);
  return [...cache.items.map((i) => i.caption), ...val, ...phrases, PROMPT_TEMPLATE, ''];
}

export interface T2IBatch {
  z: tf.Tensor4D;
  ids: number[][];
  /** Eq. (1)'s t and ε, drawn in getBatch (so a batch can be split across workers) */
  noise: { t: number[]; eps: Float32Array };
}

export function t2iStage(model: TextToImage, cfg: T2IConfig, cache: LatentCache): Stage<T2IBatch> {
  const [n, h, w, c] = cache.shape;
  const per = h * w * c;
  const empty = model.tokenize([''])[0];
  const ids = model.tokenize(cache.items.map((i) => i.caption));
  return {
    params: model.params,
    getBatch(_step, rng) {
      const b = cfg.unetTrain.batch;
      const data = new Float32Array(b * per);
      const batchIds: number[][] = [];
      for (let i = 0; i < b; i++) {
        const k = rng.int(n);
        data.set(cache.z.subarray(k * per, (k + 1) * per), i * per);
        batchIds.push(rng.random() < cfg.condDropProb ? empty : ids[k]); // CFG: drop the condition
      }
      const noise = drawDiffusionNoise(rng, [b, h, w, c], cfg.numTrainSteps, cfg.offsetNoise);
      return { z: tf.tensor4d(data, [b, h, w, c]), ids: batchIds, noise };
    },
    loss(batch) {
      const ctx = model.text.encode(batch.ids).context;
      const l = diffusionLossWith(model.unet, batch.z, ctx, batch.noise, { scheduler: model.scheduler }); // Eq. (1)
      return { total: l, parts: { l_eps: l } };
    },
    disposeBatch(b) {
      b.z.dispose();
    },
    sliceBatch(b, start, end) {
      return {
        z: b.z.slice([start], [end - start]),
        ids: b.ids.slice(start, end),
        noise: { t: b.noise.t.slice(start, end), eps: b.noise.eps.slice(start * per, end * per) },
      };
    },
    batchSize(b) {
      return b.ids.length;
    },
  };
}

/**
 * Worker factory (../parallel.ts): the same stage in a training worker. The autoencoder is not
 * needed there (the latents are cached), only the cache, the vocabulary and the model's shapes.
 */
export async function t2iStageForWorker(args: { config: T2IConfig; cacheFile: string }): Promise<Stage<T2IBatch>> {
  const { meta, tensors } = loadCheckpoint(args.cacheFile);
  const z = tensors.get('z')!;
  const cache: LatentCache = { items: meta.items as CacheItem[], z: z.data, shape: z.shape as LatentCache['shape'], latentScale: Number(meta.latentScale) };
  const model = new TextToImage(args.config, buildVocab(vocabTexts(cache)), new Params(), cache.latentScale);
  model.params.freeze(['ae']);
  return t2iStage(model, args.config, cache);
}

/**
 * The whole stage 0: AE (resumable), latent cache, then text encoder + UNet (resumable), in
 * `<runDir>/ae` and `<runDir>/t2i`; returns the trained model (EMA weights) — the caller saves it.
 */
export async function trainTextToImage(
  cfg: T2IConfig,
  runDir: string,
  opts: { quiet?: boolean; maxStepsThisCall?: number; workers?: number; onLog?: (stage: 'ae' | 't2i', rec: LogRecord) => void | Promise<void> } = {},
): Promise<{ model: TextToImage | null; ae: TrainResult; t2i?: TrainResult }> {
  const aeRun = await trainAutoencoder(cfg, path.join(runDir, 'ae'), { quiet: opts.quiet, maxStepsThisCall: opts.maxStepsThisCall, workers: opts.workers, onLog: (r) => opts.onLog?.('ae', r) });
  if (aeRun.result.interrupted) {
    aeRun.params.dispose();
    return { model: null, ae: aeRun.result };
  }
  const latentScale = await measureLatentScale(aeRun.ae, cfg);
  const aeWeights = aeRun.params.snapshot();
  aeRun.params.dispose();

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
  const trainCfg = loopSettings(cfg.unetTrain);
  const t2i = await train(t2iStage(model, cfg, cache), trainCfg, {
    runDir: dir,
    meta: { stage: 't2i', config: cfg, vocab: model.vocab.toJSON(), latentScale: cache.latentScale },
    label: 't2i',
    quiet: opts.quiet,
    maxStepsThisCall: opts.maxStepsThisCall,
    onLog: (r) => opts.onLog?.('t2i', r),
    parallel: opts.workers && opts.workers > 1 ? { workers: opts.workers, factory: { module: __filename, fn: 't2iStageForWorker', args: { config: cfg, cacheFile } } } : undefined,
  });
  loadWeights(path.join(dir, CHECKPOINT_FILE), model.params, { useEma: true });
  return { model, ae: aeRun.result, t2i };
}
