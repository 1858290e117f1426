/**
 * The image-to-words mapper: τi(X) → N pseudo-word embeddings [B,N,D] in the text encoder's input
 * space. It is M_i2t of Eq. (2) (paper Sec. 3.2) and, in this project, also the encoder half of the
 * text-to-image model's diffusion autoencoder through the text space (lib/t2i: the words of a crop are
 * trained, together with the UNet, to reconstruct that crop — Preechakul et al., "Diffusion
 * Autoencoders", CVPR 2022; ELITE's global mapping, Wei et al., ICCV 2023).
 *
 * Official form (mrluin/TextualDegRemoval `Mapper` in scripts/train/main_train_i2t_mapping.py):
 *   for each word i: w_i = mapping_i(CLS) + mean_over_patches(mapping_patch_i(patch tokens)),
 *   each mapping = (Linear → LayerNorm → LeakyReLU) × k, then Linear to the text width D.
 *
 * Options beyond the official form (both default off, which IS the official form):
 *   - `spatial: 'learned' | 'regions'`: word i takes a learned softmax-weighted average over the token
 *     positions instead of the plain mean, so that words can keep where things are — the mean
 *     discards layout. 'learned' starts uniform (the official mean); 'regions' starts with words
 *     tied to the cells of a grid (`regionLogits`): with uniform starting weights the logits moved by
 *     only ±0.1 in 2000 steps of stage 0 (docs/experiments.md), i.e. words never specialised;
 *   - `color: true`: each token of τi gets the mean colour of its cell appended (and the global
 *     feature the mean colour of the view): the ImageNet classifier used as τi here discards much of
 *     the colour that CLIP's features keep (see docs/notation.md, deviations);
 *   - `colorPath: true`: every word also gets a linear function of all token colours, a path from the
 *     photo's colours to its words that generalises to unseen photos where the MLPs remember the
 *     training photos' colours (docs/experiments.md, "Can the text space describe a photo it has never seen?", item 6).
 *
 * Other deviations: τi is MobileNetV2 (lib/models/image_encoder.ts), not CLIP ViT-H: global = the
 * feature map's average ("CLS"), tokens = its cells, optionally average-pooled by `tokenPool`; the N
 * per-word MLPs are stored stacked (weights [N,din,h]) and run as one batched matmul (the maths is
 * exactly N independent MLPs); the output layer is initialised N(0, σ²) with σ chosen so that a word
 * starts at the RMS of the T2I's token embeddings.
 *
 * Symbols: τi(X) → `ImageFeatures` {global [B,dim], tokens [B,T,dim]}; E_txt → `words` [B,N,D];
 * N → cfg.numWords; D → the text encoder's width.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { Params, init } from './params';
import { encodeImages, CUTS, EncoderCut, InputRange, ImageFeatures, IMAGE_SIZE, imagesToTensor } from './image_encoder';
import { RGBImage } from '../data/image';
import { Rng } from '../util/rng';

/** LeakyReLU slope of PyTorch's nn.LeakyReLU() default, as the official MLPs use. */
export const LEAKY_SLOPE = 0.01;

const posInt = z.number().int().positive();

/** One MLP family: `layers` × (Linear → LayerNorm → LeakyReLU) then Linear to the output width. */
export const MlpSchema = z.strictObject({
  hidden: posInt.describe('width of the hidden Linear layers (official M_i2t: 1280, M_clean: 1280)'),
  layers: z.number().int().min(1).max(8).describe('k: Linear-LayerNorm-LeakyReLU blocks before the output Linear (official: 3; ELITE: 2)'),
});

export const MapperConfigSchema = MlpSchema.extend({
  numWords: z.number().int().min(5).max(40).default(20).describe('N: pseudo-words per image (paper: 20; 5–40)'),
  tokenPool: z.number().int().min(1).max(7).default(1).describe('average-pool the encoder token grid by this factor before the token MLPs (1 = all tokens; 2 = 14×14 → 7×7 for block10), a CPU saving'),
  spatial: z
    .enum(['mean', 'learned', 'regions'])
    .default('mean')
    .describe(
      "how a word pools the per-token MLP outputs: 'mean' (official); 'learned' softmax weights per word over the token positions, starting uniform; 'regions' the same weights starting tied to regions: the first N − g² words uniform (global words), the last g² words each peaked on one cell of a g×g grid over the tokens, g = ⌊√(N−1)⌋ (words tied to regions)",
    ),
  color: z.boolean().default(false).describe("append each token cell's mean colour (and the view's mean colour to the global feature) to τi's features"),
  poolFirst: z
    .boolean()
    .default(false)
    .describe(
      "spatial 'learned' / 'regions' only: word i pools the raw token features with its weights first and runs its MLP once on that (MLP_i(Σ_p w_ip·token_p)), instead of running its MLP on every token and pooling the outputs (Σ_p w_ip·MLP_i(token_p)); T times less work (49 tokens at tokenPool 2), and a word tied to a region still sees that region's features and colour",
    ),
  colorPath: z
    .boolean()
    .default(false)
    .describe(
      "with color: every word also gets a LINEAR function of the whole grid of token colours (word_i += W_i · colours, W_i zero-initialised): a path from the photo's colours to the words that cannot remember training photos — a linear map from the 7×7 colours predicts the unseen photos' pooled latents with R² 0.85, the MLP words only with 0.57 (docs/experiments.md)",
    ),
});
export type MapperConfig = z.infer<typeof MapperConfigSchema>;

/** Which τi features a mapper reads: the encoder cut and input range (lib/models/image_encoder.ts). */
export const EncoderSchema = z.strictObject({
  cut: z.enum(['out_relu', 'block10']).describe('τi cut: out_relu 7×7×1280 (fine-tuned top blocks) or block_10_project_BN 14×14×96 (pure ImageNet weights)'),
  range: z.enum(['unit', 'symmetric']).default('unit').describe('input range fed to MobileNetV2 (lib/models/image_encoder.ts)'),
});
export type EncoderConfig = z.infer<typeof EncoderSchema>;

/** Width of the features a mapper reads: the cut's channels, plus 3 colour channels with `color`. */
export function featureDim(enc: { cut: EncoderCut }, mapper: Pick<MapperConfig, 'color'>): number {
  return CUTS[enc.cut].dim + (mapper.color ? 3 : 0);
}

/** Tokens per image after pooling: (grid / tokenPool)². */
export function featureTokens(enc: { cut: EncoderCut }, mapper: Pick<MapperConfig, 'tokenPool'>): number {
  return (CUTS[enc.cut].grid / mapper.tokenPool) ** 2;
}

/**
 * N independent MLPs with stacked weights: (Linear → LayerNorm → LeakyReLU) × layers, then Linear.
 * Parameters: `${name}.l{j}.w` [N,din_j,h], `.b` [N,1,h], `.g`/`.beta` [N,1,h] (LayerNorm),
 * `${name}.out.w` [N,h,dout], `${name}.out.b` [N,1,dout].
 */
export class WordMlp {
  readonly layers: Array<{ w: tf.Variable; b: tf.Variable; g: tf.Variable; beta: tf.Variable }> = [];
  readonly outW: tf.Variable;
  readonly outB: tf.Variable;

  /**
   * @param outInit 'zeros' (residual branches start at 0) or a std for N(0, std²)
   */
  constructor(p: Params, readonly name: string, readonly n: number, readonly din: number, readonly hidden: number, readonly dout: number, depth: number, rng: Rng, outInit: 'zeros' | number) {
    let d = din;
    for (let j = 0; j < depth; j++) {
      this.layers.push({
        w: p.add(`${name}.l${j}.w`, [n, d, hidden], init.heUniform(rng, d)),
        b: p.add(`${name}.l${j}.b`, [n, 1, hidden], init.zeros()),
        g: p.add(`${name}.l${j}.g`, [n, 1, hidden], init.ones()),
        beta: p.add(`${name}.l${j}.beta`, [n, 1, hidden], init.zeros()),
      });
      d = hidden;
    }
    this.outW = p.add(`${name}.out.w`, [n, d, dout], outInit === 'zeros' ? init.zeros() : init.normal(rng, outInit));
    this.outB = p.add(`${name}.out.b`, [n, 1, dout], init.zeros());
  }

  /**
   * Word i's MLP on x[i] (or on the shared input x for every word).
   * @param x [N,M,din] per-word inputs, or [M,din] one input for all N words (one [M,din]×[din,N·h] matmul)
   * @returns [N,M,dout]
   */
  call(x: tf.Tensor3D | tf.Tensor2D): tf.Tensor3D {
    const { n, din } = this;
    const last = x.shape[x.rank - 1];
    if (last !== din || (x.rank === 3 && x.shape[0] !== n)) throw new Error(`${this.name}: input must be [${n},M,${din}] or [M,${din}], got [${x.shape}]`);
    return tf.tidy(() => {
      let h: tf.Tensor3D;
      if (this.layers.length === 0) throw new Error(`${this.name}: needs at least one hidden layer`);
      const first = this.layers[0];
      if (x.rank === 2) {
        const m = x.shape[0];
        const hd = this.hidden;
        const w = first.w.transpose([1, 0, 2]).reshape([din, n * hd]); // [din,N·h]
        h = tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D).reshape([m, n, hd]).transpose([1, 0, 2]) as tf.Tensor3D; // [N,M,h]
      } else {
        h = tf.matMul(x as tf.Tensor3D, first.w as tf.Tensor3D); // [N,M,h]
      }
      for (let j = 0; j < this.layers.length; j++) {
        const l = this.layers[j];
        if (j > 0) h = tf.matMul(h, l.w as tf.Tensor3D); // [N,M,h]
        h = tf.add(h, l.b);
        const { mean, variance } = tf.moments(h, -1, true);
        h = tf.add(tf.mul(tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-5))), l.g), l.beta);
        h = tf.leakyRelu(h, LEAKY_SLOPE);
      }
      return tf.add(tf.matMul(h, this.outW as tf.Tensor3D), this.outB) as tf.Tensor3D; // [N,M,dout]
    });
  }
}

/**
 * Starting logits of spatial 'regions' [N·T] (row-major [N,1,T]): the first N − g² words 0 (uniform:
 * global words), then word k of the g×g grid peaked on its cell — logit −d²/(2σ²) of the token's
 * distance d to the cell centre, in token units, σ = half a cell (so about two thirds of its weight
 * falls inside the cell). T must be a square grid.
 */
export function regionLogits(n: number, tokens: number): Float32Array {
  const side = Math.round(Math.sqrt(tokens));
  if (side * side !== tokens) throw new Error(`regionLogits: ${tokens} tokens are not a square grid`);
  const g = Math.floor(Math.sqrt(n - 1));
  const out = new Float32Array(n * tokens);
  const cell = side / g;
  const sigma = cell / 2;
  for (let k = 0; k < g * g; k++) {
    const w = n - g * g + k;
    const cy = (Math.floor(k / g) + 0.5) * cell;
    const cx = ((k % g) + 0.5) * cell;
    for (let t = 0; t < tokens; t++) {
      const ty = Math.floor(t / side) + 0.5;
      const tx = (t % side) + 0.5;
      out[w * tokens + t] = -((ty - cy) ** 2 + (tx - cx) ** 2) / (2 * sigma * sigma);
    }
  }
  return out;
}

/** Eq. (2)'s mapper: N words from the global feature and a (mean or learned) pooling of per-token MLPs. */
export class ImageToTextMapper {
  readonly global: WordMlp;
  readonly patch: WordMlp;
  /** spatial 'learned' / 'regions': per-word logits over the T token positions [N,1,T] (softmax → pooling weights) */
  readonly where?: tf.Variable;
  /** colorPath: per-word linear weights on the T token colours [N,3T,D] */
  readonly colorW?: tf.Variable;

  /**
   * @param prefix parameter prefix (e.g. 'mi2t')
   * @param dim τi feature width (`featureDim`: 96 for block10, 1280 for out_relu; +3 with color)
   * @param width D, the text encoder's width
   * @param embRms RMS of the T2I token-embedding table (sets the output scale at init)
   * @param tokens T, the number of τi tokens (`featureTokens`; needed for spatial 'learned')
   */
  constructor(p: Params, readonly prefix: string, readonly cfg: MapperConfig, readonly dim: number, readonly width: number, embRms: number, rng: Rng, readonly tokens?: number) {
    const n = cfg.numWords;
    const outStd = embRms / Math.sqrt(2 * cfg.hidden); // two branches, LN·LeakyReLU activations of mean square ≈ ½
    this.global = new WordMlp(p, `${prefix}.global`, n, dim, cfg.hidden, width, cfg.layers, rng, outStd);
    this.patch = new WordMlp(p, `${prefix}.patch`, n, dim, cfg.hidden, width, cfg.layers, rng, outStd);
    if (cfg.spatial !== 'mean') {
      if (!tokens) throw new Error(`ImageToTextMapper '${prefix}': spatial '${cfg.spatial}' needs the number of τi tokens`);
      this.where = p.add(`${prefix}.where`, [n, 1, tokens], cfg.spatial === 'regions' ? () => regionLogits(n, tokens) : init.zeros());
    }
    if (cfg.colorPath) {
      if (!cfg.color) throw new Error(`ImageToTextMapper '${prefix}': colorPath needs color: true (the token colours it reads)`);
      if (!tokens) throw new Error(`ImageToTextMapper '${prefix}': colorPath needs the number of τi tokens`);
      this.colorW = p.add(`${prefix}.colorPath.w`, [n, 3 * tokens, width], init.zeros());
    }
  }

  get numWords(): number {
    return this.cfg.numWords;
  }

  /** spatial pooling of raw token features before the per-word MLP (config `poolFirst`) */
  get poolFirst(): boolean {
    return Boolean(this.where && this.cfg.poolFirst);
  }

  /**
   * Eq. (2): E_txt = M_i2t(τi(X)).
   * @param f.global [B,dim]; f.tokens [B,T,dim]
   * @returns words [B,N,D]
   */
  call(f: ImageFeatures): tf.Tensor3D {
    this.checkFeatures(f, 'call');
    return tf.tidy(() => {
      const words = this.mlpWords(f.global, f.tokens);
      return this.colorW ? (tf.add(words, this.colourPath(this.tokenColours(f))) as tf.Tensor3D) : words;
    });
  }

  /**
   * colorPath only: the words of `f` with the linear colour path reading the token colours `colours` instead of
   * f's own (the MLP words of f + W_i · colours); everything else as `call`. Measures how much of what the words'
   * layout map shows comes through that path (docs/experiments.md §2 item 11).
   * @param f as `call`; @param colours [B,T,3] token colours in [-1,1] (`tokenColours` of another view)
   */
  callWithColours(f: ImageFeatures, colours: tf.Tensor3D): tf.Tensor3D {
    if (!this.colorW) throw new Error(`ImageToTextMapper '${this.prefix}': callWithColours needs colorPath`);
    this.checkFeatures(f, 'callWithColours');
    const [b, t] = f.tokens.shape;
    if (colours.rank !== 3 || colours.shape[0] !== b || colours.shape[1] !== t || colours.shape[2] !== 3) throw new Error(`ImageToTextMapper.callWithColours: colours must be [${b},${t},3], got [${colours.shape}]`);
    return tf.tidy(() => tf.add(this.mlpWords(f.global, f.tokens), this.colourPath(colours)) as tf.Tensor3D);
  }

  /** The token colours of τi features with `color`: their last 3 channels (mapperFeatures), [B,T,3]. */
  tokenColours(f: ImageFeatures): tf.Tensor3D {
    const [b, t] = f.tokens.shape;
    return f.tokens.slice([0, 0, this.dim - 3], [b, t, 3]);
  }

  private checkFeatures(f: ImageFeatures, method: string): void {
    const { global, tokens } = f;
    if (global.rank !== 2 || global.shape[1] !== this.dim) throw new Error(`ImageToTextMapper.${method}: global must be [B,${this.dim}], got [${global.shape}]`);
    if (tokens.rank !== 3 || tokens.shape[0] !== global.shape[0] || tokens.shape[2] !== this.dim) throw new Error(`ImageToTextMapper.${method}: tokens must be [${global.shape[0]},T,${this.dim}], got [${tokens.shape}]`);
    if (this.where && tokens.shape[1] !== this.tokens) throw new Error(`ImageToTextMapper.${method}: tokens must be [B,${this.tokens},${this.dim}] (spatial weights over ${this.tokens} positions), got [${tokens.shape}]`);
  }

  /** The colour path: W_i · the T token colours for each word i, [B,N,D] (colorPath only). */
  private colourPath(colours: tf.Tensor3D): tf.Tensor3D {
    const [b, t] = colours.shape;
    const n = this.numWords;
    return tf.tidy(() => tf.matMul(colours.reshape([b, 3 * t]) as tf.Tensor2D, this.colorW!.transpose([1, 0, 2]).reshape([3 * t, n * this.width]) as tf.Tensor2D).reshape([b, n, this.width]));
  }

  /** The per-word MLP words (global + pooled patch MLPs), [B,N,D]. */
  private mlpWords(global: tf.Tensor2D, tokens: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, t] = tokens.shape;
      const n = this.numWords;
      const g = this.global.call(global); // [N,B,D]
      if (this.where && this.poolFirst) {
        const w = tf.softmax(this.where, -1) as tf.Tensor3D; // [N,1,T]
        const tT = tokens.transpose([1, 0, 2]).reshape([t, b * this.dim]); // [T,B·dim]
        const pin = tf.matMul(w.reshape([n, t]), tT).reshape([n, b, this.dim]) as tf.Tensor3D; // [N,B,dim]: Σ_p w_ip · token_p
        return tf.add(g, this.patch.call(pin)).transpose([1, 0, 2]) as tf.Tensor3D; // [B,N,D]
      }
      const pt = this.patch.call(tokens.reshape([b * t, this.dim]) as tf.Tensor2D); // [N,B·T,D]
      let pooled: tf.Tensor3D; // [N,B,D]
      if (this.where) {
        const w = tf.softmax(this.where, -1) as tf.Tensor3D; // [N,1,T]
        const ptT = pt.reshape([n, b, t, this.width]).transpose([0, 1, 3, 2]).reshape([n, b * this.width, t]); // [N,B·D,T]
        pooled = tf.matMul(ptT as tf.Tensor3D, w, false, true).reshape([n, b, this.width]) as tf.Tensor3D; // Σ_p w_ip · MLP_i(token_p)
      } else {
        pooled = tf.mean(pt.reshape([n, b, t, this.width]), 2) as tf.Tensor3D; // official: mean over patches
      }
      return tf.add(g, pooled).transpose([1, 0, 2]) as tf.Tensor3D; // [B,N,D]
    });
  }

  /**
   * Copy the weights of another mapper of the same family (same feature width, hidden size, depth,
   * pooling): all of them when N is equal, else the first min(N, N') words (the per-word MLPs are
   * independent, so this is a valid start for another N). Used to start M_i2t from the text-to-image
   * model's own mapper.
   */
  initFrom(src: ImageToTextMapper): void {
    if (this.poolFirst !== src.poolFirst) throw new Error(`ImageToTextMapper.initFrom: poolFirst ${this.poolFirst} here, ${src.poolFirst} in the source: the MLPs read different inputs`);
    const m = Math.min(this.numWords, src.numWords);
    const pairs: Array<[tf.Variable, tf.Variable]> = [];
    const mlp = (a: WordMlp, b: WordMlp) => {
      a.layers.forEach((l, j) => {
        const s = b.layers[j];
        pairs.push([l.w, s.w], [l.b, s.b], [l.g, s.g], [l.beta, s.beta]);
      });
      pairs.push([a.outW, b.outW], [a.outB, b.outB]);
    };
    mlp(this.global, src.global);
    mlp(this.patch, src.patch);
    if (this.where && src.where) pairs.push([this.where, src.where]);
    if (this.colorW && src.colorW) pairs.push([this.colorW, src.colorW]); // a source without it leaves this one's zeros: the same words
    for (const [dst, s] of pairs) {
      if (dst.shape.slice(1).join('x') !== s.shape.slice(1).join('x')) throw new Error(`ImageToTextMapper.initFrom: '${dst.name}' [${dst.shape}] and [${s.shape}] differ beyond the word axis`);
      tf.tidy(() => {
        if (dst.shape[0] === m && s.shape[0] === m) dst.assign(s);
        else dst.assign(tf.concat([tf.slice(s, 0, m), tf.slice(dst, m, dst.shape[0] - m)], 0));
      });
    }
  }
}

/**
 * τi(X) for a mapper: the encoder's global feature and its token grid average-pooled by `tokenPool`;
 * with `color`, each token's cell mean colour (and the view's mean colour, for the global feature),
 * mapped from [0,1] to [-1,1], appended as 3 more channels.
 * @param imgs RGBImage[] or [B,H,W,3] in [0,1]
 * @returns global [B,dim(+3)], tokens [B,(grid/tokenPool)²,dim(+3)]; caller disposes
 */
export async function mapperFeatures(
  imgs: RGBImage[] | tf.Tensor4D,
  enc: { cut: EncoderCut; range: InputRange },
  mapper: Pick<MapperConfig, 'tokenPool' | 'color'>,
  fit: 'stretch' | 'centerCrop' = 'stretch',
): Promise<ImageFeatures> {
  const { grid, dim } = CUTS[enc.cut];
  const pool = mapper.tokenPool;
  if (grid % pool !== 0) throw new Error(`mapperFeatures: tokenPool ${pool} must divide the ${enc.cut} grid ${grid}`);
  const f = await encodeImages(imgs, { cut: enc.cut, range: enc.range, fit });
  const g2 = grid / pool;
  const tokens = tf.tidy(() => {
    const b = f.tokens.shape[0];
    return pool === 1 ? f.tokens.clone() : (tf.avgPool(f.tokens.reshape([b, grid, grid, dim]) as tf.Tensor4D, pool, pool, 'valid').reshape([b, g2 * g2, dim]) as tf.Tensor3D);
  });
  f.tokens.dispose();
  if (!mapper.color) return { global: f.global, tokens };
  if (fit !== 'stretch') throw new Error("mapperFeatures: color features need fit 'stretch' (the cells must be τi's cells)");
  const out = tf.tidy(() => {
    const x = Array.isArray(imgs) ? imagesToTensor(imgs) : imgs;
    const c = cellColours(x, g2);
    return {
      global: tf.concat([f.global, tf.mean(c, 1)], 1) as tf.Tensor2D,
      tokens: tf.concat([tokens, c], 2) as tf.Tensor3D,
    };
  });
  tf.dispose([f.global, tokens]);
  return out;
}

/**
 * The colour channels `mapperFeatures` appends: each of the cells × cells cells of τi's own view of
 * the image (resized to IMAGE_SIZE) its mean colour, mapped from [0,1] to [-1,1].
 * @param x [B,H,W,3] in [0,1]
 * @returns [B,cells²,3]
 */
export function cellColours(x: tf.Tensor4D, cells: number): tf.Tensor3D {
  if (IMAGE_SIZE % cells !== 0) throw new Error(`cellColours: ${cells} cells must divide the encoder's input size ${IMAGE_SIZE}`);
  return tf.tidy(() => {
    const b = x.shape[0];
    const big = tf.image.resizeBilinear(x, [IMAGE_SIZE, IMAGE_SIZE], true); // τi's own view of the image
    const m = tf.avgPool(big, IMAGE_SIZE / cells, IMAGE_SIZE / cells, 'valid').reshape([b, cells * cells, 3]); // [B,T,3]
    return tf.sub(tf.mul(m, 2), 1) as tf.Tensor3D;
  });
}
