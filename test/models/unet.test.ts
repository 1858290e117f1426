/**
 * Conditional UNet: output shapes on wasm and cpu (same weights → same output), gradient flow,
 * cross-attention k/v listing and override, FLOP count, memory, argument and config errors.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { UNet, UNetConfigSchema, unetFlops } from '../../lib/models/unet';
import { PRESETS } from '../../lib/t2i/presets';
import { Linear } from '../../lib/models/nn';
import { Params } from '../../lib/models/params';
import { Rng } from '../../lib/util/rng';
import { randomizeZeroInit } from '../helpers/unet';

/** Tiny config: 2 levels (8, 16 channels), attention at level 1 and in the middle. */
const TINY = { channels: [8, 16], resBlocks: 1, attentionLevels: [1], heads: 2, ctxDim: 32, timeDim: 16, groups: 4, ffMult: 2 };

function inputs(b: number, h: number, w: number, tokens: number, ctxDim: number, seed = 1) {
  const rng = new Rng(seed);
  const r = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  return {
    x: tf.tensor4d(r(b * h * w * 4), [b, h, w, 4]),
    t: tf.tensor1d(Array.from({ length: b }, (_, i) => 100 + 400 * i), 'int32'),
    ctx: tf.tensor3d(r(b * tokens * ctxDim), [b, tokens, ctxDim]),
  };
}

test('setup backend', async () => {
  await initBackend({ quiet: true });
});

test('x=[2,16,16,4] t=[2] ctx=[2,8,32]: output [2,16,16,4] on wasm and cpu, equal values, no leak', async () => {
  const p = new Params();
  const unet = new UNet(p, 'unet', TINY, new Rng(0));
  randomizeZeroInit(p, 1);
  const outs: Float32Array[] = [];
  try {
    for (const backend of ['wasm', 'cpu']) {
      await tf.setBackend(backend);
      const { x, t, ctx } = inputs(2, 16, 16, 8, 32);
      const before = tf.memory().numTensors;
      const y = unet.call(x, t, ctx);
      assert.deepEqual(y.shape, [2, 16, 16, 4]);
      outs.push(y.dataSync() as Float32Array);
      y.dispose();
      assert.equal(tf.memory().numTensors, before, `${backend}: forward leaks no tensors`);
      tf.dispose([x, t, ctx]);
    }
  } finally {
    await tf.setBackend('wasm');
  }
  let maxDiff = 0;
  let scale = 0;
  for (let i = 0; i < outs[0].length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(outs[0][i] - outs[1][i]));
    scale = Math.max(scale, Math.abs(outs[1][i]));
  }
  assert.ok(scale > 0, 'output is not all zeros after randomizeZeroInit');
  assert.ok(maxDiff / scale < 1e-4, `wasm vs cpu relative difference ${maxDiff / scale}`);
  p.dispose();
});

test('x=[1,8,12,4] t=[1] ctx=[1,3,32]: any size divisible by 2^(levels−1), output zero at init', () => {
  const p = new Params();
  const unet = new UNet(p, 'unet', TINY, new Rng(0));
  const { x, t, ctx } = inputs(1, 8, 12, 3, 32);
  const y = unet.call(x, t, ctx);
  assert.deepEqual(y.shape, [1, 8, 12, 4]);
  assert.equal(tf.max(tf.abs(y)).dataSync()[0], 0, 'zero-init convOut → ε_θ ≡ 0 at init');
  tf.dispose([x, t, ctx, y]);
  p.dispose();
});

test('x=[2,8,8,4] t=[2] ctx=[2,4,32]: gradient reaches convIn, ResBlocks, time MLP, cross-attn k/v', () => {
  const p = new Params();
  const unet = new UNet(p, 'unet', TINY, new Rng(0));
  const { x, t, ctx } = inputs(2, 8, 8, 4, 32);
  const target = tf.randomNormal([2, 8, 8, 4], 0, 1, 'float32', 3);
  const gradNorms = () => {
    const names = p.names();
    const { value, grads } = tf.variableGrads(() => tf.mean(tf.squaredDifference(unet.call(x, t, ctx), target)) as tf.Scalar, names.map((n) => p.get(n)));
    const norms = new Map(names.map((n) => [n, tf.tidy(() => tf.norm(grads[p.get(n).name]).dataSync()[0])]));
    tf.dispose([value, ...Object.values(grads)]);
    return norms;
  };
  // at init only the zero-initialised output conv (and its bias) gets gradient
  const g0 = gradNorms();
  assert.ok(g0.get('unet.convOut.w')! > 0);
  assert.equal(g0.get('unet.convIn.w'), 0);
  randomizeZeroInit(p, 2);
  const g = gradNorms();
  const kv = unet.crossAttentionKV()[0];
  for (const n of ['unet.convIn.w', 'unet.down0.res0.conv1.w', 'unet.time1.w', 'unet.mid.res1.conv2.w', `${kv.name}.k.w`, `${kv.name}.v.w`, 'unet.up0.res1.skip.w']) {
    assert.ok(g.has(n), `parameter ${n} exists`);
    assert.ok(g.get(n)! > 0, `gradient of ${n} is non-zero (got ${g.get(n)})`);
  }
  tf.dispose([x, t, ctx, target]);
  p.dispose();
});

test('crossAttentionKV lists every cross-attention; kvOverride changes the output, a copy does not', () => {
  const p = new Params();
  const unet = new UNet(p, 'unet', TINY, new Rng(0));
  randomizeZeroInit(p, 4);
  const list = unet.crossAttentionKV();
  // level 1: 1 down + 2 up transformer blocks, plus the middle one
  assert.deepEqual(list.map((e) => e.name), ['unet.down1.attn0.attn2', 'unet.mid.attn.attn2', 'unet.up1.attn0.attn2', 'unet.up1.attn1.attn2']);
  for (const e of list) assert.deepEqual([e.k.din, e.k.dout, e.v.din, e.v.dout], [32, 16, 32, 16]);

  // ELITE-style copies, in their own store (as M_i2t keeps them)
  const copies = new Params();
  const rng = new Rng(9);
  const override = new Map<string, { k: Linear; v: Linear }>();
  for (const e of list) {
    const k = new Linear(copies, `${e.name}.kGlobal`, e.k.din, e.k.dout, rng, { bias: false });
    const v = new Linear(copies, `${e.name}.vGlobal`, e.v.din, e.v.dout, rng, { bias: false });
    k.w.assign(e.k.w);
    v.w.assign(e.v.w);
    override.set(e.name, { k, v });
  }
  const { x, t, ctx } = inputs(2, 8, 8, 4, 32);
  const base = unet.call(x, t, ctx);
  const same = unet.call(x, t, ctx, { kvOverride: override });
  assert.equal(tf.max(tf.abs(tf.sub(base, same))).dataSync()[0], 0, 'a copy of k/v gives the same output');
  // change one copy: output changes, the UNet's own weights do not
  const first = override.get(list[0].name)!;
  tf.tidy(() => first.k.w.assign(tf.mul(first.k.w, -2)));
  const changed = unet.call(x, t, ctx, { kvOverride: override });
  assert.ok(tf.max(tf.abs(tf.sub(base, changed))).dataSync()[0] > 1e-4, 'modified k changes the output');
  const again = unet.call(x, t, ctx);
  assert.equal(tf.max(tf.abs(tf.sub(base, again))).dataSync()[0], 0, 'the original k/v are untouched');
  tf.dispose([x, t, ctx, base, same, changed, again]);
  p.dispose();
  copies.dispose();
});

test('throws when x, t, ctx or kvOverride do not fit', () => {
  const p = new Params();
  const unet = new UNet(p, 'unet', TINY, new Rng(0));
  const { x, t, ctx } = inputs(2, 8, 8, 4, 32);
  const odd = tf.zeros([2, 9, 8, 4]) as tf.Tensor4D;
  const c3 = tf.zeros([2, 8, 8, 3]) as tf.Tensor4D;
  const t3 = tf.zeros([3]) as tf.Tensor1D;
  const ctxBad = tf.zeros([2, 4, 16]) as tf.Tensor3D;
  assert.throws(() => unet.call(odd, t, ctx), /latent size 9×8 must be divisible by 2\^\(levels−1\) = 2/);
  assert.throws(() => unet.call(c3, t, ctx), /has 3 channels, expected latentChannels = 4/);
  assert.throws(() => unet.call(x, t3, ctx), /t must be \[2\].*got \[3\]/);
  assert.throws(() => unet.call(x, t, ctxBad), /ctx must be \[2,T,32\].*got \[2,4,16\]/);
  const q = new Params();
  const bad = new Map([['unet.nope.attn2', { k: new Linear(q, 'k', 32, 16, new Rng(1)), v: new Linear(q, 'v', 32, 16, new Rng(1)) }]]);
  assert.throws(() => unet.call(x, t, ctx, { kvOverride: bad }), /'unet.nope.attn2', which is not a cross-attention/);
  const wrongDim = new Map([['unet.mid.attn.attn2', { k: new Linear(q, 'k2', 32, 8, new Rng(1)), v: new Linear(q, 'v2', 32, 16, new Rng(1)) }]]);
  assert.throws(() => unet.call(x, t, ctx, { kvOverride: wrongDim }), /'unet.mid.attn.attn2'.k maps 32→8, expected 32→16/);
  tf.dispose([x, t, ctx, odd, c3, t3, ctxBad]);
  p.dispose();
  q.dispose();
});

test('throws when the config is invalid, naming the field', () => {
  const mk = (cfg: object) => () => new UNet(new Params(), 'unet', cfg as never, new Rng(0));
  assert.throws(mk({ ...TINY, channel: [8] }), /unet.*channel/s);
  assert.throws(mk({ ...TINY, channels: [8, 10] }), /channels\[1\] = 10 is not divisible by groups = 4[\s\S]*channels\[1\]/);
  assert.throws(mk({ ...TINY, attentionLevels: [2] }), /attention level 2 does not exist/);
  assert.throws(mk({ ...TINY, heads: 5, groups: 4, channels: [12, 12] }), /channels\[1\] = 12 is not divisible by heads = 5/);
});

test("unetFlops: one level, no attention, counted by hand; the demo preset's UNet ≈ 0.65 GFLOP on 32×32", () => {
  const cfg = { channels: [8], resBlocks: 1, attentionLevels: [], midAttention: false, timeDim: 16, groups: 4 };
  const px = 4 * 4;
  const conv = (k: number, ci: number, co: number) => 2 * k * k * ci * co * px;
  const res = (ci: number, co: number) => conv(3, ci, co) + conv(3, co, co) + (ci !== co ? conv(1, ci, co) : 0) + 2 * 16 * co;
  const want =
    conv(3, 4, 8) + 2 * (8 * 16 + 16 * 16) + // convIn, time MLP
    res(8, 8) + // down0.res0
    2 * res(8, 8) + // mid
    res(16, 8) + res(16, 8) + // up0.res0 (skip of down0.res0), up0.res1 (skip of convIn)
    conv(3, 8, 4); // convOut
  assert.equal(unetFlops(cfg, 4, 4, 1), want);
  const demoUnet = PRESETS.demo.unet;
  const demo = unetFlops(demoUnet, 32, 32, 16);
  assert.ok(demo > 0.6e9 && demo < 0.7e9, `demo forward ${demo / 1e9} GFLOP/sample`);
  const p = new Params();
  new UNet(p, 'unet', demoUnet, new Rng(0));
  assert.ok(p.count() > 1.4e6 && p.count() < 1.6e6, `demo params ${p.count()}`);
  p.dispose();
  assert.ok(UNetConfigSchema.safeParse(demoUnet).success);
});

test('pooledText: without any attention the text still reaches the output through the time embedding; off, it does not', () => {
  const noAttn = { ...TINY, attentionLevels: [], midAttention: false };
  const diffFor = (pooledText: boolean) => {
    const p = new Params();
    const unet = new UNet(p, 'unet', { ...noAttn, pooledText }, new Rng(0));
    randomizeZeroInit(p, 5);
    const a = inputs(1, 8, 8, 4, 32, 1);
    const b = inputs(1, 8, 8, 4, 32, 2); // only its ctx is used
    const ya = unet.call(a.x, a.t, a.ctx);
    const yb = unet.call(a.x, a.t, b.ctx);
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(ya, yb))).dataSync()[0]);
    assert.equal(unet.textToTime !== undefined, pooledText);
    tf.dispose([a.x, a.t, a.ctx, b.x, b.t, b.ctx, ya, yb]);
    p.dispose();
    return d;
  };
  assert.ok(diffFor(true) > 1e-4, 'pooled text changes the output');
  assert.equal(diffFor(false), 0, 'without attention and pooling the text cannot change the output');
});
