/**
 * The restorers' faster forward computes the same function as the plain composition it replaced (docs §6,
 * "A faster 512² pass"): each rewritten piece against that composition, written out here, on random
 * weights (non-trivial γ, β, biases, temperatures) — a transformer block (layer norms folded into the 1×1
 * convs, MDTA without transposes in the [B,HW,C] layout, one head and several), MDTA and GDFN in bands of rows,
 * the 4×4 stride-2 form of conv + pixel-unshuffle, the 3×3 conv by taps; and the one-pass default for
 * images that fit DEFAULT_WHOLE_IMAGE_BUDGET_MIB.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { conv3x3ByTaps, geluErf, l2normalize, pixelUnshuffle, unshuffledConv } from '../../lib/restore/layers';
import { GDFN, MDTA, TransformerBlock } from '../../lib/restore/restormer';
import { planTiles, DEFAULT_TILE_BUDGET_MIB } from '../../lib/restore/tiled';
import { loadRestorer } from '../../lib/restore/train';
import { shippedCheckpoint } from '../../lib/util/paths';
import { Params } from '../../lib/models/params';
import { Rng } from '../../lib/util/rng';

test('setup backend', async () => {
  await initBackend({ quiet: true });
});

/** Every parameter to N(0.5, 0.5²) (scales and shifts far from their 1 / 0 inits). */
function randomize(p: Params, seed: number): void {
  const rng = new Rng(seed);
  for (const [, v] of p.trainable()) v.assign(tf.tensor(Float32Array.from({ length: v.size }, () => 0.5 + 0.5 * rng.normal()), v.shape));
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/** Float32 rounding allowance: 1e-5 of the reference's largest magnitude (at least 1e-5). */
function tolerance(ref: tf.Tensor): number {
  return 1e-5 * Math.max(1, tf.tidy(() => tf.max(tf.abs(ref)).dataSync()[0]));
}

type NormLike = { call<T extends tf.Tensor>(x: T): T };

/** The composition before: norm → 1×1 → depthwise → split → per-head [B,heads,ch,HW] → q̂k̂ᵀ·t → softmax → ·v → proj. */
function referenceMDTA(m: MDTA, x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const nh = m.heads;
  const ch = c / nh;
  const [q, k, v] = tf.split(m.dw.call(m.qkv.call(x)), 3, 3) as tf.Tensor4D[];
  const heads = (t: tf.Tensor4D) => t.reshape([b, h * w, nh, ch]).transpose([0, 2, 3, 1]);
  const logits = tf.mul(tf.matMul(l2normalize(heads(q)), l2normalize(heads(k)), false, true), m.temperature.reshape([1, nh, 1, 1]));
  const out = tf.matMul(tf.softmax(logits, -1), heads(v));
  return m.proj.call(out.transpose([0, 3, 1, 2]).reshape([b, h, w, c]) as tf.Tensor4D);
}

function referenceGDFN(f: GDFN, x: tf.Tensor4D): tf.Tensor4D {
  const [x1, x2] = tf.split(f.dw.call(f.pin.call(x)), 2, 3) as tf.Tensor4D[];
  return f.pout.call(tf.mul(geluErf(x1), x2) as tf.Tensor4D);
}

function referenceBlock(blk: TransformerBlock, x: tf.Tensor4D): tf.Tensor4D {
  const n1 = blk.norm1 as NormLike;
  const n2 = blk.norm2 as NormLike;
  const y = tf.add(x, referenceMDTA(blk.attn, n1.call(x))) as tf.Tensor4D;
  return tf.add(y, referenceGDFN(blk.ffn, n2.call(y))) as tf.Tensor4D;
}

for (const layerNorm of ['withBias', 'biasFree'] as const) {
  for (const heads of [1, 3]) {
    test(`transformer block (${layerNorm} norm, ${heads} head${heads > 1 ? 's' : ''}, biases): output and parameter gradients equal the plain composition`, () => {
      const p = new Params();
      const blk = new TransformerBlock(p, 'b', 12, heads, { ffnExpansion: 2.66, bias: true, layerNorm }, new Rng(1));
      randomize(p, 2);
      const x = tf.randomNormal([2, 9, 10, 12], 0, 1, 'float32', 3) as tf.Tensor4D;
      const y = tf.tidy(() => blk.call(x));
      const ref = tf.tidy(() => referenceBlock(blk, x));
      const d = maxDiff(y, ref);
      assert.ok(d <= tolerance(ref), `max |new − reference| = ${d} (allowed ${tolerance(ref)})`);
      // and under a gradient tape (training): the same parameter gradients
      const r = tf.randomNormal(y.shape, 0, 1, 'float32', 4);
      const vars = p.trainable().map(([, v]) => v);
      const g1 = tf.variableGrads(() => tf.sum(tf.mul(blk.call(x), r)) as tf.Scalar, vars);
      const g2 = tf.variableGrads(() => tf.sum(tf.mul(referenceBlock(blk, x), r)) as tf.Scalar, vars);
      for (const [name, g] of Object.entries(g2.grads)) {
        const e = maxDiff(g1.grads[name], g);
        const s = tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0]);
        assert.ok(e <= 5e-4 * Math.max(1, s), `gradient of ${name}: max |new − reference| = ${e} (scale ${s})`);
      }
      tf.dispose([x, y, ref, r, g1.value, g2.value, ...Object.values(g1.grads), ...Object.values(g2.grads)]);
      p.dispose();
    });
  }
}

test('GDFN in bands of rows (1-row halo) equals the whole map, and the plain composition', () => {
  const p = new Params();
  const f = new GDFN(p, 'f', 8, 2.66, true, new Rng(5));
  randomize(p, 6);
  const x = tf.randomNormal([2, 21, 6, 8], 0, 1, 'float32', 7) as tf.Tensor4D;
  f.bandFloats = Infinity;
  const whole = f.call(x);
  f.bandFloats = 2 * 6 * f.hidden * 8; // 8 rows a band: 3 bands, the last 5 rows
  const banded = f.call(x);
  const ref = tf.tidy(() => referenceGDFN(f, x));
  assert.ok(maxDiff(banded, whole) <= tolerance(ref), `banded vs whole: ${maxDiff(banded, whole)} (allowed ${tolerance(ref)})`);
  assert.ok(maxDiff(banded, ref) <= tolerance(ref), `banded vs reference: ${maxDiff(banded, ref)} (allowed ${tolerance(ref)})`);
  // a band boundary off by a row would change the rows next to it: check the control does fail
  const shifted = tf.concat([tf.slice(whole, [0, 0, 0, 0], [-1, 8, -1, -1]), tf.slice(x, [0, 8, 0, 0], [-1, 1, -1, -1]), tf.slice(whole, [0, 9, 0, 0], [-1, -1, -1, -1])], 1);
  assert.ok(maxDiff(shifted, whole) > 1e-3, 'the comparison sees a single wrong row');
  tf.dispose([x, whole, banded, ref, shifted]);
  p.dispose();
});

test('MDTA in bands of rows (sums over bands, 1-row halo) equals the whole map and the plain composition; 1 and 2 heads', () => {
  for (const heads of [1, 2]) {
    const p = new Params();
    const m = new MDTA(p, 'm', 8, heads, true, new Rng(11));
    randomize(p, 12);
    const x = tf.randomNormal([2, 21, 6, 8], 0, 1, 'float32', 13) as tf.Tensor4D;
    m.bandFloats = Infinity;
    const whole = m.call(x);
    m.bandFloats = 2 * 6 * 8 * 8; // 3 bands of 7 rows
    const banded = m.call(x);
    const ref = tf.tidy(() => referenceMDTA(m, x));
    assert.ok(maxDiff(banded, whole) <= tolerance(ref), `${heads} heads, banded vs whole: ${maxDiff(banded, whole)}`);
    assert.ok(maxDiff(banded, ref) <= tolerance(ref), `${heads} heads, banded vs reference: ${maxDiff(banded, ref)}`);
    tf.dispose([x, whole, banded, ref]);
    p.dispose();
  }
});

test('unshuffledConv = pixelUnshuffle(conv3x3 same, 2); conv3x3ByTaps = conv3x3 same + bias', () => {
  const x = tf.randomNormal([2, 8, 6, 5], 0, 1, 'float32', 8) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 5, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
  const bias = tf.randomNormal([3], 0, 1, 'float32', 10);
  const u = unshuffledConv(x, w);
  const uRef = pixelUnshuffle(tf.conv2d(x, w, 1, 'same'), 2);
  assert.deepEqual(u.shape, [2, 4, 3, 12]);
  assert.ok(maxDiff(u, uRef) <= tolerance(uRef), `unshuffledConv: ${maxDiff(u, uRef)}`);
  const y = conv3x3ByTaps(x, w, bias);
  const yRef = tf.add(tf.conv2d(x, w, 1, 'same'), bias);
  assert.ok(maxDiff(y, yRef) <= tolerance(yRef), `conv3x3ByTaps: ${maxDiff(y, yRef)}`);
  tf.dispose([x, w, bias, u, uRef, y, yRef]);
});

test('default plan: the shipped dim-24 guided PromptIR restores 512² in one pass; a 12-Mpixel photo keeps tiles of the 768 MiB budget', () => {
  const { net, params } = loadRestorer(shippedCheckpoint('restore-promptir-all-in-one-guided-demo-wide'));
  try {
    const one = planTiles(net, 512, 512, { guidance: [128, 128] });
    assert.equal(one.count, 1);
    assert.ok(planTiles(net, 512, 512, { guidance: [128, 128], budgetMiB: DEFAULT_TILE_BUDGET_MIB }).count > 1, 'a given budget of 768 MiB still tiles 512²');
    const big = planTiles(net, 3000, 4000, { guidance: [128, 128] });
    assert.ok(big.count > 1 && big.predictedBytes <= DEFAULT_TILE_BUDGET_MIB * 2 ** 20, `${big.count} tiles, ${big.predictedBytes} B predicted`);
  } finally {
    params.dispose();
  }
});
