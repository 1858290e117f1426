/**
 * Stage 1 (paper Sec. 3.2 "Model Optimization"): train M_i2t and the k/v copies with
 * Eq. (1) on clean AND degraded crops of the training photos, each crop reconstructing itself from
 * its own E_txt. The T2I model (text encoder, UNet, autoencoder) and τi stay frozen.
 *
 * 1. feature cache (`featureCache`, shared with stage 2): for every training photo `cropsPerPhoto`
 *    random crops at the T2I's imageSize from the photo at its photoShortSide (or, with `data.cropScales`,
 *    so many crops from the photo at each listed short side), and `colorJitter` colour-jittered copies of
 *    each (each a crop of its own); each crop clean and `degradedPerCrop` times degraded (the
 *    five families in turn, random strength, seeded); per crop τi features (global + pooled tokens)
 *    and the scaled latents z = E(X)·scale, computed once (everything they come from is frozen).
 * 2. batches: uniform over all cached crops; Eq. (1)'s t and ε are drawn in getBatch, so a batch can
 *    be split across data-parallel workers (`i2tStageForWorker`).
 * 3. loss: ‖ε − ε_θ(z_t, t, τt("a photo of a S", S := M_i2t(τi(X))); k/v copies)‖² (mean).
 *
 * Runs: <runs>/<preset>/i2t/{checkpoint.tdrc, log.jsonl, config.json, features.tdrc}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GuidanceConfig } from './config';
import { TextToImage } from '../t2i/model';
import { featureDim, featureTokens } from '../models/word_mapper';
import { diffusionLossWith, drawDiffusionNoise } from '../models/diffusion';
import { train, Stage, TrainResult, loadWeights, CHECKPOINT_FILE, LogRecord } from '../train/loop';
import { saveCheckpoint, loadCheckpoint, CheckpointError } from '../util/checkpoint';
import { loadPhotos, randomCrop, toBatch } from '../data/patches';
import { degrade, taskTurn, Task, DegradeOptions } from '../data/degrade';
import { cropScalesOf } from '../t2i/presets';
import { clip01 } from '../data/image';
import { colorJitter } from '../data/color_jitter';
import { Rng } from '../util/rng';
import { GuidanceModel, T2IReference, t2iWeightsHash, wordsToContext, portablePath } from './model';
import { mapperFeatures } from './m_i2t';
import { loopSettings } from '../train/config';
import { UserError } from '../util/errors';

export interface FeatureCacheItem {
  photoId: string;
  crop: number;
  task: Task | 'clean';
  /** degradation seed (0 for clean) */
  seed: number;
  /** index of the clean version of the same crop */
  clean: number;
  /** a colour-jittered copy (data.colorJitter): the seed of its colour transform */
  jitter?: number;
}

/** τi features and latents of every training crop (clean and degraded). Row-major Float32Arrays. */
export interface FeatureCache {
  items: FeatureCacheItem[];
  /** [M,dim] */
  global: Float32Array;
  /** [M,T,dim] pooled tokens */
  tokens: Float32Array;
  /** [M,h,w,C] scaled latents */
  z: Float32Array;
  dim: number;
  numTokens: number;
  zShape: [number, number, number];
}

/** What a cache depends on; a cache file with another signature is rebuilt. */
function cacheSignature(cfg: GuidanceConfig, t2iSha: string): Record<string, unknown> {
  return { t2i: t2iSha, encoder: cfg.encoder, tokenPool: cfg.mapper.tokenPool, ...(cfg.mapper.color ? { color: true } : {}), data: { ...cfg.data, identityProb: undefined, colorJitter: cfg.data.colorJitter || undefined } }; // colorJitter 0 leaves earlier caches valid
}

/** @throws UserError when the config asks layoutLoss > 0 of a text-to-image model without a layout head */
export function checkLayoutLoss(cfg: GuidanceConfig, t2i: TextToImage, t2iLabel = 'the text-to-image model'): void {
  if (cfg.layoutLoss > 0 && !t2i.unet.layout) throw new UserError(`guidance config: layoutLoss ${cfg.layoutLoss} needs a text-to-image model with a layout head (unet.layout); ${t2iLabel} has none — set layoutLoss to 0`);
}

/**
 * Eq. (1)'s loss `l` plus, when the config's `layoutLoss` > 0, the words' layout objective of the
 * text-to-image model (`UNet.layoutLoss`, through the guidance's k/v copy of the layout attention): the
 * layout map of the context regresses `z` — the latents the diffusion loss reconstructs — pooled to the
 * layout grid. Stage 1: the crop's own; stage 2: the clean crop's.
 * @throws UserError when layoutLoss > 0 and the text-to-image model has no layout head
 */
export function withLayoutLoss(cfg: GuidanceConfig, model: GuidanceModel, t2i: TextToImage, ctx: tf.Tensor3D, z: tf.Tensor4D, l: tf.Scalar): { total: tf.Scalar; parts: Record<string, tf.Scalar> } {
  if (!(cfg.layoutLoss > 0)) return { total: l, parts: { l_eps: l } };
  checkLayoutLoss(cfg, t2i);
  const lay = t2i.unet.layoutLoss(ctx, z, model.kv.map.get(t2i.unet.layout!.attn.name));
  return { total: tf.add(l, tf.mul(lay, cfg.layoutLoss)) as tf.Scalar, parts: { l_eps: l, l_layout: lay } };
}

export const FEATURE_CACHE_FILE = 'features.tdrc';

/** The training crops (clean + degraded, deterministic from cfg.data.seed) as images. */
export async function guidanceCrops(cfg: GuidanceConfig, t2i: TextToImage): Promise<Array<{ item: FeatureCacheItem; image: import('../data/image').RGBImage }>> {
  const rng = new Rng(cfg.data.seed * 7919 + 5);
  const out: Array<{ item: FeatureCacheItem; image: import('../data/image').RGBImage }> = [];
  let k = 0;
  const turn = taskTurn(cfg.data.taskWeights);
  // without data.cropScales: cropsPerPhoto crops at photoShortSide, the same draws as before the option existed
  const scales = cropScalesOf({ cropScales: cfg.data.cropScales, photoShortSide: t2i.cfg.photoShortSide, cropsPerPhoto: cfg.data.cropsPerPhoto });
  scales.forEach((sc, i) => {
    if (sc.shortSide < t2i.cfg.imageSize) throw new UserError(`guidance config: data.cropScales[${i}].shortSide ${sc.shortSide} must be ≥ the text-to-image model's imageSize ${t2i.cfg.imageSize}`);
  });
  let first = 0; // the scale's first crop number: crop numbers stay unique per photo across scales
  for (const sc of scales) {
    const photos = await loadPhotos('train', sc.shortSide, cfg.data.maxPhotos);
    for (const p of photos) {
      for (let c = first; c < first + sc.crops; c++) {
        const crop = randomCrop(p.image, t2i.cfg.imageSize, rng);
        for (let j = 0; j <= cfg.data.colorJitter; j++) {
          const jitter = j === 0 ? undefined : rng.nextUint32(); // copy 0 is the crop itself (no draw: configs without jitter keep their crops)
          const img = jitter === undefined ? crop : colorJitter(crop, jitter);
          const cleanIdx = out.length;
          out.push({ item: { photoId: p.entry.id, crop: c, task: 'clean', seed: 0, clean: cleanIdx, ...(jitter !== undefined ? { jitter } : {}) }, image: img });
          for (let d = 0; d < cfg.data.degradedPerCrop; d++) {
            const task = turn[k++ % turn.length];
            const seed = rng.nextUint32();
            const r = degrade(img, { task, seed } as DegradeOptions);
            out.push({ item: { photoId: p.entry.id, crop: c, task, seed, clean: cleanIdx, ...(jitter !== undefined ? { jitter } : {}) }, image: clip01(r.image) });
          }
        }
      }
    }
    first += sc.crops;
  }
  return out;
}

/** Build (or load from `file` when its signature matches) the feature + latent cache. */
export async function featureCache(cfg: GuidanceConfig, t2i: TextToImage, file: string, opts: { quiet?: boolean; t2iSha?: string } = {}): Promise<FeatureCache> {
  const sig = cacheSignature(cfg, opts.t2iSha ?? t2iWeightsHash(t2i));
  if (fs.existsSync(file)) {
    const c = readFeatureCache(file);
    if (JSON.stringify(c.signature) === JSON.stringify(JSON.parse(JSON.stringify(sig)))) return c.cache;
    if (!opts.quiet) process.stderr.write(`${file}: built for another T2I model or data config; rebuilding\n`);
  }
  const crops = await guidanceCrops(cfg, t2i);
  const dim = featureDim(cfg.encoder, cfg.mapper);
  const numTokens = featureTokens(cfg.encoder, cfg.mapper);
  const s = t2i.latentSize;
  const zShape: [number, number, number] = [s, s, t2i.cfg.autoencoder.latentChannels];
  const per = s * s * zShape[2];
  const m = crops.length;
  const global = new Float32Array(m * dim);
  const tokens = new Float32Array(m * numTokens * dim);
  const z = new Float32Array(m * per);
  for (let i = 0; i < m; i += 16) {
    const part = crops.slice(i, i + 16).map((x) => x.image);
    const x = toBatch(part);
    const f = await mapperFeatures(x, cfg.encoder, cfg.mapper);
    const zt = t2i.encodeImages(x);
    global.set(f.global.dataSync() as Float32Array, i * dim);
    tokens.set(f.tokens.dataSync() as Float32Array, i * numTokens * dim);
    z.set(zt.dataSync() as Float32Array, i * per);
    tf.dispose([x, f.global, f.tokens, zt]);
    if (!opts.quiet) process.stderr.write(`\rguidance feature cache ${Math.min(i + 16, m)}/${m}`);
  }
  if (!opts.quiet) process.stderr.write('\n');
  const items = crops.map((c) => c.item);
  saveCheckpoint(
    file,
    { kind: 'guidance-cache', signature: sig, items, dim, numTokens, zShape },
    new Map([
      ['global', { shape: [m, dim], data: global }],
      ['tokens', { shape: [m, numTokens, dim], data: tokens }],
      ['z', { shape: [m, ...zShape], data: z }],
    ]),
  );
  return { items, global, tokens, z, dim, numTokens, zShape };
}

/** Read a cache file written by `featureCache`. */
export function readFeatureCache(file: string): { cache: FeatureCache; signature: unknown } {
  const { meta, tensors } = loadCheckpoint(file);
  if (meta.kind !== 'guidance-cache') throw new CheckpointError(`${file}: not a guidance feature cache`);
  const get = (n: string) => {
    const t = tensors.get(n);
    if (!t) throw new CheckpointError(`${file}: missing tensor '${n}'`);
    return t.data;
  };
  return {
    cache: { items: meta.items as FeatureCacheItem[], global: get('global'), tokens: get('tokens'), z: get('z'), dim: Number(meta.dim), numTokens: Number(meta.numTokens), zShape: meta.zShape as [number, number, number] },
    signature: meta.signature,
  };
}

/** Rows `idx` of a row-major [M,...] array, as one Float32Array. */
export function gatherRows(src: Float32Array, rowSize: number, idx: readonly number[]): Float32Array {
  const out = new Float32Array(idx.length * rowSize);
  idx.forEach((k, i) => out.set(src.subarray(k * rowSize, (k + 1) * rowSize), i * rowSize));
  return out;
}

export interface I2TBatch {
  global: tf.Tensor2D;
  tokens: tf.Tensor3D;
  z: tf.Tensor4D;
  noise: { t: number[]; eps: Float32Array };
}

/** Stage 1 as a `Stage` of the shared loop; `model.setStage('i2t')` freezes M_clean. */
export function i2tStage(model: GuidanceModel, t2i: TextToImage, cfg: GuidanceConfig, cache: FeatureCache): Stage<I2TBatch> {
  model.setStage('i2t');
  const m = cache.items.length;
  const { dim, numTokens, zShape } = cache;
  const per = zShape[0] * zShape[1] * zShape[2];
  return {
    params: model.params,
    getBatch(_step, rng) {
      const b = cfg.i2tTrain.batch;
      const idx = Array.from({ length: b }, () => rng.int(m)); // clean and degraded crops alike
      const noise = drawDiffusionNoise(rng, [b, ...zShape], t2i.cfg.numTrainSteps, t2i.cfg.offsetNoise);
      return {
        global: tf.tensor2d(gatherRows(cache.global, dim, idx), [b, dim]),
        tokens: tf.tensor3d(gatherRows(cache.tokens, numTokens * dim, idx), [b, numTokens, dim]),
        z: tf.tensor4d(gatherRows(cache.z, per, idx), [b, ...zShape]),
        noise,
      };
    },
    loss(batch) {
      const words = model.mapper.call({ global: batch.global, tokens: batch.tokens }); // E_txt, Eq. (2)
      const ctx = wordsToContext(t2i, words);
      const l = diffusionLossWith(t2i.unet, batch.z, ctx, batch.noise, { scheduler: t2i.scheduler, kvOverride: model.kv.map }); // Eq. (1)
      return withLayoutLoss(cfg, model, t2i, ctx, batch.z, l); // + the words' layout objective (config layoutLoss)
    },
    disposeBatch(b) {
      tf.dispose([b.global, b.tokens, b.z]);
    },
    sliceBatch(b, start, end) {
      const n = end - start;
      return {
        global: b.global.slice([start, 0], [n, dim]),
        tokens: b.tokens.slice([start, 0, 0], [n, numTokens, dim]),
        z: b.z.slice([start, 0, 0, 0], [n, ...zShape]),
        noise: { t: b.noise.t.slice(start, end), eps: b.noise.eps.slice(start * per, end * per) },
      };
    },
    batchSize(b) {
      return b.noise.t.length;
    },
  };
}

/**
 * M_i2t's start when `initFromT2I`: the text-to-image model's own image-to-words mapper (trained with
 * its UNet as a diffusion autoencoder through the text space, lib/t2i). A resumed run then loads its
 * own checkpoint over it.
 * @throws UserError when the T2I has no mapper or a mapper of another shape
 */
export function initMapperFromT2I(model: GuidanceModel, t2i: TextToImage, t2iLabel: string): void {
  const src = t2i.words;
  const w = t2i.cfg.words;
  if (!src || !w) throw new UserError(`${t2iLabel}: this text-to-image model has no image-to-words mapper (no \`words\` in its config), but the guidance config asks initFromT2I; train a T2I with words or set initFromT2I: false`);
  const a = model.cfg;
  const diff = (['hidden', 'layers', 'tokenPool', 'spatial', 'color', 'colorPath', 'poolFirst'] as const).filter((k) => a.mapper[k] !== w.mapper[k]);
  const all: string[] = [...diff];
  if (a.encoder.cut !== w.encoder.cut || a.encoder.range !== w.encoder.range) all.push('encoder');
  if (all.length) throw new UserError(`${t2iLabel}: its mapper differs from the guidance config's in ${all.join(', ')} (T2I: ${JSON.stringify({ encoder: w.encoder, ...w.mapper })}); initFromT2I needs them equal`);
  model.mapper.initFrom(src);
}

/** Worker factory (../parallel.ts): the same stage 1 in a training worker. */
export async function i2tStageForWorker(args: { config: GuidanceConfig; t2iFile: string; cacheFile: string }): Promise<Stage<I2TBatch>> {
  const t2i = TextToImage.load(args.t2iFile);
  const model = new GuidanceModel(args.config, t2i);
  return i2tStage(model, t2i, args.config, readFeatureCache(args.cacheFile).cache);
}

export interface GuidanceTrainOptions {
  /** the T2I checkpoint file `t2i` was loaded from (stored as reference; needed for workers) */
  t2iFile?: string;
  quiet?: boolean;
  maxStepsThisCall?: number;
  workers?: number;
  onLog?: (rec: LogRecord) => void | Promise<void>;
  /** stage 1: the command that trains this run (`tdr train i2t …`), kept in its run checkpoint so that a stage 2
   * trained `--from` that checkpoint can record the whole chain (`stageOneRebuild`) */
  rebuild?: string;
}

/** The T2I reference of a run: path + weight hash. */
export function t2iReference(t2i: TextToImage, t2iFile?: string): T2IReference {
  return { path: t2iFile ? portablePath(t2iFile) : '(in memory)', sha256: t2iWeightsHash(t2i) };
}

/** Refuse to resume a run that was started on another T2I model. */
export function checkRunT2I(dir: string, ref: T2IReference): void {
  const f = path.join(dir, CHECKPOINT_FILE);
  if (!fs.existsSync(f)) return;
  const { meta } = loadCheckpoint(f);
  const was = (meta.t2i as T2IReference | undefined)?.sha256;
  if (was && was !== ref.sha256) {
    throw new CheckpointError(`${f}: this run was trained on another text-to-image model (${(meta.t2i as T2IReference).path}, sha256 ${was.slice(0, 12)}…; given ${ref.path}, sha256 ${ref.sha256.slice(0, 12)}…); use another --runs folder or the original T2I checkpoint`);
  }
}

/**
 * Stage 1 in `<runDir>/i2t` (resumable). Returns the guidance model with the EMA weights of M_i2t
 * and the k/v copies (M_clean at init) once the run is complete, else `model: null`.
 * @param runDir <runs>/<preset>
 */
export async function trainImageToText(cfg: GuidanceConfig, t2i: TextToImage, runDir: string, opts: GuidanceTrainOptions = {}): Promise<{ model: GuidanceModel | null; result: TrainResult; cacheFile: string }> {
  const dir = path.join(runDir, 'i2t');
  fs.mkdirSync(dir, { recursive: true });
  const ref = t2iReference(t2i, opts.t2iFile);
  checkRunT2I(dir, ref);
  checkLayoutLoss(cfg, t2i, opts.t2iFile);
  const cacheFile = path.join(dir, FEATURE_CACHE_FILE);
  const cache = await featureCache(cfg, t2i, cacheFile, { quiet: opts.quiet, t2iSha: ref.sha256 });
  const model = new GuidanceModel(cfg, t2i, ref);
  if (cfg.initFromT2I) initMapperFromT2I(model, t2i, opts.t2iFile ?? '(in-memory text-to-image model)');
  const trainCfg = loopSettings(cfg.i2tTrain);
  const workers = opts.workers ?? 1;
  if (workers > 1 && !opts.t2iFile) throw new Error('trainImageToText: data-parallel workers need opts.t2iFile (the workers load the T2I model from it)');
  const result = await train(i2tStage(model, t2i, cfg, cache), trainCfg, {
    runDir: dir,
    meta: { stage: 'i2t', config: cfg, t2i: ref, ...(opts.rebuild ? { rebuild: opts.rebuild } : {}) },
    label: 'i2t',
    quiet: opts.quiet,
    maxStepsThisCall: opts.maxStepsThisCall,
    onLog: opts.onLog,
    parallel: workers > 1 ? { workers, factory: { module: __filename, fn: 'i2tStageForWorker', args: { config: cfg, t2iFile: path.resolve(opts.t2iFile!), cacheFile } } } : undefined,
  });
  if (result.interrupted) {
    model.dispose();
    return { model: null, result, cacheFile };
  }
  loadWeights(path.join(dir, CHECKPOINT_FILE), model.params, { useEma: true });
  model.trainedStages = ['i2t'];
  return { model, result, cacheFile };
}
