/**
 * M_i2t, the image-to-text mapper of Eq. (2): E_txt = M_i2t(τi(X)), E_txt ∈ R^{N×D}.
 *
 * Paper: Lin et al., "Improving Image Restoration through Removing Degradations in Textual
 *   Representations", CVPR 2024, Sec. 3.2 ("Image-to-Text Mapping"), following ELITE (Wei et al. 2023).
 * Reference: mrluin/TextualDegRemoval `Mapper` in scripts/train/main_train_i2t_mapping.py:
 *   for each word i: w_i = mapping_i(CLS) + mean_over_patches(mapping_patch_i(patch tokens)),
 *   each mapping = (Linear → LayerNorm → LeakyReLU) × k, then Linear to the text width D.
 *   The N words replace the placeholder of "a photo of a S" before the frozen text encoder; trainable
 *   copies of every UNet cross-attention's key/value projections (`to_k_global`/`to_v_global`,
 *   initialised from the originals) are used instead of the originals (`KVCopies`).
 *
 * Deviations, and why:
 *   - τi is MobileNetV2 (lib/models/image_encoder.ts), not CLIP ViT-H: global = the feature map's
 *     average ("CLS"), tokens = its cells; the token grid may be average-pooled by `tokenPool` first
 *     (a CPU saving; 1 = none);
 *   - the N per-word MLPs are stored stacked (weights [N,din,h]) and run as one batched matmul; the
 *     maths is exactly N independent MLPs;
 *   - the output layer is initialised N(0, σ²) with σ chosen so that a word starts at the RMS of the
 *     T2I's token embeddings (PyTorch's default init would start far off the embedding scale).
 *
 * Symbols: τi(X) → `ImageFeatures` {global [B,dim], tokens [B,T,dim]}; E_txt → `words` [B,N,D];
 * N → cfg.numWords; D → the text encoder's width.
 */
import * as tf from '@tensorflow/tfjs';
import { Params, init } from '../models/params';
import { Linear } from '../models/nn';
import { UNet } from '../models/unet';
import { Rng } from '../util/rng';
import { MapperConfig } from './config';
import { encodeImages, CUTS, EncoderCut, InputRange, ImageFeatures } from '../models/image_encoder';
import { RGBImage } from '../data/image';

/** LeakyReLU slope of PyTorch's nn.LeakyReLU() default, as the official MLPs use. */
export const LEAKY_SLOPE = 0.01;

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

/** Eq. (2)'s M_i2t: N words from the global feature and the mean of per-token MLPs. */
export class ImageToTextMapper {
  readonly global: WordMlp;
  readonly patch: WordMlp;

  /**
   * @param prefix parameter prefix (e.g. 'mi2t')
   * @param dim τi feature width (96 for block10, 1280 for out_relu)
   * @param width D, the text encoder's width
   * @param embRms RMS of the T2I token-embedding table (sets the output scale at init)
   */
  constructor(p: Params, readonly prefix: string, readonly cfg: MapperConfig, readonly dim: number, readonly width: number, embRms: number, rng: Rng) {
    const n = cfg.numWords;
    const outStd = embRms / Math.sqrt(2 * cfg.hidden); // two branches, LN·LeakyReLU activations of mean square ≈ ½
    this.global = new WordMlp(p, `${prefix}.global`, n, dim, cfg.hidden, width, cfg.layers, rng, outStd);
    this.patch = new WordMlp(p, `${prefix}.patch`, n, dim, cfg.hidden, width, cfg.layers, rng, outStd);
  }

  get numWords(): number {
    return this.cfg.numWords;
  }

  /**
   * E_txt = M_i2t(τi(X)), Eq. (2).
   * @param f.global [B,dim]; f.tokens [B,T,dim]
   * @returns words [B,N,D]
   */
  call(f: ImageFeatures): tf.Tensor3D {
    const { global, tokens } = f;
    if (global.rank !== 2 || global.shape[1] !== this.dim) throw new Error(`ImageToTextMapper.call: global must be [B,${this.dim}], got [${global.shape}]`);
    if (tokens.rank !== 3 || tokens.shape[0] !== global.shape[0] || tokens.shape[2] !== this.dim) throw new Error(`ImageToTextMapper.call: tokens must be [${global.shape[0]},T,${this.dim}], got [${tokens.shape}]`);
    return tf.tidy(() => {
      const [b, t] = tokens.shape;
      const n = this.numWords;
      const g = this.global.call(global); // [N,B,D]
      const pt = this.patch.call(tokens.reshape([b * t, this.dim]) as tf.Tensor2D).reshape([n, b, t, this.width]); // [N,B,T,D]
      return tf.add(g, tf.mean(pt, 2)).transpose([1, 0, 2]) as tf.Tensor3D; // [B,N,D]
    });
  }
}

/**
 * ELITE's `to_k_global`/`to_v_global`: a trainable copy of every UNet cross-attention's key and value
 * projections, initialised from the originals, passed to the UNet as `kvOverride`.
 * Parameters: `${prefix}.<attention name>.k.w` / `.v.w` (no bias, as the originals).
 */
export class KVCopies {
  readonly map = new Map<string, { k: Linear; v: Linear }>();

  constructor(p: Params, readonly prefix: string, unet: UNet) {
    const rng = new Rng(0); // unused: zero-init then copied
    for (const { name, k, v } of unet.crossAttentionKV()) {
      const kc = new Linear(p, `${prefix}.${name}.k`, k.din, k.dout, rng, { bias: false, zeroInit: true });
      const vc = new Linear(p, `${prefix}.${name}.v`, v.din, v.dout, rng, { bias: false, zeroInit: true });
      kc.w.assign(k.w);
      vc.w.assign(v.w);
      this.map.set(name, { k: kc, v: vc });
    }
  }
}

/**
 * τi(X) for M_i2t: the encoder's global feature and its token grid average-pooled by `tokenPool`.
 * @param imgs RGBImage[] or [B,H,W,3] in [0,1]
 * @returns global [B,dim], tokens [B,(grid/tokenPool)²,dim]; caller disposes
 */
export async function mapperFeatures(imgs: RGBImage[] | tf.Tensor4D, enc: { cut: EncoderCut; range: InputRange }, tokenPool: number, fit: 'stretch' | 'centerCrop' = 'stretch'): Promise<ImageFeatures> {
  const f = await encodeImages(imgs, { cut: enc.cut, range: enc.range, fit });
  if (tokenPool === 1) return f;
  const { grid, dim } = CUTS[enc.cut];
  if (grid % tokenPool !== 0) throw new Error(`mapperFeatures: tokenPool ${tokenPool} must divide the ${enc.cut} grid ${grid}`);
  const tokens = tf.tidy(() => {
    const b = f.tokens.shape[0];
    const g2 = grid / tokenPool;
    const m = tf.avgPool(f.tokens.reshape([b, grid, grid, dim]) as tf.Tensor4D, tokenPool, tokenPool, 'valid'); // [B,g2,g2,dim]
    return m.reshape([b, g2 * g2, dim]) as tf.Tensor3D;
  });
  f.tokens.dispose();
  return { global: f.global, tokens };
}
