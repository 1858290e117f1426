/**
 * The text-to-image latent diffusion model that replaces Stable Diffusion here (docs/notation.md, deviations):
 * CLIP BPE tokens → text encoder τt → context; autoencoder E/D; conditional UNet ε_θ; DDIM + CFG.
 * One object holds the three networks (parameters under `ae.`, `text.`, `unet.`), the compact
 * vocabulary and the latent scale, and saves/loads them as one checkpoint.
 *
 * generate():  prompts → context (and the empty prompt's, for CFG) → sampleLatents (DDIM, Eq. 12 of
 *              Song et al.) → z / latentScale → decoder → images in [0,1].
 *
 * With `cfg.words` the model also holds an image-to-words mapper (parameters `words.`), trained with
 * the UNet as a diffusion autoencoder through the text space: `imageWords(imgs)` → pseudo-words,
 * `wordsContext(words)` = τt("a photo of a S" with S := words), and `generate(context)` draws them.
 * M_i2t (stage 1, Eq. 2) starts from this mapper.
 */
import * as tf from '@tensorflow/tfjs';
import { Params } from '../models/params';
import { Autoencoder } from '../models/autoencoder';
import { TextEncoder } from '../models/text_encoder';
import { UNet } from '../models/unet';
import { DDIMScheduler } from '../models/ddim';
import { sampleLatents } from '../models/diffusion';
import { Vocab, PROMPT_TEMPLATE } from '../models/tokenizer';
import { ImageToTextMapper, featureDim, featureTokens, mapperFeatures } from '../models/word_mapper';
import { T2IConfig, parseT2IConfig } from './presets';
import { saveCheckpoint, loadCheckpoint, Named, CheckpointError } from '../util/checkpoint';
import { splitState } from '../train/loop';
import { RGBImage, assertFinite } from '../data/image';
import { fromBatch } from '../data/patches';
import { Rng } from '../util/rng';
import { UserError } from '../util/errors';

export interface GenerateOptions {
  seed: number;
  /** DDIM steps (default: the config's sample.steps) */
  steps?: number;
  /** classifier-free guidance scale (default: the config's sample.cfgScale) */
  cfgScale?: number;
  eta?: number;
  /** called after every DDIM step with the step index (e.g. a progress bar) */
  onStep?: (step: number, total: number) => void | Promise<void>;
  /**
   * Start from the context's layout map (needs unet.layout trained with words.layoutLoss): its first
   * latentChannels channels, a coarse latent of the image the words describe, upsampled to the
   * latent size and noised to strength·T (SDEdit); the DDIM steps below that level add the detail.
   * The layout map is a function of the context alone, so the image still comes from the words.
   */
  fromLayout?: number;
}

export class TextToImage {
  readonly ae: Autoencoder;
  readonly text: TextEncoder;
  readonly unet: UNet;
  readonly scheduler: DDIMScheduler;
  /** the image-to-words mapper of the diffusion autoencoder (only with cfg.words) */
  readonly words?: ImageToTextMapper;

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
    if (cfg.words) {
      const w = cfg.words;
      const rms = tf.tidy(() => Math.sqrt(tf.mean(tf.square(this.text.tokenEmb)).dataSync()[0]));
      this.words = new ImageToTextMapper(params, 'words', w.mapper, featureDim(w.encoder, w.mapper), cfg.text.width, rms, new Rng(cfg.unetTrain.seed * 1009 + 7), featureTokens(w.encoder, w.mapper));
    }
  }

  /** Compact ids of "a photo of a S" for a batch of b rows. */
  templateIds(b: number): number[][] {
    return this.tokenize(new Array<string>(b).fill(PROMPT_TEMPLATE));
  }

  /**
   * The token embeddings of "a photo of a S" with the N words at the placeholder's position
   * (BOS a photo of a → position 5), EOS after them, PAD to the context length.
   * @param words [B,N,D] @returns [B,contextLength,D]
   */
  splicedEmbeddings(words: tf.Tensor3D): tf.Tensor3D {
    const ids = this.templateIds(words.shape[0]);
    return tf.tidy(() => this.text.spliceAtPlaceholder(this.text.embedTokens(ids), ids, words));
  }

  /**
   * τt("a photo of a S" with S := words): the context the UNet is conditioned on.
   * @param words [B,N,D] @returns [B,contextLength,D]
   */
  wordsContext(words: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => this.text.encodeEmbeddings(this.splicedEmbeddings(words)));
  }

  /**
   * The model's own pseudo-words of images (cfg.words): τi features → mapper.
   * @param imgs [B,H,W,3] in [0,1] or RGBImages of one size (viewed whole, as the training crops)
   * @returns [B,N,D]; the caller disposes
   */
  async imageWords(imgs: RGBImage[] | tf.Tensor4D): Promise<tf.Tensor3D> {
    if (!this.words || !this.cfg.words) throw new Error('TextToImage.imageWords: this model has no image-to-words mapper (its config has no `words` block)');
    const f = await mapperFeatures(imgs, this.cfg.words.encoder, this.cfg.words.mapper);
    try {
      return this.words.call(f);
    } finally {
      tf.dispose([f.global, f.tokens]);
    }
  }

  /** Prompts → compact token ids [B][contextLength]. */
  tokenize(prompts: readonly string[]): number[][] {
    return this.vocab.encodeBatch(prompts, this.cfg.text.contextLength);
  }

  /** Prompts → text context [B,T,D]. */
  context(prompts: readonly string[]): tf.Tensor3D {
    return tf.tidy(() => this.text.encode(this.tokenize(prompts)).context);
  }

  /**
   * The SDEdit start of `fromLayout`: the context's layout map, first latentChannels channels (what
   * words.layoutLoss regresses: the crop's scaled latent pooled to the grid), resized to the latent
   * size. `kv`: replacement key/value layers of the layout attention (guidance's k/v copies).
   * @throws UserError when the model has no layout map (hasLayoutMap)
   */
  layoutStart(ctx: tf.Tensor3D, kv?: { k: import('../models/nn').Linear; v: import('../models/nn').Linear }): tf.Tensor4D {
    this.requireLayoutMap('fromLayout (the SDEdit start from the layout map)');
    const s = this.latentSize;
    return tf.tidy(() => this.unet.layoutMap(ctx, s, s, kv).slice([0, 0, 0, 0], [-1, -1, -1, this.cfg.unet.latentChannels]) as tf.Tensor4D);
  }

  /**
   * Whether the words have a layout map that pictures the crop: trained with words, unet.layout and
   * words.layoutLoss > 0 (what fromLayout, `tdr t2i-check --layout` and layoutFidelity need).
   */
  get hasLayoutMap(): boolean {
    return Boolean(this.words && this.unet.layout && this.cfg.words && this.cfg.words.layoutLoss > 0);
  }

  /** @throws UserError naming `what` when the model has no layout map (hasLayoutMap) */
  requireLayoutMap(what: string): void {
    if (!this.hasLayoutMap) throw new UserError(`${what} needs a text-to-image model trained with words, unet.layout and words.layoutLoss > 0 (preset '${this.cfg.preset}' has no layout map)`);
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
    const x0 = opts.fromLayout != null ? this.layoutStart(ctx) : undefined;
    try {
      const z = await sampleLatents(this.unet, this.scheduler, ctx, uncond, {
        init: x0 && { x0, strength: opts.fromLayout! },
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
      x0?.dispose();
    }
  }

  /** Save weights (+ config, vocab, latent scale) as one checkpoint; float16 for shipping. */
  save(file: string, opts: { float16?: boolean; meta?: Record<string, unknown> } = {}): void {
    const tensors: Named = new Map();
    for (const [n, v] of this.params.entries()) tensors.set(n, { shape: [...v.shape], data: v.dataSync() as Float32Array });
    saveCheckpoint(file, { ...opts.meta, kind: 't2i', config: this.cfg, vocab: this.vocab.toJSON(), latentScale: this.latentScale }, tensors, { float16: opts.float16 });
  }

  /**
   * Load a checkpoint written by `save`, or a training run's checkpoint (its EMA weights), e.g. to
   * check a model while it trains. Errors name the file and the field or parameter at fault.
   */
  static load(file: string): TextToImage {
    const { meta, tensors: all } = loadCheckpoint(file);
    // a run's checkpoint (<runs>/<preset>/t2i/checkpoint.tdrc, while it trains): the UNet stage's EMA
    // weights, or the layout warm-up's own (words.layoutSteps)
    const run = meta.kind === 'train-state' && (meta.stage === 't2i' || meta.stage === 't2i-layout');
    if (meta.kind !== 't2i' && !run) throw new CheckpointError(`${file}: not a text-to-image checkpoint (kind '${String(meta.kind)}')`);
    let tensors = all;
    if (run) {
      const s = splitState(all);
      tensors = s.params;
      if (meta.stage === 't2i') for (const [n, v] of s.ema) tensors.set(n, v);
    }
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
