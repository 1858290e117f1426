/**
 * The text-to-image latent diffusion model that replaces Stable Diffusion here (docs/notation.md, deviations):
 * CLIP BPE tokens → text encoder τt → context; autoencoder E/D; conditional UNet ε_θ; DDIM + CFG.
 * One object holds the three networks (parameters under `ae.`, `text.`, `unet.`), the compact
 * vocabulary and the latent scale, and saves/loads them as one checkpoint.
 *
 * generate():  prompts → context (and the empty prompt's, for CFG) → sampleLatents (DDIM, Eq. 12 of
 *              Song et al.) → z / latentScale → decoder → images in [0,1].
 */
import * as tf from '@tensorflow/tfjs';
import { Params } from '../models/params';
import { Autoencoder } from '../models/autoencoder';
import { TextEncoder } from '../models/text_encoder';
import { UNet } from '../models/unet';
import { DDIMScheduler } from '../models/ddim';
import { sampleLatents } from '../models/diffusion';
import { Vocab } from '../models/tokenizer';
import { T2IConfig, parseT2IConfig } from './presets';
import { saveCheckpoint, loadCheckpoint, Named, CheckpointError } from '../util/checkpoint';
import { RGBImage, assertFinite } from '../data/image';
import { fromBatch } from '../data/patches';
import { Rng } from '../util/rng';

export interface GenerateOptions {
  seed: number;
  /** DDIM steps (default: the config's sample.steps) */
  steps?: number;
  /** classifier-free guidance scale (default: the config's sample.cfgScale) */
  cfgScale?: number;
  eta?: number;
  /** called after every DDIM step with the step index (e.g. a progress bar) */
  onStep?: (step: number, total: number) => void | Promise<void>;
}

export class TextToImage {
  readonly ae: Autoencoder;
  readonly text: TextEncoder;
  readonly unet: UNet;
  readonly scheduler: DDIMScheduler;

  constructor(
    readonly cfg: T2IConfig,
    readonly vocab: Vocab,
    readonly params: Params = new Params(),
    /** diffusion runs on z·latentScale (SD: 0.18215); measured after the AE is trained */
    public latentScale = 1,
  ) {
    this.ae = new Autoencoder(params, 'ae', cfg.autoencoder, new Rng(cfg.aeTrain.seed));
    const rng = new Rng(cfg.unetTrain.seed);
    this.text = new TextEncoder(params, 'text', { vocabSize: vocab.size, ...cfg.text }, rng);
    this.unet = new UNet(params, 'unet', cfg.unet, rng);
    this.scheduler = new DDIMScheduler({ numTrainSteps: cfg.numTrainSteps });
  }

  /** Prompts → compact token ids [B][contextLength]. */
  tokenize(prompts: readonly string[]): number[][] {
    return this.vocab.encodeBatch(prompts, this.cfg.text.contextLength);
  }

  /** Prompts → text context [B,T,D]. */
  context(prompts: readonly string[]): tf.Tensor3D {
    return tf.tidy(() => this.text.encode(this.tokenize(prompts)).context);
  }

  /** Latent side for the configured image size. */
  get latentSize(): number {
    return this.cfg.imageSize / this.ae.factor;
  }

  /** Decode scaled latents z·scale [B,h,w,C] → images [B,H,W,3] clipped to [0,1]. */
  decodeLatents(zScaled: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.clipByValue(this.ae.decode(tf.div(zScaled, this.latentScale) as tf.Tensor4D), 0, 1));
  }

  /** Encode images [B,H,W,3] in [0,1] → scaled latents z·scale. */
  encodeImages(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.mul(this.ae.encode(x), this.latentScale) as tf.Tensor4D);
  }

  /**
   * Text → images with DDIM and classifier-free guidance (uncond = the empty prompt, as SD).
   * A context may be given instead of prompts (e.g. the pseudo-word context of M_i2t).
   * Same seed → same bytes.
   */
  async generate(prompts: readonly string[] | tf.Tensor3D, opts: GenerateOptions): Promise<RGBImage[]> {
    const ctx = Array.isArray(prompts) ? this.context(prompts as string[]) : (prompts as tf.Tensor3D);
    const b = ctx.shape[0];
    const steps = opts.steps ?? this.cfg.sample.steps;
    const cfgScale = opts.cfgScale ?? this.cfg.sample.cfgScale;
    const uncond = cfgScale === 1 ? null : this.context(['']);
    const s = this.latentSize;
    try {
      const z = await sampleLatents(this.unet, this.scheduler, ctx, uncond, {
        steps,
        cfgScale,
        eta: opts.eta ?? this.cfg.sample.eta,
        seed: opts.seed,
        shape: [b, s, s, this.cfg.unet.latentChannels],
        onStep: opts.onStep ? ({ step }) => opts.onStep!(step, steps) : undefined,
      });
      const x = this.decodeLatents(z);
      z.dispose();
      const imgs = fromBatch(x);
      x.dispose();
      for (const im of imgs) assertFinite(im.data, 'the text-to-image model');
      return imgs;
    } finally {
      if (ctx !== prompts) ctx.dispose();
      uncond?.dispose();
    }
  }

  /** Save weights (+ config, vocab, latent scale) as one checkpoint; float16 for shipping. */
  save(file: string, opts: { float16?: boolean; meta?: Record<string, unknown> } = {}): void {
    const tensors: Named = new Map();
    for (const [n, v] of this.params.entries()) tensors.set(n, { shape: [...v.shape], data: v.dataSync() as Float32Array });
    saveCheckpoint(file, { ...opts.meta, kind: 't2i', config: this.cfg, vocab: this.vocab.toJSON(), latentScale: this.latentScale }, tensors, { float16: opts.float16 });
  }

  /** Load a checkpoint written by `save`. Errors name the file and the field or parameter at fault. */
  static load(file: string): TextToImage {
    const { meta, tensors } = loadCheckpoint(file);
    if (meta.kind !== 't2i') throw new CheckpointError(`${file}: not a text-to-image checkpoint (kind '${String(meta.kind)}')`);
    const cfg = parseT2IConfig(meta.config, `${file}: config`);
    const vocab = Vocab.fromJSON(meta.vocab, `${file}: vocab`);
    const scale = Number(meta.latentScale);
    if (!(scale > 0 && Number.isFinite(scale))) throw new CheckpointError(`${file}: latentScale must be a positive number, got ${String(meta.latentScale)}`);
    const m = new TextToImage(cfg, vocab, new Params(), scale);
    m.params.assign(tensors, { source: file });
    return m;
  }

  dispose(): void {
    this.params.dispose();
  }
}
