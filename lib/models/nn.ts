/**
 * Small building blocks shared by every model (autoencoder, UNet, text transformer, mappers,
 * restorers). Each block creates its named parameters in a `Params` store when constructed and has
 * a short, synchronous `call` (use inside tf.tidy / tf.variableGrads). Layout NHWC throughout.
 */
import * as tf from '@tensorflow/tfjs';
import { Params, init } from './params';
import { Rng } from '../util/rng';

/** 2-D convolution, weights [k,k,cin,cout] (HWIO), optional bias, 'same' padding. */
export class Conv2d {
  readonly w: tf.Variable;
  readonly b?: tf.Variable;
  constructor(
    p: Params,
    readonly name: string,
    readonly cin: number,
    readonly cout: number,
    rng: Rng,
    readonly opts: { k?: number; kw?: number; stride?: number; bias?: boolean; zeroInit?: boolean; gain?: number } = {},
  ) {
    const kh = opts.k ?? 3;
    const kw = opts.kw ?? kh;
    this.w = p.add(`${name}.w`, [kh, kw, cin, cout], opts.zeroInit ? init.zeros() : init.heUniform(rng, kh * kw * cin, opts.gain ?? 1));
    if (opts.bias ?? true) this.b = p.add(`${name}.b`, [cout], init.zeros());
  }
  /** @param x [B,H,W,cin] → [B,H/stride,W/stride,cout] */
  call(x: tf.Tensor4D, activation?: 'relu'): tf.Tensor4D {
    if (x.shape[3] !== this.cin) throw new Error(`${this.name}: input has ${x.shape[3]} channels, expected ${this.cin}`);
    const s = this.opts.stride ?? 1;
    return tf.fused.conv2d({ x, filter: this.w as tf.Tensor4D, strides: s, pad: 'same', bias: this.b, activation: activation ?? 'linear' });
  }
}

/** Depthwise 3×3 (or k×k) convolution, weights [k,k,c,1]. */
export class DepthwiseConv2d {
  readonly w: tf.Variable;
  readonly b?: tf.Variable;
  constructor(p: Params, readonly name: string, readonly c: number, rng: Rng, opts: { k?: number; bias?: boolean } = {}) {
    const k = opts.k ?? 3;
    this.w = p.add(`${name}.w`, [k, k, c, 1], init.heUniform(rng, k * k));
    if (opts.bias ?? true) this.b = p.add(`${name}.b`, [c], init.zeros());
  }
  call(x: tf.Tensor4D): tf.Tensor4D {
    if (x.shape[3] !== this.c) throw new Error(`${this.name}: input has ${x.shape[3]} channels, expected ${this.c}`);
    const y = tf.depthwiseConv2d(x, this.w as tf.Tensor4D, 1, 'same');
    return this.b ? tf.add(y, this.b) : y;
  }
}

/** Fully connected layer on the last axis: [..., din] → [..., dout]. */
export class Linear {
  readonly w: tf.Variable;
  readonly b?: tf.Variable;
  constructor(p: Params, readonly name: string, readonly din: number, readonly dout: number, rng: Rng, opts: { bias?: boolean; zeroInit?: boolean; std?: number } = {}) {
    this.w = p.add(`${name}.w`, [din, dout], opts.zeroInit ? init.zeros() : opts.std ? init.normal(rng, opts.std) : init.heUniform(rng, din));
    if (opts.bias ?? true) this.b = p.add(`${name}.b`, [dout], init.zeros());
  }
  call<T extends tf.Tensor>(x: T): T {
    const d = x.shape[x.rank - 1];
    if (d !== this.din) throw new Error(`${this.name}: input last dim is ${d}, expected ${this.din}`);
    const flat = x.reshape([-1, this.din]) as tf.Tensor2D;
    let y: tf.Tensor = tf.matMul(flat, this.w as tf.Tensor2D);
    if (this.b) y = tf.add(y, this.b);
    return y.reshape([...x.shape.slice(0, -1), this.dout]) as T;
  }
}

/** Group normalisation over NHWC (Wu & He 2018), affine. */
export class GroupNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  constructor(p: Params, readonly name: string, readonly c: number, readonly groups = 8, readonly eps = 1e-5) {
    if (c % groups !== 0) throw new Error(`${name}: channels ${c} not divisible by groups ${groups}`);
    this.gamma = p.add(`${name}.g`, [c], init.ones());
    this.beta = p.add(`${name}.b`, [c], init.zeros());
  }
  call(x: tf.Tensor4D): tf.Tensor4D {
    const [b, h, w, c] = x.shape;
    const g = this.groups;
    const xr = x.reshape([b, h * w, g, c / g]); // [B,HW,G,C/G]
    const { mean, variance } = tf.moments(xr, [1, 3], true);
    const xn = tf.div(tf.sub(xr, mean), tf.sqrt(tf.add(variance, this.eps))).reshape([b, h, w, c]);
    return tf.add(tf.mul(xn, this.gamma), this.beta) as tf.Tensor4D;
  }
}

/** Layer normalisation over the last axis, affine. */
export class LayerNorm {
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  constructor(p: Params, readonly name: string, readonly d: number, readonly eps = 1e-5) {
    this.gamma = p.add(`${name}.g`, [d], init.ones());
    this.beta = p.add(`${name}.b`, [d], init.zeros());
  }
  call<T extends tf.Tensor>(x: T): T {
    // own tidy: only the output outlives the call (at inference the temporaries are freed at once)
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, this.eps))), this.gamma), this.beta) as T;
    });
  }
  /**
   * (x − μ)/√(σ² + ε) without the affine γ, β (for a caller that folds them into the linear map that
   * follows, e.g. a 1×1 conv): three full-size kernels (x − μ, its square, the product) instead of the
   * eight of `call`; equal to `call` up to float rounding once γ, β are applied.
   */
  normalize<T extends tf.Tensor>(x: T): T {
    return tf.tidy(() => {
      const xc = tf.sub(x, tf.mean(x, -1, true));
      const sq = tf.square(xc);
      const r = tf.rsqrt(tf.add(tf.mean(sq, -1, true), this.eps));
      sq.dispose();
      return tf.mul(xc, r) as T;
    });
  }
}

/** SiLU / swish: x·σ(x). */
export function silu<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x)) as T;
}

/** GELU (tanh approximation). */
export function gelu<T extends tf.Tensor>(x: T): T {
  const c = Math.sqrt(2 / Math.PI);
  const x3 = tf.mul(tf.mul(x, x), x); // not tf.pow: slow on wasm
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(tf.add(x, tf.mul(x3, 0.044715)), c)))) as T;
}

/**
 * Tensors that stay the same across the steps of one sampling run (a DDIM loop calls the UNet 30–100
 * times with the same context): the cross-attention keys and values of the context, the position code's
 * projection, the layout map. `get` computes a value once and keeps it (outside any tf.tidy) until
 * `dispose`. Keys name what a value depends on (callers put the context tensor's id in them), so one
 * memo serves one run: context, k/v copies and weights must not change while it is in use. Inference
 * only: a memoised value carries no gradient to the weights it was made from.
 */
export class TensorMemo {
  private readonly values = new Map<string, tf.Tensor | tf.Tensor[]>();
  /** how many values were computed (tests: a second step computes none) */
  misses = 0;
  get<T extends tf.Tensor | tf.Tensor[]>(key: string, make: () => T): T {
    const had = this.values.get(key);
    if (had) return had as T;
    this.misses++;
    const v = make();
    for (const t of Array.isArray(v) ? v : [v]) tf.keep(t);
    this.values.set(key, v);
    return v;
  }
  get size(): number {
    return this.values.size;
  }
  dispose(): void {
    for (const v of this.values.values()) tf.dispose(v);
    this.values.clear();
  }
}

/**
 * Multi-head attention, queries from `x` [B,Tq,D], keys/values from `ctx` [B,Tk,Dc] (self-attention
 * when ctx is x). `mask` [Tq,Tk] additive (0 or −1e9), e.g. causal. Output [B,Tq,D].
 * The key/value projections are separate Linear layers so that ELITE-style trainable copies of
 * them (M_i2t stage; the official `inj_forward_crossattention`'s to_k_global / to_v_global) can be swapped in via `kv`.
 */
export class Attention {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly o: Linear;
  constructor(p: Params, readonly name: string, readonly d: number, readonly dCtx: number, readonly heads: number, rng: Rng) {
    if (d % heads !== 0) throw new Error(`${name}: width ${d} not divisible by heads ${heads}`);
    this.q = new Linear(p, `${name}.q`, d, d, rng, { bias: false });
    this.k = new Linear(p, `${name}.k`, dCtx, d, rng, { bias: false });
    this.v = new Linear(p, `${name}.v`, dCtx, d, rng, { bias: false });
    this.o = new Linear(p, `${name}.o`, d, d, rng, { zeroInit: true });
  }
  /** @param opts.memo keeps the context's keys and values for the next call with the same ctx (sampling) */
  call(x: tf.Tensor3D, ctx: tf.Tensor3D, opts: { mask?: tf.Tensor2D; kv?: { k: Linear; v: Linear }; memo?: TensorMemo } = {}): tf.Tensor3D {
    const [b, tq] = x.shape;
    const tk = ctx.shape[1];
    const h = this.heads;
    const dh = this.d / h;
    const split = (t: tf.Tensor3D, len: number) => t.reshape([b, len, h, dh]).transpose([0, 2, 1, 3]) as tf.Tensor4D; // [B,h,T,dh]
    const q = split(this.q.call(x), tq);
    const kvOf = (): tf.Tensor4D[] => [split((opts.kv?.k ?? this.k).call(ctx), tk), split((opts.kv?.v ?? this.v).call(ctx), tk)];
    const [k, v] = opts.memo ? opts.memo.get(`${ctx.id}:${this.name}:${opts.kv ? 'kv-copies' : 'kv'}`, kvOf) : kvOf();
    let logits = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)); // [B,h,Tq,Tk]
    if (opts.mask) logits = tf.add(logits, opts.mask);
    const attn = tf.softmax(logits, -1);
    const out = tf.matMul(attn, v).transpose([0, 2, 1, 3]).reshape([b, tq, this.d]) as tf.Tensor3D; // [B,Tq,D]
    return this.o.call(out);
  }
}

/** Additive causal mask [T,T]: 0 on and below the diagonal, −1e9 above. */
export function causalMask(t: number): tf.Tensor2D {
  return tf.tidy(() => tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([t, t]), -1, 0)), -1e9) as tf.Tensor2D);
}

/** Sinusoidal embedding of diffusion timesteps (DDPM / "Attention is all you need"): [B] → [B,dim]. */
export function timestepEmbedding(t: tf.Tensor1D, dim: number, maxPeriod = 10000): tf.Tensor2D {
  const half = Math.floor(dim / 2);
  const freqs = tf.exp(tf.mul(tf.range(0, half, 1, 'float32'), -Math.log(maxPeriod) / half)); // [half]
  const args = tf.mul(tf.expandDims(tf.cast(t, 'float32'), 1), tf.expandDims(freqs, 0)); // [B,half]
  const emb = tf.concat([tf.cos(args), tf.sin(args)], 1);
  return (dim % 2 ? tf.pad(emb, [[0, 0], [0, 1]]) : emb) as tf.Tensor2D;
}

/**
 * Fixed 2-D sinusoidal position code of an h×w grid, [h·w, dim] row-major (MAE / ViT-style
 * get_2d_sincos_pos_embed, with coordinates normalised to the grid: (i + ½)/h, so that the same place
 * of the image gets the same code at every resolution). Half the channels code y, half x; each half
 * is sin/cos at frequencies π·2^k, k = 0 … dim/4 − 1.
 */
export function positionalEmbedding2d(h: number, w: number, dim: number): tf.Tensor2D {
  const q = Math.floor(dim / 4);
  const out = new Float32Array(h * w * dim);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * dim;
      const u = (y + 0.5) / h;
      const v = (x + 0.5) / w;
      for (let k = 0; k < q; k++) {
        const f = Math.PI * 2 ** k;
        out[o + k] = Math.sin(f * u);
        out[o + q + k] = Math.cos(f * u);
        out[o + 2 * q + k] = Math.sin(f * v);
        out[o + 3 * q + k] = Math.cos(f * v);
      }
    }
  }
  return tf.tensor2d(out, [h * w, dim]);
}
