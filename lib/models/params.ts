/**
 * Named parameters: every model keeps its weights in a `Params` store, so that checkpoints, EMA,
 * optimisers and freezing all work by name (`unet.down0.conv1.w`), and a checkpoint of the wrong
 * shape fails with the name and both shapes.
 *
 * Initialisation draws from the project's seeded `Rng` (not tfjs's global RNG), so the same seed
 * gives the same weights on every backend.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng';

export class Params {
  private readonly vars = new Map<string, tf.Variable>();
  private readonly frozen = new Set<string>();

  /** Create (or return the existing) variable `name` with values from `init()`. */
  add(name: string, shape: number[], init: (n: number) => Float32Array): tf.Variable {
    const existing = this.vars.get(name);
    if (existing) {
      if (!sameShape(existing.shape, shape)) throw new Error(`Params.add: '${name}' exists with shape [${existing.shape}], requested [${shape}]`);
      return existing;
    }
    const n = shape.reduce((a, b) => a * b, 1);
    const values = init(n);
    if (values.length !== n) throw new Error(`Params.add: init for '${name}' returned ${values.length} values, expected ${n}`);
    const v = tf.tidy(() => tf.variable(tf.tensor(values, shape, 'float32'), true, uniqueVarName(name)));
    this.vars.set(name, v);
    return v;
  }

  get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`Params.get: no parameter '${name}'`);
    return v;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  names(): string[] {
    return [...this.vars.keys()];
  }

  entries(): Array<[string, tf.Variable]> {
    return [...this.vars.entries()];
  }

  /** Parameters whose name starts with one of `prefixes` (all when none given). */
  select(prefixes?: string[]): Array<[string, tf.Variable]> {
    if (!prefixes || prefixes.length === 0) return this.entries();
    return this.entries().filter(([n]) => prefixes.some((p) => n === p || n.startsWith(p.endsWith('.') ? p : p + '.')));
  }

  /** Mark parameters (by prefix) as frozen: `trainable()` leaves them out. */
  freeze(prefixes: string[]): void {
    for (const [n] of this.select(prefixes)) this.frozen.add(n);
  }

  unfreeze(prefixes: string[]): void {
    for (const [n] of this.select(prefixes)) this.frozen.delete(n);
  }

  isFrozen(name: string): boolean {
    return this.frozen.has(name);
  }

  /** Trainable parameters (not frozen), in creation order. */
  trainable(): Array<[string, tf.Variable]> {
    return this.entries().filter(([n]) => !this.frozen.has(n));
  }

  /** Total number of scalar parameters (optionally by prefix). */
  count(prefixes?: string[]): number {
    return this.select(prefixes).reduce((a, [, v]) => a + v.size, 0);
  }

  /** Copy values from a name → Float32Array map; every name must exist with the same size. */
  assign(values: Map<string, { shape: number[]; data: Float32Array }>, opts: { source?: string; allowMissing?: boolean; allowExtra?: boolean } = {}): void {
    const src = opts.source ?? 'checkpoint';
    for (const [name, v] of this.vars) {
      const got = values.get(name);
      if (!got) {
        if (opts.allowMissing) continue;
        throw new Error(`${src}: missing parameter '${name}' (shape [${v.shape}])`);
      }
      if (!sameShape(got.shape, v.shape)) throw new Error(`${src}: parameter '${name}' has shape [${got.shape}], the model expects [${v.shape}]`);
    }
    if (!opts.allowExtra) {
      for (const name of values.keys()) if (!this.vars.has(name)) throw new Error(`${src}: unexpected parameter '${name}' (not in the model)`);
    }
    for (const [name, v] of this.vars) {
      const got = values.get(name);
      if (got) tf.tidy(() => v.assign(tf.tensor(got.data, v.shape, 'float32')));
    }
  }

  /** Snapshot of all values (synchronous download). */
  snapshot(): Map<string, { shape: number[]; data: Float32Array }> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, v] of this.vars) out.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
    return out;
  }

  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }
}

let varCounter = 0;
/** tfjs variable names must be globally unique; keep ours readable. */
function uniqueVarName(name: string): string {
  return `${name}__${varCounter++}`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Initialisers. `fanIn` = inputs per output unit (kh·kw·cin for a conv). */
export const init = {
  zeros: () => (n: number) => new Float32Array(n),
  ones: () => (n: number) => new Float32Array(n).fill(1),
  constant: (c: number) => (n: number) => new Float32Array(n).fill(c),
  /** N(0, std²) */
  normal: (rng: Rng, std: number) => (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
    return a;
  },
  /** He/Kaiming uniform for ReLU-like nets (PyTorch's default conv init up to a constant): U(±sqrt(6/fanIn)·gain/sqrt(2)) */
  heUniform: (rng: Rng, fanIn: number, gain = 1) => (n: number) => {
    const bound = gain * Math.sqrt(3 / fanIn);
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = rng.uniform(-bound, bound);
    return a;
  },
};
