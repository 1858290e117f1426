/**
 * AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2) with
 * global-norm gradient clipping, over named parameters. Written here rather than taken from
 * tf.train.adam because (a) tfjs has no decoupled weight decay and (b) checkpoints need the moment
 * estimates by parameter name for exact resume.
 *
 *   g ← clip(g)            m ← β1·m + (1−β1)·g       v ← β2·v + (1−β2)·g²
 *   m̂ = m/(1−β1^t)         v̂ = v/(1−β2^t)
 *   θ ← θ − lr·(m̂/(√v̂ + ε) + wd·θ)
 */
import * as tf from '@tensorflow/tfjs';
import { TrainConfigSchema, TrainConfig } from './config';

/** AdamW's part of a training config (clipNorm: clip the global L2 norm of all gradients to this; 0 = off). */
export type AdamWConfig = Pick<TrainConfig, 'beta1' | 'beta2' | 'eps' | 'weightDecay' | 'clipNorm'>;

/** The training schema's defaults (lib/train/config.ts), not a second copy of them. */
export const ADAMW_DEFAULTS: AdamWConfig = (({ beta1, beta2, eps, weightDecay, clipNorm }) => ({ beta1, beta2, eps, weightDecay, clipNorm }))(TrainConfigSchema.parse({ steps: 1, lr: 1 }));

export class AdamW {
  /**
   * The moments of all parameters of the last step's gradients in two flat vectors, in the order of
   * `names` (each parameter's slice at its offset): the moment update is then a handful of kernels for
   * the whole model instead of a dozen per parameter (many small kernels are what a step of the demo
   * models spends its time on; docs/experiments.md §1). Same arithmetic per element as per parameter.
   */
  private packed?: { names: string[]; shapes: number[][]; sizes: number[]; m: tf.Variable; v: tf.Variable };
  /** moments by name that are not in `packed` (loaded from a checkpoint, or of parameters without a gradient lately) */
  private loose = new Map<string, { m: tf.Tensor; v: tf.Tensor }>();
  /** number of updates applied so far (t in the algorithm) */
  t = 0;

  constructor(readonly cfg: AdamWConfig = ADAMW_DEFAULTS) {}

  /** Pack the moments for exactly these parameters (moving the others to `loose`; new ones start at 0). */
  private pack(names: string[], shapeOf: (name: string) => number[]): NonNullable<AdamW['packed']> {
    const same = this.packed && this.packed.names.length === names.length && this.packed.names.every((n, i) => n === names[i]);
    if (same) return this.packed!;
    const old = this.unpack();
    const shapes = names.map(shapeOf);
    const sizes = shapes.map((sh) => sh.reduce((a, d) => a * d, 1));
    const flat = (k: 'm' | 'v') =>
      tf.tidy(() => tf.variable(tf.concat(names.map((n, i) => (old.get(n)?.[k] ?? tf.zeros(shapes[i])).reshape([-1]))), false));
    this.packed = { names, shapes, sizes, m: flat('m'), v: flat('v') };
    for (const n of names) {
      const o = old.get(n);
      if (o) tf.dispose([o.m, o.v]);
      old.delete(n);
    }
    this.loose = old;
    return this.packed;
  }

  /** All moments by name (`packed` split back, plus `loose`); empties `packed`. */
  private unpack(): Map<string, { m: tf.Tensor; v: tf.Tensor }> {
    const out = this.loose;
    this.loose = new Map();
    const p = this.packed;
    if (!p) return out;
    const ms = tf.split(p.m, p.sizes);
    const vs = tf.split(p.v, p.sizes);
    p.names.forEach((n, i) => {
      out.set(n, { m: ms[i].reshape(p.shapes[i]), v: vs[i].reshape(p.shapes[i]) });
      tf.dispose([ms[i], vs[i]]);
    });
    tf.dispose([p.m, p.v]);
    this.packed = undefined;
    return out;
  }

  /**
   * Apply one update. `grads` maps parameter names to gradients; `params` maps names to variables;
   * `lrScale` per-parameter multipliers (e.g. a separate LR for the matcher), by name, default 1.
   * Returns the global gradient norm before clipping. Disposes nothing it did not create.
   */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number, lrScale?: (name: string) => number): number {
    this.t += 1;
    const { beta1, beta2, eps, weightDecay, clipNorm } = this.cfg;
    const names = [...grads.keys()];
    for (const name of names) if (!params.has(name)) throw new Error(`AdamW.apply: gradient for unknown parameter '${name}'`);
    if (names.length === 0) return 0;
    const pk = this.pack(names, (n) => [...params.get(n)!.shape]);
    const g0 = tf.tidy(() => tf.concat(names.map((n) => grads.get(n)!.reshape([-1]))));
    const normT = tf.tidy(() => tf.sqrt(tf.sum(tf.square(g0))));
    const norm = normT.dataSync()[0];
    normT.dispose();
    const scale = clipNorm > 0 && norm > clipNorm ? clipNorm / (norm + 1e-12) : 1;
    const bc1 = 1 - Math.pow(beta1, this.t);
    const bc2 = 1 - Math.pow(beta2, this.t);
    tf.tidy(() => {
      const g = scale === 1 ? g0 : tf.mul(g0, scale);
      const m1 = tf.add(tf.mul(pk.m, beta1), tf.mul(g, 1 - beta1));
      const v1 = tf.add(tf.mul(pk.v, beta2), tf.mul(tf.square(g), 1 - beta2));
      pk.m.assign(m1);
      pk.v.assign(v1);
      const plrs = names.map((n) => lr * (lrScale ? lrScale(n) : 1));
      if (plrs.every((x) => x === 0)) return;
      const update = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), eps));
      const parts = tf.split(update, pk.sizes);
      names.forEach((name, i) => {
        const plr = plrs[i];
        if (plr === 0) return;
        const p = params.get(name)!;
        const decayed = weightDecay > 0 ? tf.mul(p, 1 - plr * weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(parts[i].reshape(p.shape), plr)));
      });
    });
    g0.dispose();
    return norm;
  }

  /** Moments by name for a checkpoint (`adam.m.<name>`, `adam.v.<name>`). */
  state(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    const all = new Map<string, { m: { shape: number[]; data: Float32Array }; v: { shape: number[]; data: Float32Array } }>();
    for (const [n, { m, v }] of this.loose) all.set(n, { m: { shape: [...m.shape], data: m.dataSync() as Float32Array }, v: { shape: [...v.shape], data: v.dataSync() as Float32Array } });
    const p = this.packed;
    if (p) {
      const m = p.m.dataSync() as Float32Array;
      const v = p.v.dataSync() as Float32Array;
      let off = 0;
      p.names.forEach((n, i) => {
        all.set(n, { m: { shape: p.shapes[i], data: m.slice(off, off + p.sizes[i]) }, v: { shape: p.shapes[i], data: v.slice(off, off + p.sizes[i]) } });
        off += p.sizes[i];
      });
    }
    for (const [n, x] of all) out.set(`adam.m.${n}`, x.m);
    for (const [n, x] of all) out.set(`adam.v.${n}`, x.v);
    return out;
  }

  /** Restore moments written by `state()`; `t` is restored separately. */
  load(values: Map<string, { shape: number[]; data: Float32Array }>, t: number): void {
    this.dispose();
    this.t = t;
    const byName = new Map<string, { m?: tf.Tensor; v?: tf.Tensor }>();
    for (const [key, val] of values) {
      const m = /^adam\.(m|v)\.(.+)$/.exec(key);
      if (!m) continue;
      const e = byName.get(m[2]) ?? {};
      e[m[1] as 'm' | 'v'] = tf.tensor(val.data, val.shape, 'float32');
      byName.set(m[2], e);
    }
    for (const [n, e] of byName) {
      const like = (e.m ?? e.v)!;
      this.loose.set(n, { m: e.m ?? tf.zerosLike(like), v: e.v ?? tf.zerosLike(like) });
    }
  }

  dispose(): void {
    if (this.packed) tf.dispose([this.packed.m, this.packed.v]);
    this.packed = undefined;
    for (const { m, v } of this.loose.values()) tf.dispose([m, v]);
    this.loose.clear();
  }
}
