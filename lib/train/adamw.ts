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
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  /** number of updates applied so far (t in the algorithm) */
  t = 0;

  constructor(readonly cfg: AdamWConfig = ADAMW_DEFAULTS) {}

  private slot(map: Map<string, tf.Variable>, name: string, like: tf.Tensor): tf.Variable {
    let s = map.get(name);
    if (!s) {
      s = tf.tidy(() => tf.variable(tf.zerosLike(like), false));
      map.set(name, s);
    }
    return s;
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
    const normT = tf.tidy(() => tf.sqrt(tf.addN(names.map((n) => tf.sum(tf.square(grads.get(n)!))))));
    const norm = normT.dataSync()[0];
    normT.dispose();
    const scale = clipNorm > 0 && norm > clipNorm ? clipNorm / (norm + 1e-12) : 1;
    const bc1 = 1 - Math.pow(beta1, this.t);
    const bc2 = 1 - Math.pow(beta2, this.t);
    for (const name of names) {
      const p = params.get(name);
      if (!p) throw new Error(`AdamW.apply: gradient for unknown parameter '${name}'`);
      const g0 = grads.get(name)!;
      const m = this.slot(this.m, name, p);
      const v = this.slot(this.v, name, p);
      const plr = lr * (lrScale ? lrScale(name) : 1);
      tf.tidy(() => {
        const g = scale === 1 ? g0 : tf.mul(g0, scale);
        const m1 = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const v1 = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(m1);
        v.assign(v1);
        if (plr === 0) return;
        const update = tf.div(tf.div(m1, bc1), tf.add(tf.sqrt(tf.div(v1, bc2)), eps));
        const decayed = weightDecay > 0 ? tf.mul(p, 1 - plr * weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, plr)));
      });
    }
    return norm;
  }

  /** Moments by name for a checkpoint (`adam.m.<name>`, `adam.v.<name>`). */
  state(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [n, m] of this.m) out.set(`adam.m.${n}`, { shape: [...m.shape], data: m.dataSync() as Float32Array });
    for (const [n, v] of this.v) out.set(`adam.v.${n}`, { shape: [...v.shape], data: v.dataSync() as Float32Array });
    return out;
  }

  /** Restore moments written by `state()`; `t` is restored separately. */
  load(values: Map<string, { shape: number[]; data: Float32Array }>, t: number): void {
    this.dispose();
    this.t = t;
    for (const [key, val] of values) {
      const m = /^adam\.(m|v)\.(.+)$/.exec(key);
      if (!m) continue;
      const map = m[1] === 'm' ? this.m : this.v;
      map.set(m[2], tf.tidy(() => tf.variable(tf.tensor(val.data, val.shape, 'float32'), false)));
    }
  }

  dispose(): void {
    for (const s of [...this.m.values(), ...this.v.values()]) s.dispose();
    this.m.clear();
    this.v.clear();
  }
}
