/**
 * M_clean, the textual restoration module of Eq. (3): E'_txt = M_clean(E_txt), both [B,N,D].
 *
 * Paper: Sec. 3.2 ("Textual Restoration"). Reference: mrluin/TextualDegRemoval `CleanMapper` in
 *   scripts/train/main_train_tr_mapping.py: per word i an independent MLP
 *   (Linear(D,h) → LayerNorm → LeakyReLU) × 3 → Linear(h,D) applied to word i only.
 *
 * Two variants, chosen by `cfg.type` (lib/guidance/config.ts):
 *   perWord  the official CleanMapper (`residual: false`), or E' = E + MLP_i(E_i) with the output
 *            layer zero-initialised (`residual: true`: starts as the identity, so that a short CPU run
 *            only has to learn the degradation part);
 *   mixer    an ablation the official code lacks: the N words exchange information —
 *            Linear(D,h) + learned word-position embedding → `layers` pre-LN transformer blocks
 *            (self-attention over the N words, GELU MLP 4h) → LayerNorm → Linear(h,D).
 */
import * as tf from '@tensorflow/tfjs';
import { Params, init } from '../models/params';
import { Attention, LayerNorm, Linear, gelu } from '../models/nn';
import { Rng } from '../util/rng';
import { CleanConfig } from './config';
import { WordMlp } from './m_i2t';

/** Pre-LN transformer block over the word axis (no mask: every word sees every word). */
class MixerBlock {
  readonly ln1: LayerNorm;
  readonly attn: Attention;
  readonly ln2: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(p: Params, name: string, h: number, heads: number, rng: Rng) {
    this.ln1 = new LayerNorm(p, `${name}.ln1`, h);
    this.attn = new Attention(p, `${name}.attn`, h, h, heads, rng);
    this.ln2 = new LayerNorm(p, `${name}.ln2`, h);
    this.fc1 = new Linear(p, `${name}.fc1`, h, 4 * h, rng);
    this.fc2 = new Linear(p, `${name}.fc2`, 4 * h, h, rng);
  }
  /** @param x [B,N,h] */
  call(x: tf.Tensor3D): tf.Tensor3D {
    const a = this.ln1.call(x);
    x = tf.add(x, this.attn.call(a, a));
    return tf.add(x, this.fc2.call(gelu(this.fc1.call(this.ln2.call(x))))) as tf.Tensor3D;
  }
}

/** Eq. (3)'s M_clean: per-word MLPs (the official `CleanMapper`) or the word mixer (see above). */
export class CleanMapper {
  private readonly perWord?: WordMlp;
  private readonly mixer?: { inp: Linear; pos: tf.Variable; blocks: MixerBlock[]; ln: LayerNorm; out: Linear };

  /**
   * @param prefix parameter prefix (e.g. 'mclean')
   * @param n N words; @param width D
   * @param embRms RMS of the T2I token embeddings (output scale at init when not residual)
   */
  constructor(p: Params, readonly prefix: string, readonly cfg: CleanConfig, readonly n: number, readonly width: number, embRms: number, rng: Rng) {
    if (cfg.type === 'perWord') {
      this.perWord = new WordMlp(p, `${prefix}.word`, n, width, cfg.hidden, width, cfg.layers, rng, cfg.residual ? 'zeros' : embRms / Math.sqrt(cfg.hidden / 2));
    } else {
      const h = cfg.hidden;
      this.mixer = {
        inp: new Linear(p, `${prefix}.inp`, width, h, rng),
        pos: p.add(`${prefix}.pos`, [n, h], init.normal(rng, 0.02)),
        blocks: Array.from({ length: cfg.layers }, (_, i) => new MixerBlock(p, `${prefix}.block${i}`, h, cfg.heads, rng)),
        ln: new LayerNorm(p, `${prefix}.ln`, h),
        out: new Linear(p, `${prefix}.out`, h, width, rng, cfg.residual ? { zeroInit: true } : { std: embRms / Math.sqrt(h) }),
      };
    }
  }

  /**
   * E'_txt = M_clean(E_txt), Eq. (3).
   * @param words [B,N,D]
   * @returns [B,N,D]
   */
  call(words: tf.Tensor3D): tf.Tensor3D {
    if (words.rank !== 3 || words.shape[1] !== this.n || words.shape[2] !== this.width) throw new Error(`CleanMapper.call: words must be [B,${this.n},${this.width}], got [${words.shape}]`);
    return tf.tidy(() => {
      let y: tf.Tensor3D;
      if (this.perWord) {
        y = this.perWord.call(words.transpose([1, 0, 2]) as tf.Tensor3D).transpose([1, 0, 2]) as tf.Tensor3D; // [N,B,D] → [B,N,D]
      } else {
        const m = this.mixer!;
        let x = tf.add(m.inp.call(words), m.pos) as tf.Tensor3D; // [B,N,h]
        for (const blk of m.blocks) x = blk.call(x);
        y = m.out.call(m.ln.call(x)); // [B,N,D]
      }
      return this.cfg.residual ? (tf.add(words, y) as tf.Tensor3D) : y;
    });
  }
}
