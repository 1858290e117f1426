/**
 * AdamW (lib/train/adamw.ts) keeps its moments packed in two flat vectors; it must compute what the
 * per-parameter algorithm does (Loshchilov & Hutter 2019, Algorithm 2, with global-norm clipping),
 * through checkpoints (state/load) and changes of the set of parameters with a gradient.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { AdamW, AdamWConfig } from '../../lib/train/adamw';
import { Rng } from '../../lib/util/rng';

/** The algorithm per parameter, in plain float64 arithmetic. */
class Reference {
  m = new Map<string, Float64Array>();
  v = new Map<string, Float64Array>();
  t = 0;
  constructor(readonly cfg: AdamWConfig) {}
  apply(params: Map<string, Float64Array>, grads: Map<string, Float64Array>, lr: number, lrScale: (n: string) => number): number {
    this.t += 1;
    const { beta1, beta2, eps, weightDecay, clipNorm } = this.cfg;
    let sq = 0;
    for (const g of grads.values()) for (const x of g) sq += x * x;
    const norm = Math.sqrt(sq);
    const scale = clipNorm > 0 && norm > clipNorm ? clipNorm / (norm + 1e-12) : 1;
    for (const [n, g] of grads) {
      const p = params.get(n)!;
      const m = this.m.get(n) ?? new Float64Array(p.length);
      const v = this.v.get(n) ?? new Float64Array(p.length);
      const plr = lr * lrScale(n);
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] * scale;
        m[i] = beta1 * m[i] + (1 - beta1) * gi;
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
        if (plr === 0) continue;
        const u = m[i] / (1 - beta1 ** this.t) / (Math.sqrt(v[i] / (1 - beta2 ** this.t)) + eps);
        p[i] = p[i] * (1 - plr * weightDecay) - plr * u;
      }
      this.m.set(n, m);
      this.v.set(n, v);
    }
    return norm;
  }
}

test('setup backend', async () => {
  await initBackend({ quiet: true });
});

test('AdamW with packed moments = the per-parameter algorithm: clipping, weight decay, a frozen parameter, a checkpoint round trip and a parameter that loses and regains its gradient', () => {
  const cfg: AdamWConfig = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01, clipNorm: 1 };
  const rng = new Rng(4);
  const shapes: Record<string, number[]> = { 'a.w': [3, 4], 'a.b': [4], 'frozen.w': [2, 2, 3], 'c.w': [5] };
  const ref = new Reference(cfg);
  const refP = new Map(Object.entries(shapes).map(([n, sh]) => [n, Float64Array.from({ length: sh.reduce((a, d) => a * d, 1) }, () => rng.normal())]));
  const vars = new Map([...refP].map(([n, d]) => [n, tf.variable(tf.tensor(Float32Array.from(d), shapes[n]), true, `adamw-test-${n}`)]));
  let opt = new AdamW(cfg);
  const lrScale = (n: string) => (n.startsWith('frozen') ? 0 : n === 'c.w' ? 0.5 : 1);
  const before = tf.memory().numTensors;
  for (let step = 0; step < 6; step++) {
    // step 3: c.w has no gradient (its moments must stay as they were)
    const names = Object.keys(shapes).filter((n) => !(step === 3 && n === 'c.w'));
    const g64 = new Map(names.map((n) => [n, Float64Array.from({ length: refP.get(n)!.length }, () => rng.normal() * (step === 1 ? 5 : 0.2))]));
    const grads = new Map([...g64].map(([n, d]) => [n, tf.tensor(Float32Array.from(d), shapes[n])]));
    const normRef = ref.apply(refP, g64, 0.01, lrScale);
    const norm = opt.apply(vars, grads, 0.01, lrScale);
    tf.dispose([...grads.values()]);
    assert.ok(Math.abs(norm - normRef) <= 1e-5 * normRef, `step ${step}: norm ${norm} vs ${normRef}`);
    for (const [n, p] of refP) {
      const got = vars.get(n)!.dataSync();
      for (let i = 0; i < p.length; i++) assert.ok(Math.abs(got[i] - p[i]) <= 1e-5 * Math.max(1, Math.abs(p[i])), `step ${step} ${n}[${i}]: ${got[i]} vs ${p[i]}`);
    }
    if (step === 2) {
      // a checkpoint: the moments by name, restored into a new optimizer
      const st = opt.state();
      assert.deepEqual([...st.keys()].sort(), Object.keys(shapes).flatMap((n) => [`adam.m.${n}`, `adam.v.${n}`]).sort());
      for (const [n, m] of ref.m) {
        const got = st.get(`adam.m.${n}`)!;
        assert.deepEqual(got.shape, shapes[n]);
        for (let i = 0; i < m.length; i++) assert.ok(Math.abs(got.data[i] - m[i]) <= 1e-6 * Math.max(1, Math.abs(m[i])), `m of ${n}`);
      }
      const t = opt.t;
      opt.dispose();
      opt = new AdamW(cfg);
      opt.load(st, t);
    }
  }
  opt.dispose();
  assert.equal(tf.memory().numTensors, before, 'the optimizer frees its moments');
  tf.dispose([...vars.values()]);
});
