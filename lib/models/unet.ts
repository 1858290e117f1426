/**
 * Conditional UNet ε_θ(z_t, t, c) of latent diffusion: predicts the noise in latents z_t [B,h,w,C]
 * at timestep t, conditioned on a text context c [B,T,Dctx] through cross-attention.
 *
 * Paper: Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models", CVPR 2022
 *   (the ε_θ of Eq. (1) of the TextualDegRemoval paper, Sec. 3.1).
 * Reference: huggingface/diffusers `models/unets/unet_2d_condition.py` (58eb52c) with
 *   CrossAttnDownBlock2D / UNetMidBlock2DCrossAttn / CrossAttnUpBlock2D, ResnetBlock2D,
 *   Transformer2DModel + BasicTransformerBlock; same block order and skip bookkeeping.
 * Deviations (sized for a CPU): GroupNorm with `groups` (8) instead of 32; a plain GELU
 *   MLP instead of GEGLU; one transformer block per attention site; Attention's output projection
 *   is zero-initialised (nn.Attention), so every attention branch starts as identity; only the
 *   final output conv is zero-initialised (as LDM's `zero_module`), so at init ε_θ ≡ 0 and only
 *   `convOut` receives gradient in the very first step.
 *
 * Layout (L = channels.length levels, level i at resolution h/2^i):
 *   convIn 3×3 C→ch0
 *   down i: resBlocks × [ResBlock → SpatialTransformer if i ∈ attentionLevels], then (i < L−1) a
 *           stride-2 3×3 conv; every output is kept as a skip
 *   mid:    ResBlock → SpatialTransformer (midAttention) → ResBlock at ch_{L−1}
 *   up i (i = L−1 … 0): (resBlocks + 1) × [concat(skip) → ResBlock → SpatialTransformer if i ∈ attentionLevels],
 *           then (i > 0) nearest ×2 + 3×3 conv
 *   out:    GroupNorm → SiLU → convOut 3×3 ch0→C (zero-init)
 * Timestep: sinusoidal(t, ch0) → Linear(ch0, timeDim) → SiLU → Linear(timeDim, timeDim); each ResBlock
 *   adds Linear(SiLU(emb)) to its features after the first conv.
 * Pooled text (`pooledText`, beyond SD): emb += Linear(mean_T ctx), as GLIDE (Nichol et al. 2022, final
 *   token) and Imagen (Saharia et al. 2022, pooled embedding) add text to the timestep embedding. SD
 *   conditions through cross-attention only; a small UNet trained from scratch on CPU learns the
 *   content of a caption much faster with this global path (measured: `tdr t2i-check`, content retrieval).
 *
 * ELITE-style k/v copies (the official `inj_forward_crossattention`, scripts/train/main_train_i2t_mapping.py): `crossAttentionKV()` lists every cross-attention ("attn2")
 * with its key/value Linear layers by name; `call(…, {kvOverride})` uses replacement layers for the
 * names in the map (the M_i2t stage trains such copies while the UNet stays frozen).
 *
 * Cost (forward, from `unetFlops`; multiply-add = 2 FLOP; GroupNorm/LayerNorm/softmax/elementwise
 * not counted): the demo preset's UNet (`unet` of lib/t2i/presets.ts) on 32×32×4 latents with a
 * 16-token context ≈ 0.65 GFLOP per sample, so a train step at batch 16 (forward + 2× backward ≈ 3×
 * forward) ≈ 31 GFLOP; measured step times: docs/experiments.md §1.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { Params, init } from './params';
import { Conv2d, Linear, GroupNorm, LayerNorm, Attention, TensorMemo, silu, gelu, timestepEmbedding, positionalEmbedding2d } from './nn';
import { Rng } from '../util/rng';

export const UNetConfigSchema = z
  .strictObject({
    latentChannels: z.number().int().positive().default(4).describe('C: channels of the latents z (SD autoencoder: 4)'),
    channels: z.array(z.number().int().positive()).min(1).default([64, 128, 128]).describe('feature channels per level; level i runs at h/2^i'),
    resBlocks: z.number().int().positive().default(1).describe('ResBlocks per level on the way down (resBlocks + 1 on the way up, as SD)'),
    attentionLevels: z.array(z.number().int().nonnegative()).default([1, 2]).describe('levels whose ResBlocks are followed by a cross-attention transformer block'),
    midAttention: z.boolean().default(true).describe('transformer block between the two middle ResBlocks'),
    heads: z.number().int().positive().default(4).describe('attention heads (head width = channels / heads)'),
    ctxDim: z.number().int().positive().default(128).describe('Dctx: width of the text context tokens [B,T,Dctx]'),
    timeDim: z.number().int().positive().default(256).describe('width of the timestep embedding MLP (SD: 4·ch0)'),
    pooledText: z
      .boolean()
      .default(false)
      .describe('also add Linear(mean over tokens of ctx) to the timestep embedding (GLIDE/Imagen pooled text conditioning): a global path for content into every ResBlock'),
    positional: z
      .boolean()
      .default(false)
      .describe('cross-attention queries also see where they are: + Linear(2-D sinusoidal code of the position), the Linear zero-initialised (beyond SD; so that words tied to regions can be drawn there)'),
    layout: z
      .strictObject({
        grid: z.number().int().min(2).max(32).describe('side of the map of learned queries'),
        channels: z.number().int().positive().describe('channels of the map concatenated to z_t'),
        heads: z.number().int().positive().default(4),
      })
      .optional()
      .describe('a coarse spatial map read from the text context (grid² learned, positioned queries cross-attend to ctx, a zero-initialised Linear to `channels`), upsampled and concatenated to z_t at the input, as image-conditioned diffusion models (SR3, Palette) condition on a map; beyond SD; absent: none'),
    groups: z.number().int().positive().default(8).describe('GroupNorm groups (SD: 32); must divide every channel count'),
    ffMult: z.number().int().positive().default(4).describe('hidden width of the transformer MLP = ffMult · channels'),
  })
  .superRefine((c, ctx) => {
    c.channels.forEach((ch, i) => {
      if (ch % c.groups !== 0) ctx.addIssue({ code: 'custom', path: ['channels', i], message: `channels[${i}] = ${ch} is not divisible by groups = ${c.groups}` });
    });
    c.attentionLevels.forEach((l, i) => {
      if (l >= c.channels.length) {
        ctx.addIssue({ code: 'custom', path: ['attentionLevels', i], message: `attention level ${l} does not exist: channels has ${c.channels.length} levels (0 … ${c.channels.length - 1})` });
      } else if (c.channels[l] % c.heads !== 0) {
        ctx.addIssue({ code: 'custom', path: ['attentionLevels', i], message: `channels[${l}] = ${c.channels[l]} is not divisible by heads = ${c.heads}` });
      }
    });
    const last = c.channels[c.channels.length - 1];
    if (c.midAttention && last % c.heads !== 0) ctx.addIssue({ code: 'custom', path: ['heads'], message: `middle channels ${last} not divisible by heads = ${c.heads}` });
  });
export type UNetConfig = z.infer<typeof UNetConfigSchema>;

/** GroupNorm → SiLU → conv3×3 → + time → GroupNorm → SiLU → conv3×3, plus a (1×1 when cin ≠ cout) skip. */
class ResBlock {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly temb: Linear;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly skip?: Conv2d;
  constructor(p: Params, readonly name: string, readonly cin: number, readonly cout: number, timeDim: number, groups: number, rng: Rng) {
    this.norm1 = new GroupNorm(p, `${name}.norm1`, cin, groups);
    this.conv1 = new Conv2d(p, `${name}.conv1`, cin, cout, rng);
    this.temb = new Linear(p, `${name}.temb`, timeDim, cout, rng);
    this.norm2 = new GroupNorm(p, `${name}.norm2`, cout, groups);
    this.conv2 = new Conv2d(p, `${name}.conv2`, cout, cout, rng);
    if (cin !== cout) this.skip = new Conv2d(p, `${name}.skip`, cin, cout, rng, { k: 1 });
  }
  /** @param x [B,h,w,cin]  @param embAct SiLU(time embedding) [B,timeDim]  @returns [B,h,w,cout] */
  call(x: tf.Tensor4D, embAct: tf.Tensor2D): tf.Tensor4D {
    let h = this.conv1.call(silu(this.norm1.call(x)));
    h = tf.add(h, this.temb.call(embAct).reshape([x.shape[0], 1, 1, this.cout]));
    h = this.conv2.call(silu(this.norm2.call(h)));
    return tf.add(this.skip ? this.skip.call(x) : x, h);
  }
}

/**
 * Spatial transformer (SD's Transformer2DModel with one BasicTransformerBlock):
 * GroupNorm → 1×1 conv in → [LN → self-attn, LN → cross-attn to ctx, LN → GELU MLP] (each residual)
 * → 1×1 conv out → + x.
 */
class SpatialTransformer {
  readonly norm: GroupNorm;
  readonly projIn: Conv2d;
  readonly ln1: LayerNorm;
  readonly attn1: Attention;
  readonly ln2: LayerNorm;
  /** cross-attention: q from the image tokens, k/v from the text context */
  readonly attn2: Attention;
  readonly ln3: LayerNorm;
  readonly ff1: Linear;
  readonly ff2: Linear;
  readonly projOut: Conv2d;
  /** positional: the projection of the position code added to the cross-attention queries */
  readonly pos?: Linear;
  constructor(p: Params, readonly name: string, readonly c: number, cfg: UNetConfig, rng: Rng) {
    this.norm = new GroupNorm(p, `${name}.norm`, c, cfg.groups);
    this.projIn = new Conv2d(p, `${name}.projIn`, c, c, rng, { k: 1 });
    this.ln1 = new LayerNorm(p, `${name}.ln1`, c);
    this.attn1 = new Attention(p, `${name}.attn1`, c, c, cfg.heads, rng);
    this.ln2 = new LayerNorm(p, `${name}.ln2`, c);
    this.attn2 = new Attention(p, `${name}.attn2`, c, cfg.ctxDim, cfg.heads, rng);
    this.ln3 = new LayerNorm(p, `${name}.ln3`, c);
    this.ff1 = new Linear(p, `${name}.ff1`, c, c * cfg.ffMult, rng);
    this.ff2 = new Linear(p, `${name}.ff2`, c * cfg.ffMult, c, rng);
    this.projOut = new Conv2d(p, `${name}.projOut`, c, c, rng, { k: 1 });
    if (cfg.positional) this.pos = new Linear(p, `${name}.pos`, c, c, rng, { bias: false, zeroInit: true });
  }
  /** @param x [B,h,w,c]  @param ctx [B,T,Dctx]  @param kv replacement k/v of attn2  @returns [B,h,w,c] */
  call(x: tf.Tensor4D, ctx: tf.Tensor3D, kv?: { k: Linear; v: Linear }, memo?: TensorMemo): tf.Tensor4D {
    const [b, h, w, c] = x.shape;
    let s = this.projIn.call(this.norm.call(x)).reshape([b, h * w, c]) as tf.Tensor3D; // [B,hw,c]
    const n1 = this.ln1.call(s);
    s = tf.add(s, this.attn1.call(n1, n1));
    let q = this.ln2.call(s);
    if (this.pos) {
      const pos = () => this.pos!.call(positionalEmbedding2d(h, w, c).reshape([1, h * w, c]) as tf.Tensor3D);
      q = tf.add(q, memo ? memo.get(`${this.name}:pos:${h}x${w}`, pos) : pos()); // where each query is
    }
    s = tf.add(s, this.attn2.call(q, ctx, { kv, memo }));
    s = tf.add(s, this.ff2.call(gelu(this.ff1.call(this.ln3.call(s)))));
    return tf.add(x, this.projOut.call(s.reshape([b, h, w, c]) as tf.Tensor4D)); // [B,h,w,c]
  }
}

/** One ResBlock, optionally followed by a transformer block. */
interface Layer {
  res: ResBlock;
  attn?: SpatialTransformer;
}

export interface UNetCallOptions {
  /** replacement key/value projections by cross-attention name (see `crossAttentionKV`) */
  kvOverride?: Map<string, { k: Linear; v: Linear }>;
  /**
   * Sampling: keep what depends only on the context and the weights (cross-attention k/v, position
   * codes, pooled-text time term, layout map) for the next steps of the same run (`TensorMemo`).
   */
  memo?: TensorMemo;
}

export class UNet {
  readonly cfg: UNetConfig;
  readonly convIn: Conv2d;
  /** layout: grid² positioned queries → cross-attention to ctx → Linear to a [grid,grid,channels] map (see the config) */
  readonly layout?: { queries: tf.Variable; norm: LayerNorm; attn: Attention; out: Linear };
  readonly time1: Linear;
  readonly time2: Linear;
  /** pooled text → timestep embedding (only when cfg.pooledText) */
  readonly textToTime?: Linear;
  readonly down: Array<{ layers: Layer[]; downsample?: Conv2d }> = [];
  readonly mid: { res0: ResBlock; attn?: SpatialTransformer; res1: ResBlock };
  readonly up: Array<{ level: number; layers: Layer[]; upsample?: Conv2d }> = [];
  readonly outNorm: GroupNorm;
  readonly convOut: Conv2d;
  private readonly transformers: SpatialTransformer[] = [];

  /**
   * @param params store the weights are created in (names `${prefix}.…`)
   * @param cfg parsed by `UNetConfigSchema` (defaults filled in; unknown keys rejected)
   * @param rng initialisation (same seed → same weights on every backend)
   */
  constructor(readonly params: Params, readonly prefix: string, cfg: z.input<typeof UNetConfigSchema>, rng: Rng) {
    const parsed = UNetConfigSchema.safeParse(cfg);
    if (!parsed.success) throw new Error(`UNet config (${prefix}):\n${z.prettifyError(parsed.error)}`);
    const c = (this.cfg = parsed.data);
    const ch = c.channels;
    const L = ch.length;
    const P = prefix;
    const attnAt = new Set(c.attentionLevels);
    const mkAttn = (name: string, width: number) => {
      const t = new SpatialTransformer(params, name, width, c, rng);
      this.transformers.push(t);
      return t;
    };

    this.convIn = new Conv2d(params, `${P}.convIn`, c.latentChannels + (c.layout?.channels ?? 0), ch[0], rng);
    if (c.layout) {
      const g = c.layout.grid;
      // queries = a learned part (small init) + the fixed 2-D position code of each cell
      const pe = positionalEmbedding2d(g, g, c.ctxDim);
      const peData = pe.dataSync() as Float32Array;
      pe.dispose();
      const q = params.add(`${P}.layout.queries`, [g * g, c.ctxDim], (n) => {
        const r = init.normal(rng, 0.02)(n);
        for (let i = 0; i < n; i++) r[i] += peData[i];
        return r;
      });
      this.layout = {
        queries: q,
        norm: new LayerNorm(params, `${P}.layout.norm`, c.ctxDim),
        attn: new Attention(params, `${P}.layout.attn`, c.ctxDim, c.ctxDim, c.layout.heads, rng),
        out: new Linear(params, `${P}.layout.out`, c.ctxDim, c.layout.channels, rng, { zeroInit: true }),
      };
    }
    this.time1 = new Linear(params, `${P}.time1`, ch[0], c.timeDim, rng);
    this.time2 = new Linear(params, `${P}.time2`, c.timeDim, c.timeDim, rng);
    if (c.pooledText) this.textToTime = new Linear(params, `${P}.textToTime`, c.ctxDim, c.timeDim, rng);

    // down path; skipCh records the channels of every skip in push order
    const skipCh = [ch[0]];
    let cur = ch[0];
    for (let i = 0; i < L; i++) {
      const layers: Layer[] = [];
      for (let j = 0; j < c.resBlocks; j++) {
        const res = new ResBlock(params, `${P}.down${i}.res${j}`, cur, ch[i], c.timeDim, c.groups, rng);
        cur = ch[i];
        layers.push({ res, attn: attnAt.has(i) ? mkAttn(`${P}.down${i}.attn${j}`, cur) : undefined });
        skipCh.push(cur);
      }
      const downsample = i < L - 1 ? new Conv2d(params, `${P}.down${i}.downsample`, cur, cur, rng, { stride: 2 }) : undefined;
      if (downsample) skipCh.push(cur);
      this.down.push({ layers, downsample });
    }

    this.mid = {
      res0: new ResBlock(params, `${P}.mid.res0`, cur, cur, c.timeDim, c.groups, rng),
      attn: c.midAttention ? mkAttn(`${P}.mid.attn`, cur) : undefined,
      res1: new ResBlock(params, `${P}.mid.res1`, cur, cur, c.timeDim, c.groups, rng),
    };

    for (let i = L - 1; i >= 0; i--) {
      const layers: Layer[] = [];
      for (let j = 0; j <= c.resBlocks; j++) {
        const skip = skipCh.pop()!;
        const res = new ResBlock(params, `${P}.up${i}.res${j}`, cur + skip, ch[i], c.timeDim, c.groups, rng);
        cur = ch[i];
        layers.push({ res, attn: attnAt.has(i) ? mkAttn(`${P}.up${i}.attn${j}`, cur) : undefined });
      }
      const upsample = i > 0 ? new Conv2d(params, `${P}.up${i}.upsample`, cur, cur, rng) : undefined;
      this.up.push({ level: i, layers, upsample });
    }
    if (skipCh.length !== 0) throw new Error(`UNet (${prefix}): internal error, ${skipCh.length} skips unused`);

    this.outNorm = new GroupNorm(params, `${P}.outNorm`, ch[0], c.groups);
    this.convOut = new Conv2d(params, `${P}.convOut`, ch[0], c.latentChannels, rng, { zeroInit: true });
  }

  /** Every cross-attention's key/value projections, by the attention's name (e.g. `unet.down1.attn0.attn2`). */
  crossAttentionKV(): Array<{ name: string; k: Linear; v: Linear }> {
    const all = this.transformers.map((t) => ({ name: t.attn2.name, k: t.attn2.k, v: t.attn2.v }));
    if (this.layout) all.push({ name: this.layout.attn.name, k: this.layout.attn.k, v: this.layout.attn.v }); // it reads the text too
    return all;
  }

  /** Spatial size divisor: h and w must be multiples of 2^(levels−1). */
  get sizeMultiple(): number {
    return 2 ** (this.cfg.channels.length - 1);
  }

  /**
   * ε_θ(z_t, t, c).
   * @param x z_t [B,h,w,C] float32 latents (h, w multiples of 2^(levels−1))
   * @param t [B] timesteps in [0, numTrainSteps) (int32 or float32)
   * @param ctx [B,T,Dctx] text context (token embeddings after the text encoder)
   * @param opts.kvOverride replacement k/v Linear layers by cross-attention name
   * @returns predicted noise ε [B,h,w,C]
   * @throws naming the argument, expected and received shapes
   */
  call(x: tf.Tensor4D, t: tf.Tensor1D, ctx: tf.Tensor3D, opts: UNetCallOptions = {}): tf.Tensor4D {
    this.validate(x, t, ctx, opts);
    return tf.tidy(() => {
      const memo = opts.memo;
      const memoised = <T extends tf.Tensor>(key: string, make: () => T): T => (memo ? memo.get(`${ctx.id}:${key}`, make) : make());
      const kvFor = (a?: SpatialTransformer) => (a ? opts.kvOverride?.get(a.attn2.name) : undefined);
      const run = (l: Layer, h: tf.Tensor4D, e: tf.Tensor2D) => {
        const r = l.res.call(h, e);
        return l.attn ? l.attn.call(r, ctx, kvFor(l.attn), memo) : r;
      };
      let emb = this.time2.call(silu(this.time1.call(timestepEmbedding(t, this.cfg.channels[0])))); // [B,timeDim]
      if (this.textToTime) emb = tf.add(emb, memoised('textToTime', () => this.textToTime!.call(tf.mean(ctx, 1) as tf.Tensor2D))); // pooled text
      const e = silu(emb);

      const [, lh, lw] = x.shape;
      const layoutKv = this.layout ? opts.kvOverride?.get(this.layout.attn.name) : undefined;
      let h = this.convIn.call(this.layout ? tf.concat([x, memoised(`layout:${lh}x${lw}:${layoutKv ? 'kv-copies' : 'kv'}`, () => this.layoutMap(ctx, lh, lw, layoutKv))], 3) : x); // [B,h,w,ch0]
      const skips: tf.Tensor4D[] = [h];
      for (const lvl of this.down) {
        for (const l of lvl.layers) skips.push((h = run(l, h, e)));
        if (lvl.downsample) skips.push((h = lvl.downsample.call(h))); // [B,h/2,w/2,c]
      }
      h = this.mid.res0.call(h, e);
      if (this.mid.attn) h = this.mid.attn.call(h, ctx, kvFor(this.mid.attn), memo);
      h = this.mid.res1.call(h, e);
      for (const lvl of this.up) {
        for (const l of lvl.layers) h = run(l, tf.concat([h, skips.pop()!], 3), e);
        if (lvl.upsample) {
          const [, hh, ww] = h.shape;
          h = lvl.upsample.call(tf.image.resizeNearestNeighbor(h, [hh * 2, ww * 2])); // [B,2h,2w,c]
        }
      }
      return this.convOut.call(silu(this.outNorm.call(h))); // [B,h,w,C]
    });
  }

  /**
   * The layout map of a context: grid² queries attend to ctx, → Linear → [B,grid,grid,channels],
   * bilinearly resized to the latent size h×w.
   */
  layoutMap(ctx: tf.Tensor3D, h: number, w: number, kv?: { k: Linear; v: Linear }): tf.Tensor4D {
    const L = this.layout!;
    const g = this.cfg.layout!.grid;
    return tf.tidy(() => {
      const b = ctx.shape[0];
      const q = tf.tile(L.queries.reshape([1, g * g, this.cfg.ctxDim]), [b, 1, 1]) as tf.Tensor3D;
      const a = tf.add(q, L.attn.call(L.norm.call(q), ctx, { kv })) as tf.Tensor3D; // [B,g²,D]
      const m = L.out.call(a).reshape([b, g, g, this.cfg.layout!.channels]) as tf.Tensor4D;
      return g === h && g === w ? m : tf.image.resizeBilinear(m, [h, w], true);
    });
  }

  /**
   * The words' layout objective (T2I `words.layoutLoss`): mean squared error between the context's layout
   * map at the layout grid (its first latentChannels channels) and the latents z average-pooled to that grid.
   * @param z [B,h,w,latentChannels] scaled latents, h and w multiples of the layout grid
   * @param kv replacement key/value layers of the layout attention (guidance's k/v copies)
   * @throws Error when this UNet has no layout head
   */
  layoutLoss(ctx: tf.Tensor3D, z: tf.Tensor4D, kv?: { k: Linear; v: Linear }): tf.Scalar {
    if (!this.layout) throw new Error('UNet.layoutLoss: this UNet has no layout head (unet.layout)');
    const g = this.cfg.layout!.grid;
    const [, h, w, c] = z.shape;
    if (h % g !== 0 || w % g !== 0 || c > this.cfg.layout!.channels) throw new Error(`UNet.layoutLoss: latents [${z.shape}] must be a multiple of the layout grid ${g} with ≤ ${this.cfg.layout!.channels} channels`);
    return tf.tidy(() => {
      const m = this.layoutMap(ctx, g, g, kv).slice([0, 0, 0, 0], [-1, -1, -1, c]); // [B,g,g,C]
      const target = tf.avgPool(z, [h / g, w / g], [h / g, w / g], 'valid'); // [B,g,g,C]
      return tf.mean(tf.square(tf.sub(m, target))) as tf.Scalar;
    });
  }

  private validate(x: tf.Tensor, t: tf.Tensor, ctx: tf.Tensor, opts: UNetCallOptions): void {
    const c = this.cfg;
    const m = this.sizeMultiple;
    if (x.rank !== 4) throw new Error(`UNet.call: x must be [B,h,w,${c.latentChannels}], got [${x.shape}]`);
    const [b, h, w, ch] = x.shape;
    if (ch !== c.latentChannels) throw new Error(`UNet.call: x [${x.shape}] has ${ch} channels, expected latentChannels = ${c.latentChannels}`);
    if (h % m !== 0 || w % m !== 0) {
      throw new Error(`UNet.call: latent size ${h}×${w} must be divisible by 2^(levels−1) = ${m} (${c.channels.length} levels); pad or crop to a multiple of ${m}`);
    }
    if (t.rank !== 1 || t.shape[0] !== b) throw new Error(`UNet.call: t must be [${b}] (one timestep per sample of x [${x.shape}]), got [${t.shape}]`);
    if (ctx.rank !== 3 || ctx.shape[0] !== b || ctx.shape[2] !== c.ctxDim) {
      throw new Error(`UNet.call: ctx must be [${b},T,${c.ctxDim}] (batch of x, ctxDim), got [${ctx.shape}]`);
    }
    if (opts.kvOverride) {
      const widths = new Map(this.transformers.map((tr) => [tr.attn2.name, tr.c]));
      if (this.layout) widths.set(this.layout.attn.name, c.ctxDim);
      const known = new Set(widths.keys());
      for (const [name, kv] of opts.kvOverride) {
        if (!known.has(name)) throw new Error(`UNet.call: kvOverride has '${name}', which is not a cross-attention of this UNet (e.g. '${[...known][0]}'; see crossAttentionKV())`);
        const d = widths.get(name)!;
        for (const [which, lin] of [['k', kv.k], ['v', kv.v]] as const) {
          if (lin.din !== c.ctxDim || lin.dout !== d) throw new Error(`UNet.call: kvOverride '${name}'.${which} maps ${lin.din}→${lin.dout}, expected ${c.ctxDim}→${d}`);
        }
      }
    }
  }
}

/**
 * Forward FLOPs of one sample (multiply-add = 2 FLOP): convolutions, linear layers and attention
 * matmuls only (norms, activations and additions are a few % more).
 * @param h, w latent size  @param tokens context length T
 */
export function unetFlops(cfgIn: z.input<typeof UNetConfigSchema>, h: number, w: number, tokens: number): number {
  const c = UNetConfigSchema.parse(cfgIn);
  const ch = c.channels;
  const L = ch.length;
  const attnAt = new Set(c.attentionLevels);
  const conv = (k: number, cin: number, cout: number, px: number) => 2 * k * k * cin * cout * px;
  const res = (cin: number, cout: number, px: number) => conv(3, cin, cout, px) + conv(3, cout, cout, px) + (cin !== cout ? conv(1, cin, cout, px) : 0) + 2 * c.timeDim * cout;
  const tr = (d: number, px: number) =>
    2 * conv(1, d, d, px) + // projIn, projOut
    2 * px * d * d * 4 + 2 * 2 * px * px * d + // self-attn q,k,v,o + QKᵀ, AV
    2 * px * d * d * 2 + 2 * tokens * c.ctxDim * d * 2 + 2 * 2 * px * tokens * d + // cross-attn q,o + k,v + QKᵀ, AV
    2 * 2 * px * d * d * c.ffMult; // MLP
  let f = conv(3, c.latentChannels + (c.layout?.channels ?? 0), ch[0], h * w) + 2 * (ch[0] * c.timeDim + c.timeDim * c.timeDim);
  if (c.layout) {
    const q = c.layout.grid ** 2;
    const d = c.ctxDim;
    f += 2 * q * d * d * 2 + 2 * tokens * d * d * 2 + 2 * 2 * q * tokens * d + 2 * q * d * c.layout.channels; // q,o + k,v + QKᵀ, AV + out
  }
  const skipCh = [ch[0]];
  let cur = ch[0];
  for (let i = 0; i < L; i++) {
    const px = (h * w) / 4 ** i;
    for (let j = 0; j < c.resBlocks; j++) {
      f += res(cur, ch[i], px) + (attnAt.has(i) ? tr(ch[i], px) : 0);
      cur = ch[i];
      skipCh.push(cur);
    }
    if (i < L - 1) {
      f += conv(3, cur, cur, px / 4);
      skipCh.push(cur);
    }
  }
  const pxMid = (h * w) / 4 ** (L - 1);
  f += 2 * res(cur, cur, pxMid) + (c.midAttention ? tr(cur, pxMid) : 0);
  for (let i = L - 1; i >= 0; i--) {
    const px = (h * w) / 4 ** i;
    for (let j = 0; j <= c.resBlocks; j++) {
      f += res(cur + skipCh.pop()!, ch[i], px) + (attnAt.has(i) ? tr(ch[i], px) : 0);
      cur = ch[i];
    }
    if (i > 0) f += conv(3, cur, cur, px * 4);
  }
  return f + conv(3, ch[0], c.latentChannels, h * w);
}
