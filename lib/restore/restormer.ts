/**
 * Restormer (Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image Restoration",
 * CVPR 2022), reference repository swz30/Restormer (`basicsr/models/archs/restormer_arch.py`), and its
 * guided variant `RestormerRefFusion` of mrluin/TextualDegRemoval (`models/archs/network_restormer_guided_arch.py`).
 *
 * Architecture: 3×3 patch embedding → 4-level encoder/decoder of transformer blocks
 * (MDTA = multi-Dconv-head *transposed* attention across channels, GDFN = gated-Dconv feed-forward),
 * pixel-unshuffle down / pixel-shuffle up, 1×1 channel reduction after the skip concatenations
 * (levels 3, 2), refinement blocks at level 1, 3×3 output conv, global residual (output = x + r).
 *
 * Guidance (paper Eq. 4, Sec. 3.3): at the input of encoder levels 1–4 (patch embedding, down1_2,
 * down2_3, down3_4 outputs), Fx ← Fx + α·B([Fx, F̂g])[:, :C], B a transformer block on the
 * concatenation, α a learnable scalar initialised to 0 (`TransformerResFusionBlock` in the official
 * code computes (B(z)·α + z)[:C] = Fx + α·B(z)[:C], identical).
 *
 * Deviations: small default widths (dim 16, blocks [1,1,1,1], 1 refinement block; the paper's are
 * 48, [4,6,6,8], 4); NHWC with tfjs's pixel-shuffle channel order; inputs of any size are zero-padded
 * to a multiple of 8 and cropped back (the official Restormer requires divisibility); the fusion
 * block may see different widths for F̂g and Fx (the official code assumes nf = dim); one fusion
 * block per level (official `reffusion_n_blocks` [1,1,1,1] default, [2,2,2,2] in the options).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { Params, init } from '../models/params';
import { Conv2d, DepthwiseConv2d, LayerNorm } from '../models/nn';
import { Rng } from '../util/rng';
import { FusionSpec, RestorationBackbone, channelGram, checkGuidance, checkImage, conv3x3ByTaps, cropTo, geluErf, gramFromSums, gramSums, imageStatisticsActive, padToMultiple, pixelShuffle, pixelUnshuffle, replaced, rowBands, runBlocks, unshuffledConv } from './layers';

export { runBlocks } from './layers';

const posInt = z.number().int().positive();

export const RestormerConfigSchema = z.strictObject({
  dim: posInt.default(16).describe('width of level 1 (level l has dim·2^(l−1)); paper 48'),
  blocks: z.array(posInt).length(4).default([1, 1, 1, 1]).describe('transformer blocks per level (enc = dec); paper [4,6,6,8]'),
  refinement: z.number().int().nonnegative().default(1).describe('refinement blocks at full resolution; paper 4'),
  heads: z.array(posInt).length(4).default([1, 1, 2, 4]).describe('MDTA heads per level; paper [1,2,4,8]'),
  ffnExpansion: z.number().positive().default(2.66).describe('GDFN hidden width factor γ'),
  bias: z.boolean().default(false).describe('biases in convs (paper: none)'),
  layerNorm: z.enum(['withBias', 'biasFree']).default('withBias'),
});
export type RestormerConfig = z.infer<typeof RestormerConfigSchema>;

/** Bias-free layer norm over channels: x/√(var+ε)·w (Restormer `BiasFree_LayerNorm`). */
class BiasFreeLayerNorm {
  readonly gamma: tf.Variable;
  constructor(p: Params, readonly name: string, d: number) {
    this.gamma = p.add(`${name}.g`, [d], init.ones());
  }
  call<T extends tf.Tensor>(x: T): T {
    const { variance } = tf.moments(x, -1, true);
    return tf.mul(tf.div(x, tf.sqrt(tf.add(variance, 1e-5))), this.gamma) as T;
  }
  /** x/√(var+ε) without γ (folded into the next linear map by the caller) */
  normalize<T extends tf.Tensor>(x: T): T {
    return tf.tidy(() => {
      const sq = tf.square(tf.sub(x, tf.mean(x, -1, true)));
      const r = tf.rsqrt(tf.add(tf.mean(sq, -1, true), 1e-5));
      sq.dispose();
      return tf.mul(x, r) as T;
    });
  }
}

/**
 * A layer norm over channels: `call` = normalize(x)·γ (+ β); `normalize` without γ, β, which the 1×1
 * conv that follows it in a transformer block absorbs (`normedPointwise`).
 */
type Norm = {
  call<T extends tf.Tensor>(x: T): T;
  normalize<T extends tf.Tensor>(x: T): T;
  readonly gamma: tf.Variable;
  readonly beta?: tf.Variable;
};
function makeNorm(p: Params, name: string, c: number, kind: RestormerConfig['layerNorm']): Norm {
  return kind === 'biasFree' ? new BiasFreeLayerNorm(p, name, c) : new LayerNorm(p, name, c);
}

/**
 * Output channels [from, from + n) of a 1×1 conv applied to norm(x) = x̂·γ + β, with x̂ = norm.normalize(x)
 * given: conv(x̂·γ + β) = x̂ ∗ (γ ⊙ W) + (βᵀW + b), so the norm's affine part costs no full-size kernel.
 * @param xn x̂ [B,H,W,C] (or, without `norm`, the conv's input itself)
 */
function normedPointwise(xn: tf.Tensor4D, conv: Conv2d, norm: Norm | undefined, from: number, n: number): tf.Tensor4D {
  return tf.tidy(() => {
    const c = conv.cin;
    const w = tf.slice(conv.w, [0, 0, 0, from], [1, 1, c, n]) as tf.Tensor4D;
    let filter = w;
    let bias: tf.Tensor | undefined = conv.b ? tf.slice(conv.b, [from], [n]) : undefined;
    if (norm) {
      filter = tf.mul(w, norm.gamma.reshape([1, 1, c, 1])) as tf.Tensor4D;
      if (norm.beta) {
        const b0 = tf.matMul(norm.beta.reshape([1, c]), w.reshape([c, n])).reshape([n]);
        bias = bias ? tf.add(bias, b0) : b0;
      }
    }
    return tf.fused.conv2d({ x: xn, filter, strides: 1, pad: 'same', bias });
  });
}

/** Channels [from, from + n) of a depthwise conv (its weights and bias sliced alike). */
function depthwiseSlice(x: tf.Tensor4D, dw: DepthwiseConv2d, from: number, n: number): tf.Tensor4D {
  return tf.tidy(() => {
    const y = tf.depthwiseConv2d(x, tf.slice(dw.w, [0, 0, from, 0], [-1, -1, n, 1]) as tf.Tensor4D, 1, 'same');
    return dw.b ? tf.add(y, tf.slice(dw.b, [from], [n])) : y;
  });
}

/**
 * Part i of a 1×1 conv followed by a depthwise 3×3 on norm(x) (channels i·n … (i+1)·n: MDTA's q, k or v,
 * GDFN's halves), from that part of the weights alone; the 1×1 output is freed once convolved.
 */
function pointwiseDepthwise(xn: tf.Tensor4D, pw: Conv2d, dw: DepthwiseConv2d, norm: Norm | undefined, i: number, n: number): tf.Tensor4D {
  const a = normedPointwise(xn, pw, norm, i * n, n);
  return replaced(a, depthwiseSlice(a, dw, i * n, n));
}

/**
 * Multi-Dconv head transposed attention: attention over channels (C/h × C/h per head), cost linear in H·W.
 *
 * Computed in the [B,H·W,C] layout, without transposes: q, k, v each from their third of the 1×1 and
 * depthwise weights (no split of a 3C-channel map), the q̂ k̂ᵀ of all heads as one C×C matrix qᵀk
 * divided by the norms (`channelGram`), each row's softmax restricted to its head's block (−∞ elsewhere,
 * whose weights are then exactly 0), and the output v·Aᵀ — the same function as the per-head form of the
 * paper (Restormer Eq. 2), up to float rounding.
 */
export class MDTA {
  readonly qkv: Conv2d;
  readonly dw: DepthwiseConv2d;
  readonly proj: Conv2d;
  readonly temperature: tf.Variable;
  /** a map of more floats than this (per C-wide map) goes in bands of rows (same output; not in a tiled pass) */
  bandFloats = BAND_FLOATS;
  constructor(p: Params, readonly name: string, readonly c: number, readonly heads: number, bias: boolean, rng: Rng) {
    if (c % heads !== 0) throw new Error(`${name}: channels ${c} not divisible by heads ${heads}`);
    this.qkv = new Conv2d(p, `${name}.qkv`, c, 3 * c, rng, { k: 1, bias });
    this.dw = new DepthwiseConv2d(p, `${name}.dw`, 3 * c, rng, { bias });
    this.proj = new Conv2d(p, `${name}.proj`, c, c, rng, { k: 1, bias });
    this.temperature = p.add(`${name}.temperature`, [heads], init.ones());
  }
  /**
   * @param x [B,H,W,C] → [B,H,W,C]
   * @param norm when given, x is the block's input and the attention sees norm(x) (its γ, β folded into the 1×1 conv)
   */
  call(x: tf.Tensor4D, norm?: Norm): tf.Tensor4D {
    const [b, h, w, c] = x.shape;
    const bands = rowBands(h, b * w * c, this.bandFloats);
    if (bands.length > 1 && !imageStatisticsActive()) return this.callBanded(x, norm, bands);
    return tf.tidy(() => {
      // intermediates freed once consumed (inference memory), as in GDFN
      const xn = norm ? norm.normalize(x) : x;
      const part = (i: number): tf.Tensor3D => {
        const d = pointwiseDepthwise(xn, this.qkv, this.dw, norm, i, c);
        const r = d.reshape([b, h * w, c]) as tf.Tensor3D;
        d.dispose();
        return r;
      };
      const q = part(0);
      const k = part(1);
      // q̂ k̂ᵀ, q and k normalised over all pixels (of the whole image in a tiled pass: channelGram)
      const corr = channelGram(q, k, h, w); // [B,C,C]
      tf.dispose([q, k]);
      const attn = this.attention(corr);
      corr.dispose();
      const v = part(2);
      if (xn !== x) xn.dispose();
      const o = tf.matMul(v, attn, false, true).reshape([b, h, w, c]) as tf.Tensor4D; // o[p,i] = Σ_j A[i,j]·v[p,j]
      tf.dispose([v, attn]);
      return replaced(o, this.proj.call(o));
    });
  }

  /** Softmax over each row's head block of the temperature-scaled similarities [B,C,C]. */
  private attention(corr: tf.Tensor3D): tf.Tensor3D {
    const c = this.c;
    const nh = this.heads;
    return tf.tidy(() => {
      if (nh === 1) return tf.softmax(tf.mul(corr, this.temperature), -1) as tf.Tensor3D;
      const rowTemperature = tf.tile(this.temperature.reshape([nh, 1]), [1, c / nh]).reshape([1, c, 1]);
      return tf.softmax(tf.add(tf.mul(corr, rowTemperature), headMask(c, nh)), -1) as tf.Tensor3D;
    });
  }

  /**
   * `call` band by band (each band with the one-row halo of the depthwise conv, cropped after): the sums
   * qᵀk, Σq², Σk² add over the bands, v is kept per band, and the output is made band by band — the same
   * function with a band's temporaries instead of the whole map's.
   */
  private callBanded(x: tf.Tensor4D, norm: Norm | undefined, bands: Array<[number, number]>): tf.Tensor4D {
    const [b, h, w, c] = x.shape;
    return tf.tidy(() => {
      let gram: tf.Tensor3D | undefined;
      let sq: tf.Tensor | undefined;
      let sk: tf.Tensor | undefined;
      const add = <T extends tf.Tensor>(acc: T | undefined, t: T): T => {
        if (!acc) return t;
        const r = tf.add(acc, t) as T;
        tf.dispose([acc, t]);
        return r;
      };
      const vs: tf.Tensor3D[] = [];
      for (const [r0, r1] of bands) {
        const a0 = Math.max(0, r0 - 1);
        const a1 = Math.min(h, r1 + 1);
        const parts = tf.tidy(() => {
          const xb = tf.slice(x, [0, a0, 0, 0], [-1, a1 - a0, -1, -1]) as tf.Tensor4D;
          const xn = norm ? norm.normalize(xb) : xb;
          const part = (i: number): tf.Tensor3D => tf.slice(pointwiseDepthwise(xn, this.qkv, this.dw, norm, i, c), [0, r0 - a0, 0, 0], [-1, r1 - r0, -1, -1]).reshape([b, (r1 - r0) * w, c]) as tf.Tensor3D;
          return { ...gramSums(part(0), part(1)), v: part(2) };
        });
        gram = add(gram, parts.gram);
        sq = add(sq, parts.sq);
        sk = add(sk, parts.sk);
        vs.push(parts.v);
      }
      const corr = gramFromSums(gram!, sq!, sk!);
      const attn = this.attention(corr);
      const outs = bands.map(([r0, r1], i) =>
        tf.tidy(() => {
          const o = tf.matMul(vs[i], attn, false, true).reshape([b, r1 - r0, w, c]) as tf.Tensor4D;
          vs[i].dispose();
          return this.proj.call(o);
        }),
      );
      return tf.concat(outs, 1) as tf.Tensor4D;
    });
  }
}

/** [1,C,C]: 0 where row and column are in the same of `heads` equal channel groups, −∞ elsewhere. */
function headMask(c: number, heads: number): tf.Tensor3D {
  const ch = c / heads;
  const m = new Float32Array(c * c);
  for (let i = 0; i < c; i++) for (let j = 0; j < c; j++) if (Math.floor(i / ch) !== Math.floor(j / ch)) m[i * c + j] = -Infinity;
  return tf.tensor3d(m, [1, c, c]);
}

/** MDTA and GDFN work on bands of rows whose widest temporary map holds at most this many floats (16 MiB). */
const BAND_FLOATS = 4 * 2 ** 20;

/** Gated-Dconv feed-forward network: 1×1 → depthwise 3×3 → GELU(x1)·x2 → 1×1. */
export class GDFN {
  readonly pin: Conv2d;
  readonly dw: DepthwiseConv2d;
  readonly pout: Conv2d;
  readonly hidden: number;
  /** a map whose hidden width holds more floats than this goes in bands of rows (same output) */
  bandFloats = BAND_FLOATS;
  constructor(p: Params, readonly name: string, c: number, expansion: number, bias: boolean, rng: Rng) {
    const hidden = (this.hidden = Math.floor(c * expansion));
    this.pin = new Conv2d(p, `${name}.pin`, c, 2 * hidden, rng, { k: 1, bias });
    this.dw = new DepthwiseConv2d(p, `${name}.dw`, 2 * hidden, rng, { bias });
    this.pout = new Conv2d(p, `${name}.pout`, hidden, c, rng, { k: 1, bias });
  }
  /**
   * @param x [B,H,W,C] → [B,H,W,C]
   * @param norm when given, x is the block's input and the network sees norm(x) (γ, β folded into `pin`)
   */
  call(x: tf.Tensor4D, norm?: Norm): tf.Tensor4D {
    const [b, h, w] = x.shape;
    // a large map goes in bands of rows (each with the one-row halo its depthwise 3×3 needs, cropped after):
    // every op here is per pixel but that conv, so the output is the same, and the hidden-width
    // temporaries are a band's instead of the whole map's (less fresh memory for the allocator to fault in)
    const bands = rowBands(h, b * w * this.hidden, this.bandFloats);
    if (bands.length === 1) return this.callBand(x, norm);
    return tf.tidy(() => {
      const outs: tf.Tensor4D[] = [];
      for (const [r0, r1] of bands) {
        const a0 = Math.max(0, r0 - 1);
        const a1 = Math.min(h, r1 + 1);
        const xb = tf.slice(x, [0, a0, 0, 0], [-1, a1 - a0, -1, -1]);
        const yb = this.callBand(xb, norm);
        xb.dispose();
        outs.push(tf.slice(yb, [0, r0 - a0, 0, 0], [-1, r1 - r0, -1, -1]));
        yb.dispose();
      }
      return tf.concat(outs, 1);
    });
  }
  private callBand(x: tf.Tensor4D, norm?: Norm): tf.Tensor4D {
    return tf.tidy(() => {
      // each intermediate is freed once consumed; the two halves x1, x2 come from their halves of the
      // pin/dw weights (no split of a 2·hidden map), so the peak is about three hidden-width maps
      const xn = norm ? norm.normalize(x) : x;
      const half = (i: number): tf.Tensor4D => pointwiseDepthwise(xn, this.pin, this.dw, norm, i, this.hidden);
      const x1 = half(0);
      const act = replaced(x1, geluErf(x1));
      const x2 = half(1);
      if (xn !== x) xn.dispose();
      const gated = replaced(act, tf.mul(act, x2) as tf.Tensor4D);
      x2.dispose();
      return replaced(gated, this.pout.call(gated));
    });
  }
}

/** Restormer transformer block: x + MDTA(LN(x)), then x + GDFN(LN(x)). */
export class TransformerBlock {
  readonly norm1: Norm;
  readonly attn: MDTA;
  readonly norm2: Norm;
  readonly ffn: GDFN;
  constructor(p: Params, readonly name: string, c: number, heads: number, cfg: Pick<RestormerConfig, 'ffnExpansion' | 'bias' | 'layerNorm'>, rng: Rng) {
    this.norm1 = makeNorm(p, `${name}.norm1`, c, cfg.layerNorm);
    this.attn = new MDTA(p, `${name}.attn`, c, heads, cfg.bias, rng);
    this.norm2 = makeNorm(p, `${name}.norm2`, c, cfg.layerNorm);
    this.ffn = new GDFN(p, `${name}.ffn`, c, cfg.ffnExpansion, cfg.bias, rng);
  }
  call(x: tf.Tensor4D): tf.Tensor4D {
    // each half in its own tidy: at inference its intermediates are freed as soon as it returns (the
    // peak memory of a forward pass is one block's, not the sum over blocks); under a gradient tape the
    // tensors backprop needs are kept by the engine, so training is unchanged
    const y = tf.tidy(() => tf.add(x, this.attn.call(x, this.norm1)) as tf.Tensor4D);
    return replaced(y, tf.tidy(() => tf.add(y, this.ffn.call(y, this.norm2)) as tf.Tensor4D));
  }
}

/** 3×3 conv C→C/2 then pixel-unshuffle: [B,H,W,C] → [B,H/2,W/2,2C]. */
export class Downsample {
  readonly conv: Conv2d;
  constructor(p: Params, name: string, c: number, rng: Rng) {
    if (c % 2 !== 0) throw new Error(`${name}: channels ${c} must be even`);
    this.conv = new Conv2d(p, `${name}.conv`, c, c / 2, rng, { bias: false });
  }
  call(x: tf.Tensor4D): tf.Tensor4D {
    // on TensorFlow (oneDNN) a 3×3 conv to few channels is slow (24→12 at 512²: 184 ms); the same map as
    // one 4×4 stride-2 conv to 2C channels takes 52 ms (`unshuffledConv`)
    if (tf.getBackend() === 'tensorflow' && !this.conv.b) return unshuffledConv(x, this.conv.w as tf.Tensor4D);
    return pixelUnshuffle(this.conv.call(x), 2);
  }
}

/** 3×3 conv C→2C then pixel-shuffle: [B,H,W,C] → [B,2H,2W,C/2]. */
export class Upsample {
  readonly conv: Conv2d;
  constructor(p: Params, name: string, c: number, rng: Rng) {
    this.conv = new Conv2d(p, `${name}.conv`, c, 2 * c, rng, { bias: false });
  }
  call(x: tf.Tensor4D): tf.Tensor4D {
    return pixelShuffle(this.conv.call(x), 2);
  }
}

/**
 * Eq. (4) fusion with a transformer block: Fx + α·B([Fx, F̂g])[:, :C], α scalar, init 0.
 * `B` is a Restormer block on C + Cg channels (heads must divide C + Cg).
 */
export class TransformerFusion {
  readonly block: TransformerBlock;
  readonly alpha: tf.Variable;
  constructor(p: Params, readonly name: string, readonly c: number, readonly cg: number, heads: number, cfg: Pick<RestormerConfig, 'ffnExpansion' | 'bias' | 'layerNorm'>, rng: Rng) {
    if ((c + cg) % heads !== 0) throw new Error(`${name}: fused width ${c}+${cg} not divisible by heads ${heads}`);
    this.block = new TransformerBlock(p, `${name}.block`, c + cg, heads, cfg, rng);
    this.alpha = p.add(`${name}.alpha`, [1], init.zeros());
  }
  /** @param fx [B,H,W,C] @param fg [B,H,W,Cg] → [B,H,W,C] */
  call(fx: tf.Tensor4D, fg: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const fused = this.block.call(tf.concat([fx, fg], 3) as tf.Tensor4D);
      return tf.add(fx, tf.mul(this.alpha, tf.slice(fused, [0, 0, 0, 0], [-1, -1, -1, this.c]))) as tf.Tensor4D;
    });
  }
}

/**
 * The Restormer encoder shared by Restormer and PromptIR: patch embedding, 3 encoder levels with
 * downsampling, the latent level; with `fusion`, Eq. (4) at the input of each of the 4 levels.
 */
export class RestormerEncoder {
  readonly embed: Conv2d;
  readonly enc: TransformerBlock[][];
  readonly down: Downsample[];
  readonly latent: TransformerBlock[];
  readonly fuse?: TransformerFusion[];
  readonly levelChannels: number[];
  constructor(p: Params, readonly prefix: string, cfg: RestormerConfig, rng: Rng, fusion?: FusionSpec) {
    const d = cfg.dim;
    this.levelChannels = [d, 2 * d, 4 * d, 8 * d];
    cfg.heads.forEach((h, l) => {
      if (this.levelChannels[l] % h !== 0) throw new Error(`${prefix}: level ${l + 1} width ${this.levelChannels[l]} not divisible by heads[${l}] = ${h}`);
    });
    if (fusion && fusion.channels.length !== 4) throw new Error(`${prefix}: fusion needs F̂g channels for 4 levels, got ${fusion.channels.length}`);
    this.embed = new Conv2d(p, `${prefix}.embed`, 3, d, rng, { bias: cfg.bias });
    this.enc = [0, 1, 2].map((l) => Array.from({ length: cfg.blocks[l] }, (_, i) => new TransformerBlock(p, `${prefix}.enc${l + 1}.${i}`, this.levelChannels[l], cfg.heads[l], cfg, rng)));
    this.down = [0, 1, 2].map((l) => new Downsample(p, `${prefix}.down${l + 1}`, this.levelChannels[l], rng));
    this.latent = Array.from({ length: cfg.blocks[3] }, (_, i) => new TransformerBlock(p, `${prefix}.latent.${i}`, 8 * d, cfg.heads[3], cfg, rng));
    if (fusion) {
      this.fuse = fusion.channels.map((cg, l) => new TransformerFusion(p, `${fusion.prefix}.fuse${l}`, this.levelChannels[l], cg, fuseHeads(this.levelChannels[l] + cg, cfg.heads[l]), cfg, fusion.rng ?? rng));
    }
  }
  /**
   * @param x [B,H,W,3], H and W multiples of 8
   * @param guidance F̂g at levels 0..3 (or none)
   * @returns skips [enc1 [B,H,W,d], enc2, enc3] and latent [B,H/8,W/8,8d]
   */
  call(x: tf.Tensor4D, guidance?: tf.Tensor4D[]): { skips: tf.Tensor4D[]; latent: tf.Tensor4D } {
    const fuse = (h: tf.Tensor4D, l: number) => (guidance && this.fuse ? replaced(h, this.fuse[l].call(h, guidance[l])) : h);
    let h = this.embed.call(x);
    const skips: tf.Tensor4D[] = [];
    for (let l = 0; l < 3; l++) {
      h = fuse(h, l);
      h = replaced(h, runBlocks(this.enc[l], h));
      skips.push(h);
      h = this.down[l].call(h);
    }
    h = fuse(h, 3);
    return { skips, latent: replaced(h, runBlocks(this.latent, h)) };
  }
}

/** Heads for a fusion block of width c: the level's heads when they divide c, else 1. */
export function fuseHeads(c: number, heads: number): number {
  return c % heads === 0 ? heads : 1;
}

/**
 * The Restormer decoder shared by Restormer and PromptIR: for decoder levels 3, 2, 1 an optional
 * hook (PromptIR's prompt interaction), pixel-shuffle up, concatenation with the encoder skip, 1×1
 * reduction (levels 3, 2), transformer blocks; then refinement blocks, a 3×3 output conv and the
 * global residual. `upIn` are the widths entering the three up-samplers (Restormer 8d, 4d, 2d;
 * PromptIR 4d, 4d, 2d after its prompt reductions). Parameter names: <prefix>.up3/up2/up1,
 * reduce3/reduce2, dec3/dec2/dec1, refine, out (those of the shipped checkpoints).
 */
export class RestormerDecoder {
  readonly up: Upsample[];
  readonly reduce: Conv2d[];
  readonly dec: TransformerBlock[][];
  readonly refinement: TransformerBlock[];
  readonly out: Conv2d;
  constructor(p: Params, prefix: string, cfg: RestormerConfig, upIn: [number, number, number], rng: Rng) {
    const d = cfg.dim;
    this.up = upIn.map((c, i) => new Upsample(p, `${prefix}.up${3 - i}`, c, rng));
    // reduce input = upsampled (c/2) ⊕ the skip of encoder level 3 (4d) or 2 (2d); output 4d, 2d
    this.reduce = [4 * d, 2 * d].map((skip, i) => new Conv2d(p, `${prefix}.reduce${3 - i}`, upIn[i] / 2 + skip, skip, rng, { k: 1, bias: cfg.bias }));
    this.dec = [
      Array.from({ length: cfg.blocks[2] }, (_, i) => new TransformerBlock(p, `${prefix}.dec3.${i}`, 4 * d, cfg.heads[2], cfg, rng)),
      Array.from({ length: cfg.blocks[1] }, (_, i) => new TransformerBlock(p, `${prefix}.dec2.${i}`, 2 * d, cfg.heads[1], cfg, rng)),
      Array.from({ length: cfg.blocks[0] }, (_, i) => new TransformerBlock(p, `${prefix}.dec1.${i}`, 2 * d, cfg.heads[0], cfg, rng)),
    ];
    this.refinement = Array.from({ length: cfg.refinement }, (_, i) => new TransformerBlock(p, `${prefix}.refine.${i}`, 2 * d, cfg.heads[0], cfg, rng));
    this.out = new Conv2d(p, `${prefix}.out`, 2 * d, 3, rng, { bias: cfg.bias });
  }
  /**
   * @param xp the padded input [B,H,W,3] (global residual) @param skips enc1..enc3 @param latent [B,H/8,W/8,8d]
   * @param before applied to the features entering decoder level 3 − i (i = 0, 1, 2)
   */
  call(xp: tf.Tensor4D, skips: tf.Tensor4D[], latent: tf.Tensor4D, before?: (y: tf.Tensor4D, i: number) => tf.Tensor4D): tf.Tensor4D {
    // intermediates are disposed as soon as they are consumed (`replaced`); latent and skips are the caller's
    let y = latent;
    for (let i = 0; i < 3; i++) {
      if (before) y = replaced(y, before(y, i), latent);
      const up = this.up[i].call(y);
      y = replaced(y, tf.concat([up, skips[2 - i]], 3) as tf.Tensor4D, latent);
      up.dispose();
      if (i < 2) y = replaced(y, this.reduce[i].call(y));
      y = replaced(y, runBlocks(this.dec[i], y));
    }
    y = replaced(y, runBlocks(this.refinement, y));
    // to 3 channels: oneDNN's 3×3 conv 48→3 at 512² takes 340 ms, one matMul to the 27 tap outputs and
    // their shifted sum ≈ 40 ms (`conv3x3ByTaps`)
    const out = tf.getBackend() === 'tensorflow' ? conv3x3ByTaps(y, this.out.w as tf.Tensor4D, this.out.b) : this.out.call(y);
    y.dispose();
    return replaced(out, tf.add(out, xp) as tf.Tensor4D);
  }
}

export class Restormer implements RestorationBackbone {
  readonly cfg: RestormerConfig;
  readonly levels = 4;
  readonly sizeMultiple = 8;
  readonly encoder: RestormerEncoder;
  readonly decoder: RestormerDecoder;
  constructor(p: Params, readonly prefix: string, cfgIn: z.input<typeof RestormerConfigSchema>, rng: Rng, readonly fusion?: FusionSpec) {
    const cfg = (this.cfg = RestormerConfigSchema.parse(cfgIn));
    const d = cfg.dim;
    this.encoder = new RestormerEncoder(p, prefix, cfg, rng, fusion);
    this.decoder = new RestormerDecoder(p, prefix, cfg, [8 * d, 4 * d, 2 * d], rng);
  }
  get levelChannels(): number[] {
    return this.encoder.levelChannels;
  }
  call(x: tf.Tensor4D, guidance?: tf.Tensor4D[]): tf.Tensor4D {
    checkImage(this.prefix, 'x', x);
    return tf.tidy(() => {
      const [b, h, w] = x.shape;
      const xp = padToMultiple(x, this.sizeMultiple);
      checkGuidance(this.prefix, this.fusion, guidance, b, xp.shape[1], xp.shape[2]);
      const { skips, latent } = this.encoder.call(xp, guidance);
      return cropTo(this.decoder.call(xp, skips, latent), h, w);
    });
  }
}
