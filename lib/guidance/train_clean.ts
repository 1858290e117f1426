/**
 * Stage 2 (paper Sec. 3.2 "Model Optimization"): train M_clean with Eq. (1) on
 * (degraded, clean) pairs of all tasks at once: the diffusion model must reconstruct the CLEAN crop's
 * latents from M_clean(M_i2t(τi(X_degraded))). M_i2t, the k/v copies, the T2I model and τi are frozen.
 *
 * The official stage-2 script built its optimiser over the frozen M_i2t (`mapper.parameters()`), so
 * M_clean never changed (scripts/train/main_train_tr_mapping.py `main()`). Here the trainable set is `mclean.*` only
 * (`GuidanceModel.setStage('clean')`), and test/guidance/stages.test.ts checks which weights move.
 *
 * Since M_i2t is frozen, E_txt of every cached crop is computed once when the stage is built.
 * Pairs: a degraded crop and its clean crop; with probability `data.identityProb` a (clean, clean)
 * pair instead (M_clean should keep clean words; the paper has no such term, its default is 0).
 *
 * Runs: <runs>/<preset>/clean/{checkpoint.tdrc, log.jsonl, config.json}; the features come from the
 * stage-1 cache <runs>/<preset>/i2t/features.tdrc.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { GuidanceConfig } from './config';
import { TextToImage } from '../t2i/model';
import { diffusionLossWith, drawDiffusionNoise } from '../models/diffusion';
import { train, Stage, TrainResult, loadWeights, CHECKPOINT_FILE } from '../train/loop';
import { loadCheckpoint, CheckpointError } from '../util/checkpoint';
import { GuidanceModel, wordsToContext } from './model';
import { FeatureCache, gatherRows, featureCache, readFeatureCache, FEATURE_CACHE_FILE, GuidanceTrainOptions, t2iReference, checkRunT2I, checkLayoutLoss, withLayoutLoss } from './train_i2t';
import { UserError } from '../util/errors';
import { loopSettings } from '../train/config';

export interface CleanBatch {
  /** E_txt of the inputs (degraded crops) [B,N,D] */
  e: tf.Tensor3D;
  /** latents of the clean crops [B,h,w,C] */
  z: tf.Tensor4D;
  noise: { t: number[]; eps: Float32Array };
  /** cache indices of the inputs (for inspection) */
  inputs: number[];
}

/** E_txt = M_i2t(τi(X)) of every cached crop: [M,N,D] row-major. */
export function cachedWords(model: GuidanceModel, cache: FeatureCache): Float32Array {
  const m = cache.items.length;
  const { dim, numTokens } = cache;
  const nd = model.numWords * model.mapper.width;
  const out = new Float32Array(m * nd);
  for (let i = 0; i < m; i += 32) {
    const idx = Array.from({ length: Math.min(32, m - i) }, (_, j) => i + j);
    const e = tf.tidy(() => {
      const global = tf.tensor2d(gatherRows(cache.global, dim, idx), [idx.length, dim]);
      const tokens = tf.tensor3d(gatherRows(cache.tokens, numTokens * dim, idx), [idx.length, numTokens, dim]);
      return model.mapper.call({ global, tokens });
    });
    out.set(e.dataSync() as Float32Array, i * nd);
    e.dispose();
  }
  return out;
}

/** Stage 2 as a `Stage` of the shared loop; `model.setStage('clean')` freezes M_i2t and the k/v copies. */
export function cleanStage(model: GuidanceModel, t2i: TextToImage, cfg: GuidanceConfig, cache: FeatureCache): Stage<CleanBatch> {
  model.setStage('clean');
  const words = cachedWords(model, cache);
  const n = model.numWords;
  const d = model.mapper.width;
  const { zShape } = cache;
  const per = zShape[0] * zShape[1] * zShape[2];
  const degraded = cache.items.map((it, i) => (it.task === 'clean' ? -1 : i)).filter((i) => i >= 0);
  const clean = cache.items.map((it, i) => (it.task === 'clean' ? i : -1)).filter((i) => i >= 0);
  if (degraded.length === 0) throw new Error('cleanStage: the cache holds no degraded crops');
  return {
    params: model.params,
    getBatch(_step, rng) {
      const b = cfg.cleanTrain.batch;
      const inputs: number[] = [];
      for (let i = 0; i < b; i++) inputs.push(rng.random() < cfg.data.identityProb ? clean[rng.int(clean.length)] : degraded[rng.int(degraded.length)]);
      const targets = inputs.map((k) => cache.items[k].clean); // Eq. (1) against the CLEAN crop
      const noise = drawDiffusionNoise(rng, [b, ...zShape], t2i.cfg.numTrainSteps, t2i.cfg.offsetNoise);
      return {
        e: tf.tensor3d(gatherRows(words, n * d, inputs), [b, n, d]),
        z: tf.tensor4d(gatherRows(cache.z, per, targets), [b, ...zShape]),
        noise,
        inputs,
      };
    },
    loss(batch) {
      const e2 = model.clean.call(batch.e); // E'_txt, Eq. (3)
      const ctx = wordsToContext(t2i, e2);
      const l = diffusionLossWith(t2i.unet, batch.z, ctx, batch.noise, { scheduler: t2i.scheduler, kvOverride: model.kv.map }); // Eq. (1)
      return withLayoutLoss(cfg, model, t2i, ctx, batch.z, l); // + the layout of E'_txt regresses the CLEAN crop's (config layoutLoss)
    },
    disposeBatch(b) {
      tf.dispose([b.e, b.z]);
    },
    sliceBatch(b, start, end) {
      const k = end - start;
      return {
        e: b.e.slice([start, 0, 0], [k, n, d]),
        z: b.z.slice([start, 0, 0, 0], [k, ...zShape]),
        noise: { t: b.noise.t.slice(start, end), eps: b.noise.eps.slice(start * per, end * per) },
        inputs: b.inputs.slice(start, end),
      };
    },
    batchSize(b) {
      return b.inputs.length;
    },
  };
}

/** Worker factory: stage 2 in a training worker (stage-1 weights from `i2tFile`). */
export async function cleanStageForWorker(args: { config: GuidanceConfig; t2iFile: string; cacheFile: string; i2tFile: string }): Promise<Stage<CleanBatch>> {
  const t2i = TextToImage.load(args.t2iFile);
  const model = new GuidanceModel(args.config, t2i);
  loadStageOneWeights(model, args.i2tFile);
  return cleanStage(model, t2i, args.config, readFeatureCache(args.cacheFile).cache);
}

/**
 * Put trained M_i2t + k/v weights into `model`, from a stage-1 run checkpoint (EMA weights) or a
 * guidance checkpoint. M_clean keeps its initial values.
 */
export function loadStageOneWeights(model: GuidanceModel, file: string, loaded = loadCheckpoint(file)): void {
  const { meta } = loaded;
  if (meta.kind === 'guidance') {
    const h = GuidanceModel.readHeader(file, loaded);
    if (h.t2i.sha256 !== model.t2iRef.sha256) {
      throw new CheckpointError(`${file}: its M_i2t was trained on the text-to-image model ${h.t2i.path} (weights sha256 ${h.t2i.sha256.slice(0, 12)}…), not on ${model.t2iRef.path} (${model.t2iRef.sha256.slice(0, 12)}…)`);
    }
  } else if (meta.stage !== 'i2t') {
    throw new CheckpointError(`${file}: not a stage-1 (i2t) run checkpoint (stage '${String(meta.stage)}')`);
  }
  // M_i2t and the k/v copies only: M_clean keeps its init (a stage-1 run holds an untrained copy,
  // possibly of another M_clean variant than this config's; a guidance checkpoint holds a trained one)
  loadWeights(file, model.params, { useEma: true, only: GuidanceModel.trainablePrefixes('i2t'), loaded });
}

/**
 * Stage 2 in `<runDir>/clean` (resumable), after stage 1 in `<runDir>/i2t` (or `opts.i2tFile`).
 * Returns the full guidance model (EMA weights of M_clean) once complete, else `model: null`.
 */
export async function trainCleanMapper(cfg: GuidanceConfig, t2i: TextToImage, runDir: string, opts: GuidanceTrainOptions & { i2tFile?: string } = {}): Promise<{ model: GuidanceModel | null; result: TrainResult }> {
  const dir = path.join(runDir, 'clean');
  const i2tFile = opts.i2tFile ?? path.join(runDir, 'i2t', CHECKPOINT_FILE);
  if (!fs.existsSync(i2tFile)) throw new UserError(`${i2tFile}: no stage-1 checkpoint; run 'tdr train i2t --preset ${cfg.preset}' first, or give a trained stage 1 with --from FILE`);
  let stageOne: ReturnType<typeof loadCheckpoint> | undefined = loadCheckpoint(i2tFile); // read once: the step check here, the weights below
  const { meta } = stageOne;
  if (meta.kind === 'train-state' && Number(meta.step) < cfg.i2tTrain.steps) {
    throw new UserError(`${i2tFile}: stage 1 stopped at step ${String(meta.step)}/${cfg.i2tTrain.steps}; finish it with 'tdr train i2t --preset ${cfg.preset}' first`);
  }
  fs.mkdirSync(dir, { recursive: true });
  const ref = t2iReference(t2i, opts.t2iFile);
  checkRunT2I(dir, ref);
  checkLayoutLoss(cfg, t2i, opts.t2iFile);
  const cacheFile = path.join(runDir, 'i2t', FEATURE_CACHE_FILE);
  const cache = await featureCache(cfg, t2i, cacheFile, { quiet: opts.quiet, t2iSha: ref.sha256 });
  const model = new GuidanceModel(cfg, t2i, ref);
  loadStageOneWeights(model, i2tFile, stageOne);
  stageOne = undefined; // not kept through training (a run checkpoint holds Adam moments too)
  const trainCfg = loopSettings(cfg.cleanTrain);
  const workers = opts.workers ?? 1;
  if (workers > 1 && !opts.t2iFile) throw new Error('trainCleanMapper: data-parallel workers need opts.t2iFile');
  const result = await train(cleanStage(model, t2i, cfg, cache), trainCfg, {
    runDir: dir,
    meta: { stage: 'clean', config: cfg, t2i: ref },
    label: 'clean',
    quiet: opts.quiet,
    maxStepsThisCall: opts.maxStepsThisCall,
    onLog: opts.onLog,
    parallel: workers > 1 ? { workers, factory: { module: __filename, fn: 'cleanStageForWorker', args: { config: cfg, t2iFile: path.resolve(opts.t2iFile!), cacheFile, i2tFile: path.resolve(i2tFile) } } } : undefined,
  });
  if (result.interrupted) {
    model.dispose();
    return { model: null, result };
  }
  loadWeights(path.join(dir, CHECKPOINT_FILE), model.params, { useEma: true });
  model.trainedStages = ['i2t', 'clean'];
  return { model, result };
}
