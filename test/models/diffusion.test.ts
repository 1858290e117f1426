/**
 * Eq. (1) loss, classifier-free guidance and the DDIM sampling loop: determinism for a seed,
 * CFG identities, memory (loss + grad step, sampling loop), errors.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, patchCpuResizeNearestNeighborGrad } from '../../lib/backend';
import { backendUnderTest } from '../helpers/backend';
import { UNet } from '../../lib/models/unet';
import { DDIMScheduler } from '../../lib/models/ddim';
import { diffusionLoss, cfgEps, sampleLatents, drawDiffusionNoise } from '../../lib/models/diffusion';
import { Params } from '../../lib/models/params';
import { Linear, TensorMemo } from '../../lib/models/nn';
import { Rng } from '../../lib/util/rng';
import { randomizeZeroInit } from '../helpers/unet';

const TINY = { channels: [8, 16], resBlocks: 1, attentionLevels: [1], heads: 2, ctxDim: 32, timeDim: 16, groups: 4, ffMult: 2 };

function randn(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

function makeUnet(randomize = true): { p: Params; unet: UNet } {
  const p = new Params();
  const unet = new UNet(p, 'unet', TINY, new Rng(0));
  if (randomize) randomizeZeroInit(p, 1);
  return { p, unet };
}

test('setup backend', async () => {
  await initBackend({ quiet: true });
});

test('cfgEps x=[2,8,8,4] ctx=[2,4,32] uncond=[1,4,32]: scale 1 = conditional, 0 = unconditional, 3 = u + 3(c − u)', () => {
  const { p, unet } = makeUnet();
  const x = randn([2, 8, 8, 4], 1) as tf.Tensor4D;
  const ctx = randn([2, 4, 32], 2) as tf.Tensor3D;
  const uncond = randn([1, 4, 32], 3) as tf.Tensor3D;
  const t = tf.tensor1d([500, 500], 'int32');
  const epsC = unet.call(x, t, ctx);
  const epsU = unet.call(x, t, tf.tile(uncond, [2, 1, 1]) as tf.Tensor3D);
  const s1 = cfgEps(unet, x, 500, ctx, uncond, 1);
  const s0 = cfgEps(unet, x, t, ctx, uncond, 0);
  const s3 = cfgEps(unet, x, 500, ctx, uncond, 3);
  const want3 = tf.add(epsU, tf.mul(tf.sub(epsC, epsU), 3));
  const scale = tf.max(tf.abs(epsC)).dataSync()[0];
  assert.ok(scale > 0.01, 'non-trivial output');
  assert.ok(maxAbsDiff(s1, epsC) <= 1e-6 * Math.max(1, scale), `scale 1 vs conditional: ${maxAbsDiff(s1, epsC)}`);
  assert.ok(maxAbsDiff(s0, epsU) <= 1e-6 * Math.max(1, scale), `scale 0 vs unconditional: ${maxAbsDiff(s0, epsU)}`);
  assert.ok(maxAbsDiff(s3, want3) <= 1e-5 * Math.max(1, scale), `scale 3: ${maxAbsDiff(s3, want3)}`);
  assert.ok(maxAbsDiff(epsC, epsU) > 1e-4, 'the context matters');
  tf.dispose([x, ctx, uncond, t, epsC, epsU, s1, s0, s3, want3]);
  p.dispose();
});

test('diffusionLoss z0=[2,8,8,4] ctx=[2,4,32]: deterministic for a seed, hand value at init, no leak in loss + grad', () => {
  const { p, unet } = makeUnet(false);
  const z0 = randn([2, 8, 8, 4], 4) as tf.Tensor4D;
  const ctx = randn([2, 4, 32], 5) as tf.Tensor3D;
  // at init ε_θ ≡ 0 (zero-init convOut), so the loss is mean(ε²) of the rng's draws: 2 timesteps, then 512 normals
  const r = new Rng(11);
  r.int(1000);
  r.int(1000);
  let sq = 0;
  for (let i = 0; i < 512; i++) sq += r.normal() ** 2;
  const l0 = diffusionLoss(unet, z0, ctx, new Rng(11));
  assert.ok(Math.abs(l0.dataSync()[0] - sq / 512) < 1e-5, `loss at init ${l0.dataSync()[0]} vs mean ε² ${sq / 512}`);
  l0.dispose();

  randomizeZeroInit(p, 2);
  const a = diffusionLoss(unet, z0, ctx, new Rng(11));
  const b = diffusionLoss(unet, z0, ctx, new Rng(11));
  const c = diffusionLoss(unet, z0, ctx, new Rng(12));
  assert.equal(a.dataSync()[0], b.dataSync()[0], 'same seed → same loss');
  assert.notEqual(a.dataSync()[0], c.dataSync()[0], 'other seed → other loss');
  tf.dispose([a, b, c]);

  const vars = p.entries().map(([, v]) => v);
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(() => diffusionLoss(unet, z0, ctx, new Rng(13)), vars);
  assert.ok(Number.isFinite(value.dataSync()[0]));
  const nonZero = Object.values(grads).filter((g) => tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]) > 0).length;
  assert.ok(nonZero > vars.length / 2, `${nonZero} of ${vars.length} gradients non-zero`);
  tf.dispose([value, ...Object.values(grads)]);
  assert.equal(tf.memory().numTensors, before, 'loss + grad step leaks no tensors');
  tf.dispose([z0, ctx]);
  p.dispose();
});

test('backend under test vs cpu: diffusionLoss z0=[2,8,8,4] ctx=[2,4,32] and every UNet gradient agree (rel. 1e-4)', async () => {
  const under = await backendUnderTest();
  patchCpuResizeNearestNeighborGrad(); // the cpu oracle's nearest-upsampling gradient is wrong for batch > 1 in tfjs 4.22
  const { p, unet } = makeUnet();
  const got: Record<string, { loss: number; grads: Map<string, Float32Array> }> = {};
  try {
    for (const backend of [under, 'cpu']) {
      await tf.setBackend(backend);
      const z0 = randn([2, 8, 8, 4], 4) as tf.Tensor4D;
      const ctx = randn([2, 4, 32], 5) as tf.Tensor3D;
      const vars = p.entries();
      const { value, grads } = tf.variableGrads(() => diffusionLoss(unet, z0, ctx, new Rng(1)), vars.map(([, v]) => v));
      got[backend] = { loss: value.dataSync()[0], grads: new Map(vars.map(([n, v]) => [n, grads[v.name].dataSync() as Float32Array])) };
      tf.dispose([value, ...Object.values(grads), z0, ctx]);
    }
  } finally {
    await tf.setBackend(under);
  }
  assert.ok(Math.abs(got[under].loss - got.cpu.loss) < 1e-5 * got.cpu.loss, `loss ${under} ${got[under].loss} cpu ${got.cpu.loss}`);
  for (const [name, gc] of got.cpu.grads) {
    const gw = got[under].grads.get(name)!;
    let d = 0;
    let s = 0;
    for (let i = 0; i < gc.length; i++) {
      d = Math.max(d, Math.abs(gw[i] - gc[i]));
      s = Math.max(s, Math.abs(gc[i]));
    }
    assert.ok(d <= 1e-4 * Math.max(s, 1e-6), `gradient of ${name}: max |${under} − cpu| = ${d}, max |cpu| = ${s}`);
  }
  p.dispose();
});

test('sampleLatents shape=[2,8,8,4] ctx=[2,4,32], 5 steps, cfg 3: deterministic for a seed (eta 0 and 1), no leak', async () => {
  const { p, unet } = makeUnet();
  const sched = new DDIMScheduler();
  const ctx = randn([2, 4, 32], 6) as tf.Tensor3D;
  const uncond = randn([1, 4, 32], 7) as tf.Tensor3D;
  const shape: [number, number, number, number] = [2, 8, 8, 4];
  const before = tf.memory().numTensors;
  const seen: number[] = [];
  const a = await sampleLatents(unet, sched, ctx, uncond, { steps: 5, cfgScale: 3, seed: 42, shape, onStep: ({ t, x, predX0 }) => {
    seen.push(t);
    assert.deepEqual(x.shape, shape);
    assert.deepEqual(predX0.shape, shape);
  } });
  assert.deepEqual(seen, [801, 601, 401, 201, 1]);
  const b = await sampleLatents(unet, sched, ctx, uncond, { steps: 5, cfgScale: 3, seed: 42, shape });
  const c = await sampleLatents(unet, sched, ctx, uncond, { steps: 5, cfgScale: 3, seed: 43, shape });
  const e1 = await sampleLatents(unet, sched, ctx, uncond, { steps: 5, cfgScale: 3, eta: 1, seed: 42, shape });
  const e2 = await sampleLatents(unet, sched, ctx, uncond, { steps: 5, cfgScale: 3, eta: 1, seed: 42, shape });
  assert.deepEqual(a.shape, shape);
  assert.equal(maxAbsDiff(a, b), 0, 'same seed → same latents');
  assert.equal(maxAbsDiff(e1, e2), 0, 'same seed → same latents with eta = 1');
  assert.ok(maxAbsDiff(a, c) > 1e-3, 'other seed → other latents');
  assert.ok(maxAbsDiff(a, e1) > 1e-3, 'eta changes the result');
  tf.dispose([a, b, c, e1, e2]);
  assert.equal(tf.memory().numTensors, before, 'sampling leaks no tensors');
  // cfgScale 1 without an unconditional context
  const d = await sampleLatents(unet, sched, ctx, null, { steps: 3, cfgScale: 1, seed: 1, shape });
  d.dispose();
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([ctx, uncond]);
  p.dispose();
});

test('throws when cfgScale ≠ 1 has no uncondCtx, shapes disagree, or numTrainSteps differs from the scheduler', async () => {
  const { p, unet } = makeUnet();
  const sched = new DDIMScheduler();
  const ctx = randn([2, 4, 32], 6) as tf.Tensor3D;
  const before = tf.memory().numTensors;
  await assert.rejects(sampleLatents(unet, sched, ctx, null, { steps: 2, cfgScale: 5, seed: 0, shape: [2, 8, 8, 4] }), /cfgScale = 5 needs uncondCtx/);
  await assert.rejects(sampleLatents(unet, sched, ctx, null, { steps: 2, cfgScale: 1, seed: 0, shape: [3, 8, 8, 4] }), /same batch/);
  await assert.rejects(sampleLatents(unet, sched, ctx, null, { steps: 2, cfgScale: 1, seed: 0, shape: [2, 9, 8, 4] }), /divisible by 2\^\(levels−1\)/);
  assert.equal(tf.memory().numTensors, before, 'a failing sampling loop frees x');
  const x = tf.zeros([2, 8, 8, 4]) as tf.Tensor4D;
  const u5 = tf.zeros([1, 5, 32]) as tf.Tensor3D;
  assert.throws(() => cfgEps(unet, x, 10, ctx, u5, 2), /uncondCtx must be \[2 or 1,4,32\].*got \[1,5,32\]/);
  assert.throws(() => diffusionLoss(unet, x, ctx, new Rng(0), { numTrainSteps: 500, scheduler: sched }), /numTrainSteps \(500\) differs from the scheduler's numTrainSteps \(1000\)/);
  tf.dispose([x, u5, ctx]);
  p.dispose();
});

test('offset noise: s = 0 draws plain ε (the same stream as before); s > 0 adds one offset per sample and channel, constant over positions', () => {
  const shape = [64, 8, 8, 4];
  const plain = drawDiffusionNoise(new Rng(3), shape, 1000);
  const zero = drawDiffusionNoise(new Rng(3), shape, 1000, 0);
  assert.deepEqual(zero.t, plain.t);
  assert.deepEqual(Array.from(zero.eps), Array.from(plain.eps));
  const off = drawDiffusionNoise(new Rng(3), shape, 1000, 0.5);
  assert.deepEqual(off.t, plain.t);
  const per = 8 * 8 * 4;
  const offsets: number[] = [];
  for (let b = 0; b < 64; b++) {
    for (let c = 0; c < 4; c++) {
      const d = off.eps[b * per + c] - plain.eps[b * per + c];
      for (let i = c; i < per; i += 4) assert.ok(Math.abs(off.eps[b * per + i] - plain.eps[b * per + i] - d) < 1e-5, `sample ${b} channel ${c}: one offset at every position`);
      offsets.push(d);
    }
  }
  const sd = Math.sqrt(offsets.reduce((a, x) => a + x * x, 0) / offsets.length);
  assert.ok(sd > 0.4 && sd < 0.6, `offsets have std ≈ s = 0.5, got ${sd.toFixed(3)}`);
});

test('sampling memo (TensorMemo): a UNet with position codes, pooled text, a layout head and k/v copies gives the same ε with the memo as without, and a second step computes nothing new', async () => {

  const p = new Params();
  const cfg = { ...TINY, positional: true, pooledText: true, midAttention: true, layout: { grid: 4, channels: 4, heads: 2 } };
  const unet = new UNet(p, 'unet', cfg, new Rng(0));
  randomizeZeroInit(p, 1);
  // k/v copies of every cross-attention, as the guidance model swaps in (randomised: they must be used)
  const rng = new Rng(9);
  const kvOverride = new Map<string, { k: Linear; v: Linear }>();
  for (const a of unet.crossAttentionKV()) kvOverride.set(a.name, { k: new Linear(p, `copy.${a.name}.k`, 32, a.k.dout, rng, { bias: false }), v: new Linear(p, `copy.${a.name}.v`, 32, a.v.dout, rng, { bias: false }) });
  const ctx = randn([2, 4, 32], 11) as tf.Tensor3D;
  const uncond = randn([1, 4, 32], 12) as tf.Tensor3D;
  const before = tf.memory().numTensors;
  const memo = new TensorMemo();
  let missesAfterFirst = 0;
  for (const [i, t] of [900, 400, 7].entries()) {
    const x = randn([2, 8, 8, 4], 20 + i) as tf.Tensor4D;
    const plain = cfgEps(unet, x, t, ctx, uncond, 3, { kvOverride });
    const memoised = cfgEps(unet, x, t, ctx, uncond, 3, { kvOverride, memo });
    const d = maxAbsDiff(plain, memoised);
    assert.ok(d <= 1e-6 * Math.max(1, tf.tidy(() => tf.max(tf.abs(plain)).dataSync()[0])), `step ${i}: max |ε with memo − ε without| = ${d}`);
    if (i === 0) missesAfterFirst = memo.misses;
    tf.dispose([x, plain, memoised]);
  }
  // k/v of every cross-attention, the [uncond; cond] pair, position codes, the pooled-text term and the layout map
  assert.ok(missesAfterFirst >= unet.crossAttentionKV().length + 3, `${missesAfterFirst} values memoised`);
  assert.equal(memo.misses, missesAfterFirst, 'later steps reuse every memoised value');
  memo.dispose();
  assert.equal(tf.memory().numTensors, before, 'the memo frees what it kept');
  // the k/v copies are used with the memo: other copies give another ε
  const x = randn([2, 8, 8, 4], 30) as tf.Tensor4D;
  const m2 = new TensorMemo();
  const withCopies = cfgEps(unet, x, 500, ctx, uncond, 3, { kvOverride, memo: m2 });
  const without = cfgEps(unet, x, 500, ctx, uncond, 3, { memo: m2 });
  assert.ok(maxAbsDiff(withCopies, without) > 1e-4, 'a memo keeps k/v of the copies apart from the originals');
  m2.dispose();
  tf.dispose([x, withCopies, without, ctx, uncond]);
  p.dispose();
});
