/**
 * Training-step time of stages 1 and 2 at a preset's sizes, on an untrained T2I model of its
 * t2iPreset (the cost does not depend on the weights) and random cached features: what one step of
 * `tdr train i2t|clean` costs on this machine, one worker.
 */
import * as tf from '@tensorflow/tfjs';
import { GuidanceConfig } from '../config/guidance';
import { t2iPreset } from '../config/presets';
import { TextToImage } from '../models/t2i';
import { Params } from '../models/params';
import { buildVocab, PROMPT_TEMPLATE } from '../models/tokenizer';
import { CUTS } from '../models/image_encoder';
import { AdamW } from '../train/adamw';
import { stepRng, Stage } from '../train/loop';
import { Rng } from '../util/rng';
import { GuidanceModel } from './model';
import { GuidanceCache, i2tStage } from '../train/stages/i2t';
import { cleanStage } from '../train/stages/clean';

export interface StepTiming {
  stage: 'i2t' | 'clean';
  batch: number;
  /** median ms per step (loss + gradients + AdamW), after one warm-up step */
  medianMs: number;
  allMs: number[];
  trainableParams: number;
}

/** Random features/latents shaped like the preset's cache (items: 8). */
function syntheticCache(cfg: GuidanceConfig, t2i: TextToImage): GuidanceCache {
  const { dim, grid } = CUTS[cfg.encoder.cut];
  const numTokens = (grid / cfg.mapper.tokenPool) ** 2;
  const s = t2i.latentSize;
  const zShape: [number, number, number] = [s, s, t2i.cfg.autoencoder.latentChannels];
  const rng = new Rng(1);
  const m = 8;
  const rand = (n: number) => Float32Array.from({ length: n }, () => Math.max(0, rng.normal()));
  return {
    items: Array.from({ length: m }, (_, i) => ({ photoId: `p${i >> 1}`, crop: 0, task: i % 2 ? 'noise' : 'clean', seed: i, clean: i - (i % 2) })),
    global: rand(m * dim),
    tokens: rand(m * numTokens * dim),
    z: Float32Array.from({ length: m * s * s * zShape[2] }, () => rng.normal()),
    dim,
    numTokens,
    zShape,
  };
}

/** Time `steps` training steps of stage 1 and stage 2 for `cfg` (batch from the config unless given). */
export async function benchGuidanceSteps(cfg: GuidanceConfig, opts: { steps?: number; batch?: number } = {}): Promise<StepTiming[]> {
  const t2iCfg = t2iPreset(cfg.t2iPreset);
  const t2i = new TextToImage(t2iCfg, buildVocab([PROMPT_TEMPLATE, '']), new Params(), 1);
  const out: StepTiming[] = [];
  try {
    const c = { ...cfg, i2tTrain: { ...cfg.i2tTrain, batch: opts.batch ?? cfg.i2tTrain.batch }, cleanTrain: { ...cfg.cleanTrain, batch: opts.batch ?? cfg.cleanTrain.batch } };
    const cache = syntheticCache(c, t2i);
    const model = new GuidanceModel(c, t2i);
    for (const which of ['i2t', 'clean'] as const) {
      const stage = (which === 'i2t' ? i2tStage(model, t2i, c, cache) : cleanStage(model, t2i, c, cache)) as Stage<unknown>;
      const trainable = stage.params.trainable();
      const vars = trainable.map(([, v]) => v);
      const byVar = new Map(trainable.map(([n, v]) => [v.name, n]));
      const opt = new AdamW({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, clipNorm: 1 });
      const ms: number[] = [];
      for (let s = 0; s <= (opts.steps ?? 3); s++) {
        const t0 = Date.now();
        const batch = await stage.getBatch(s, stepRng(0, s, 'batch'));
        const { value, grads } = tf.variableGrads(() => stage.loss(batch, s, stepRng(0, s, 'loss')).total, vars);
        value.dataSync();
        const named = new Map<string, tf.Tensor>(Object.entries(grads).map(([vn, g]) => [byVar.get(vn)!, g]));
        opt.apply(new Map(trainable), named, 1e-4);
        tf.dispose([value, ...Object.values(grads)]);
        stage.disposeBatch?.(batch);
        if (s > 0) ms.push(Date.now() - t0); // step 0 warms up kernels
      }
      opt.dispose();
      const sorted = [...ms].sort((a, b) => a - b);
      out.push({ stage: which, batch: which === 'i2t' ? c.i2tTrain.batch : c.cleanTrain.batch, medianMs: sorted[Math.floor(sorted.length / 2)], allMs: ms, trainableParams: trainable.reduce((a, [, v]) => a + v.size, 0) });
    }
    model.dispose();
  } finally {
    t2i.dispose();
  }
  return out;
}
