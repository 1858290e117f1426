/**
 * A demo-sized text-to-image training stage on synthetic data (random latents, random token ids) for
 * data-parallel tests of the native kernels: the demo preset's text encoder and UNet, Eq. (1) loss.
 * All randomness is drawn in getBatch; sliceBatch takes a sub-batch.
 */
import * as tf from '@tensorflow/tfjs';
import { Params } from '../../lib/models/params';
import { Stage } from '../../lib/train/loop';
import { Rng } from '../../lib/util/rng';
import { UNet } from '../../lib/models/unet';
import { TextEncoder } from '../../lib/models/text_encoder';
import { t2iPreset } from '../../lib/t2i/presets';
import { diffusionLossWith, drawDiffusionNoise } from '../../lib/models/diffusion';

export interface UnetBatch {
  z: Float32Array;
  ids: number[][];
  noise: { t: number[]; eps: Float32Array };
  n: number;
}

const VOCAB = 64;
const SIDE = 32;

export async function buildUnetStage(args: { seed: number; batch: number }): Promise<Stage<UnetBatch>> {
  const cfg = t2iPreset('demo');
  const params = new Params();
  const rng = new Rng(args.seed);
  const text = new TextEncoder(params, 'text', { vocabSize: VOCAB, ...cfg.text }, rng);
  const unet = new UNet(params, 'unet', cfg.unet, rng);
  const per = SIDE * SIDE * cfg.unet.latentChannels;
  return {
    params,
    getBatch(_step, r) {
      const n = args.batch;
      const z = Float32Array.from({ length: n * per }, () => r.normal());
      const ids = Array.from({ length: n }, () => [1, ...Array.from({ length: 10 }, () => 5 + r.int(VOCAB - 5)), 2]);
      return { z, ids, noise: drawDiffusionNoise(r, [n, SIDE, SIDE, cfg.unet.latentChannels], cfg.numTrainSteps), n };
    },
    sliceBatch(b, s, e) {
      return { z: b.z.slice(s * per, e * per), ids: b.ids.slice(s, e), noise: { t: b.noise.t.slice(s, e), eps: b.noise.eps.slice(s * per, e * per) }, n: e - s };
    },
    batchSize(b) {
      return b.n;
    },
    loss(b) {
      const z0 = tf.tensor4d(b.z, [b.n, SIDE, SIDE, cfg.unet.latentChannels]);
      const ctx = text.encode(b.ids).context;
      const l = diffusionLossWith(unet, z0, ctx, b.noise, { numTrainSteps: cfg.numTrainSteps });
      return { total: l, parts: { l_eps: l } };
    },
  };
}
