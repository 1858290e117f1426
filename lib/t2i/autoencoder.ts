/**
 * Stage 0a (docs/notation.md, "Training stages"): train the autoencoder E/D on corpus crops, clean and degraded, so that the
 * latent space can represent noise, rain streaks and haze too (otherwise "…, noisy" could never be
 * generated). Loss: L1 reconstruction + a small latent L2 penalty. After training, the latent scale
 * (1/std of z over training crops, SD's 0.18215) is measured and stored with the weights.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Params } from '../models/params';
import { Autoencoder } from '../models/autoencoder';
import { T2IConfig } from './presets';
import { withoutBookkeeping, train, Stage, TrainResult, loadWeights, CHECKPOINT_FILE } from '../train/loop';
import { loadPhotos, randomCrop, centerCrop, toBatch, fromBatch, LoadedPhoto } from '../data/patches';
import { degrade, TASKS, DegradeOptions } from '../data/degrade';
import { psnr } from '../metrics/metrics';
import { clip01 } from '../data/image';
import { Rng } from '../util/rng';
import { loopSettings } from '../train/config';

export interface AeBatch {
  x: tf.Tensor4D;
}

/** A training crop: photo, scale and position from `rng`; degraded with probability `degradeProb`. */
export function aeCrop(photosByScale: LoadedPhoto[][], size: number, degradeProb: number, rng: Rng) {
  const photos = rng.choice(photosByScale);
  const img = randomCrop(rng.choice(photos).image, size, rng);
  if (rng.random() >= degradeProb) return img;
  const task = rng.choice(TASKS);
  return clip01(degrade(img, { task, seed: rng.nextUint32() } as DegradeOptions).image);
}

export function autoencoderStage(cfg: T2IConfig, params: Params, ae: Autoencoder, photosByScale: LoadedPhoto[][]): Stage<AeBatch> {
  return {
    params,
    getBatch(_step, rng) {
      const crops = Array.from({ length: cfg.aeTrain.batch }, () => aeCrop(photosByScale, cfg.aeCrop, cfg.aeDegradeProb, rng));
      return { x: toBatch(crops) };
    },
    loss(b) {
      return ae.loss(b.x, { hfWeight: cfg.aeHfWeight });
    },
    disposeBatch(b) {
      b.x.dispose();
    },
    sliceBatch(b, start, end) {
      return { x: b.x.slice([start], [end - start]) };
    },
    batchSize(b) {
      return b.x.shape[0];
    },
  };
}

/** Worker factory (./../parallel.ts): the same stage, built in a training worker thread. */
export async function autoencoderStageForWorker(args: { config: T2IConfig }): Promise<Stage<AeBatch>> {
  const { params, ae } = buildAutoencoder(args.config);
  const photosByScale = await Promise.all(args.config.aeScales.map((s) => loadPhotos('train', s)));
  return autoencoderStage(args.config, params, ae, photosByScale);
}

/**
 * Everything the trained autoencoder depends on (its run resumes, and a T2I latent cache is reused, only
 * when this is equal) — not the text/UNet parts of the preset, which may change meanwhile.
 */
export function autoencoderKey(cfg: T2IConfig): unknown {
  return withoutBookkeeping({ autoencoder: cfg.autoencoder, aeCrop: cfg.aeCrop, aeScales: cfg.aeScales, aeDegradeProb: cfg.aeDegradeProb, aeHfWeight: cfg.aeHfWeight ?? 0, aeTrain: cfg.aeTrain });
}

/** Build the autoencoder of a config (parameters under `ae.`). */
export function buildAutoencoder(cfg: T2IConfig, params: Params = new Params()): { params: Params; ae: Autoencoder } {
  const ae = new Autoencoder(params, 'ae', cfg.autoencoder, new Rng(cfg.aeTrain.seed));
  return { params, ae };
}

/**
 * Mean reconstruction PSNR (dB, RGB, BasicSR) of centred imageSize crops of validation photos,
 * clean and, when `degraded`, noisy (σ25) too.
 */
export async function evaluateAutoencoder(ae: Autoencoder, cfg: T2IConfig, opts: { limit?: number } = {}): Promise<{ psnrClean: number; psnrNoisy: number; n: number }> {
  const photos = await loadPhotos('val', cfg.photoShortSide, opts.limit);
  let clean = 0;
  let noisy = 0;
  for (const p of photos) {
    const img = centerCrop(p.image, cfg.imageSize);
    const n25 = clip01(degrade(img, { task: 'noise', seed: 1, sigma: 25 }).image);
    const out = tf.tidy(() => tf.clipByValue(ae.decode(ae.encode(toBatch([img, n25]))), 0, 1));
    const [rc, rn] = fromBatch(out);
    out.dispose();
    clean += psnr(img, rc);
    noisy += psnr(n25, rn);
  }
  return { psnrClean: clean / photos.length, psnrNoisy: noisy / photos.length, n: photos.length };
}

/** 1/std of the latents of `n` training crops: diffusion runs on z·scale. */
export async function measureLatentScale(ae: Autoencoder, cfg: T2IConfig, n = 32): Promise<number> {
  const photos = await loadPhotos('train', cfg.photoShortSide);
  const rng = new Rng(12345);
  const crops = Array.from({ length: n }, () => randomCrop(rng.choice(photos).image, cfg.imageSize, rng));
  const std = tf.tidy(() => {
    const z = ae.encode(toBatch(crops));
    return tf.moments(z).variance.sqrt().dataSync()[0];
  });
  return 1 / std;
}

/** Train (or resume) the AE of `cfg` in `runDir`; returns the trained module and the loop's result. */
export async function trainAutoencoder(cfg: T2IConfig, runDir: string, opts: { quiet?: boolean; maxStepsThisCall?: number; workers?: number; onLog?: Parameters<typeof train>[2]['onLog'] } = {}): Promise<{ params: Params; ae: Autoencoder; result: TrainResult }> {
  const { params, ae } = buildAutoencoder(cfg);
  const photosByScale = await Promise.all(cfg.aeScales.map((s) => loadPhotos('train', s)));
  const trainCfg = loopSettings(cfg.aeTrain);
  const result = await train(autoencoderStage(cfg, params, ae, photosByScale), trainCfg, {
    runDir,
    meta: { stage: 'autoencoder', config: cfg },
    // only what the autoencoder depends on: the text/UNet parts of the preset may change meanwhile
    resumeKey: autoencoderKey(cfg),
    label: 'autoencoder',
    quiet: opts.quiet,
    maxStepsThisCall: opts.maxStepsThisCall,
    onLog: opts.onLog,
    parallel: opts.workers && opts.workers > 1 ? { workers: opts.workers, factory: { module: __filename, fn: 'autoencoderStageForWorker', args: { config: cfg } } } : undefined,
  });
  // evaluate and sample with the EMA weights
  loadWeights(path.join(runDir, CHECKPOINT_FILE), params, { useEma: true });
  return { params, ae, result };
}
