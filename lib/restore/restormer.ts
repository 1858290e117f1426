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
import { FusionSpec, RestorationBackbone, channelCorrelation, checkGuidance, checkImage, chunk2, cropTo, geluErf, padToMultiple, pixelShuffle, pixelUnshuffle, replaced, runBlocks } from './layers';

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
}

type Norm = { call<T extends tf.Tensor>(x: T): T };
function makeNorm(p: Params, name: string, c: number, kind: RestormerConfig['layerNorm']): Norm {
  return kind === 'biasFree' ? new BiasFreeLayerNorm(p, name, c) : new LayerNorm(p, name, c);
}

/** Multi-Dconv head transposed attention: attention over channels (C/h × C/h per head), cost linear in H·W. */
export class MDTA {
  readonly qkv: Conv2d;
  readonly dw: DepthwiseConv2d;
  readonly proj: Conv2d;
  readonly temperature: tf.Variable;
  constructor(p: Params, readonly name: string, readonly c: number, readonly heads: number, bias: boolean, rng: Rng) {
    if (c % heads !== 0) throw new Error(`${name}: channels ${c} not divisible by heads ${heads}`);
    this.qkv = new Conv2d(p, `${name}.qkv`, c, 3 * c, rng, { k: 1, bias });
    this.dw = new DepthwiseConv2d(p, `${name}.dw`, 3 * c, rng, { bias });
    this.proj = new Conv2d(p, `${name}.proj`, c, c, rng, { k: 1, bias });
    this.temperature = p.add(`${name}.temperature`, [heads], init.ones());
  }
  /** @param x [B,H,W,C] → [B,H,W,C] */
  call(x: tf.Tensor4D): tf.Tensor4D {
    const [b, h, w, c] = x.shape;
    const nh = this.heads;
    const ch = c / nh;
    return tf.tidy(() => {
      // intermediates freed once consumed (inference memory), as in GDFN
      const a = this.qkv.call(x);
      const d = replaced(a, this.dw.call(a));
      const [q, k, v] = tf.split(d, 3, 3) as tf.Tensor4D[];
      d.dispose();
      const toHeads = (t: tf.Tensor4D) => {
        const r = t.reshape([b, h * w, nh, ch]).transpose([0, 2, 3, 1]) as tf.Tensor4D; // [B,heads,ch,HW]
        t.dispose();
        return r;
      };
      const qt = toHeads(q);
      const kt = toHeads(k);
      // q̂ k̂ᵀ, q and k normalised over all pixels (of the whole image in a tiled pass: channelCorrelation)
      const corr = channelCorrelation(qt, kt, h, w);
      tf.dispose([qt, kt]);
      const logits = replaced(corr, tf.mul(corr, this.temperature.reshape([1, nh, 1, 1])) as tf.Tensor4D); // [B,heads,ch,ch]
      const out = tf.matMul(tf.softmax(logits, -1), toHeads(v)); // [B,heads,ch,HW]
      const o = out.transpose([0, 3, 1, 2]).reshape([b, h, w, c]) as tf.Tensor4D;
      out.dispose();
      return replaced(o, this.proj.call(o));
    });
  }
}

/** Gated-Dconv feed-forward network: 1×1 → depthwise 3×3 → GELU(x1)·x2 → 1×1. */
export class GDFN {
  readonly pin: Conv2d;
  readonly dw: DepthwiseConv2d;
  readonly pout: Conv2d;
  constructor(p: Params, readonly name: string, c: number, expansion: number, bias: boolean, rng: Rng) {
    const hidden = Math.floor(c * expansion);
    this.pin = new Conv2d(p, `${name}.pin`, c, 2 * hidden, rng, { k: 1, bias });
    this.dw = new DepthwiseConv2d(p, `${name}.dw`, 2 * hidden, rng, { bias });
    this.pout = new Conv2d(p, `${name}.pout`, hidden, c, rng, { k: 1, bias });
  }
  call(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      // each intermediate is freed once consumed (inference peak ≈ two hidden-width maps, not six)
      const a = this.pin.call(x);
      const d = replaced(a, this.dw.call(a));
      const [x1, x2] = chunk2(d);
      d.dispose();
      const act = replaced(x1, geluErf(x1));
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
    const y = tf.tidy(() => tf.add(x, this.attn.call(this.norm1.call(x))) as tf.Tensor4D);
    return replaced(y, tf.tidy(() => tf.add(y, this.ffn.call(this.norm2.call(y))) as tf.Tensor4D));
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
    const out = this.out.call(y);
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
