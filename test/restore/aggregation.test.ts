/**
 * Dynamic aggregation: known-answer matching (a shifted copy matches at the shift), transfer
 * shapes per level, the transfer matrix (rows average to 1), gradients without tf.gather, leaks.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { DynamicAggregation, matchFeatures, matchedCells, transferMatrix, coarseSearch } from '../../lib/restore/aggregation';
import { Params } from '../../lib/models/params';
import { Rng } from '../../lib/util/rng';

function randn(rng: Rng, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => rng.normal()), shape);
}

test('setup backend', async () => {
  await initBackend({ quiet: true });
});

test('xd=[1,12,12,8] gd=[1,24,28,8], X = G shifted by (5,7): interior cells match at the shift with cosine 1', () => {
  const rng = new Rng(3);
  const gd = randn(rng, [1, 24, 28, 8]) as tf.Tensor4D;
  const xd = tf.slice(gd, [0, 5, 7, 0], [1, 12, 12, 8]) as tf.Tensor4D;
  const { indices, sim } = matchFeatures(xd, gd, { blockSize: 4, refDownBlockSize: 1.5, dilations: [1, 2, 3] });
  // coarse: the centre block (1,1) has its centre cell (6,6) → G (11,13)
  const centre = indices.coarse[4];
  assert.deepEqual([Math.floor(centre / 28), centre % 28], [11, 13], 'coarse match of the interior block');
  const cells = matchedCells(indices);
  const s = sim.dataSync();
  let checked = 0;
  for (let y = 1; y < 11; y++)
    for (let x = 1; x < 11; x++) {
      const o = (y * 12 + x) * 2;
      assert.deepEqual([cells[o], cells[o + 1]], [y + 5, x + 7], `X cell (${y},${x})`);
      const blk = Math.floor(y / 4) * 3 + Math.floor(x / 4);
      const simV = s[blk * 16 + (y % 4) * 4 + (x % 4)];
      assert.ok(Math.abs(simV - 1) < 1e-4, `similarity of X cell (${y},${x}) is ${simV}`);
      checked++;
    }
  assert.equal(checked, 100);
  tf.dispose([gd, xd, sim]);
});

test('coarseSearch: a reversed block order is found (each block matches its own copy)', () => {
  const rng = new Rng(5);
  const xd = randn(rng, [2, 8, 8, 6]) as tf.Tensor4D;
  const gd = tf.pad(xd, [[0, 0], [3, 3], [2, 2], [0, 0]]) as tf.Tensor4D; // [2,14,12,6], copy at (3,2)
  const idx = coarseSearch(xd, gd, 4, [1]);
  // block centres (2,2),(2,6),(6,2),(6,6) → G (5,4),(5,8),(9,4),(9,8)
  const want = [5 * 12 + 4, 5 * 12 + 8, 9 * 12 + 4, 9 * 12 + 8];
  assert.deepEqual([...idx], [...want, ...want]);
  tf.dispose([xd, gd]);
});

test('transferMatrix: every row sums to 1 (fold / divisor), k=4 window 5×5', () => {
  const rng = new Rng(9);
  const gd = randn(rng, [1, 10, 10, 4]) as tf.Tensor4D;
  const xd = randn(rng, [1, 8, 8, 4]) as tf.Tensor4D;
  const { indices, sim } = matchFeatures(xd, gd, { blockSize: 4, refDownBlockSize: 1.5, dilations: [1, 2] });
  const a = transferMatrix(indices);
  const sums = tf.sum(a, -1).dataSync();
  for (const v of sums) assert.ok(Math.abs(v - 1) < 1e-5, `row sum ${v}`);
  tf.dispose([gd, xd, sim, a]);
});

const TINY = { nf: 4, blockSize: 2, encBlocks: 1 };

test('x=[2,32,48,3] g=[2,40,24,3]: F̂g per level [2,32/2^l,48/2^l,4·2^l], no leak', () => {
  const p = new Params();
  const agg = new DynamicAggregation(p, 'm.masa', TINY, new Rng(0));
  const rng = new Rng(1);
  const x = tf.tensor4d(Float32Array.from({ length: 2 * 32 * 48 * 3 }, () => rng.random()), [2, 32, 48, 3]);
  const g = tf.tensor4d(Float32Array.from({ length: 2 * 40 * 24 * 3 }, () => rng.random()), [2, 40, 24, 3]);
  const before = tf.memory().numTensors;
  const { features, indices } = agg.forward(x, g);
  assert.equal(features.length, 4);
  features.forEach((f, l) => assert.deepEqual(f.shape, [2, 32 / 2 ** l, 48 / 2 ** l, 4 * 2 ** l], `level ${l}`));
  assert.equal(indices.geom.hr, 5);
  assert.equal(indices.geom.wr, 3);
  tf.dispose(features);
  assert.equal(tf.memory().numTensors, before, 'forward leaks no tensors');
  tf.dispose([x, g]);
  p.dispose();
});

test('x=[1,16,16,3] g=[1,24,24,3]: gradients reach every matcher encoder weight (via similarity and features), no gather', () => {
  const p = new Params();
  const agg = new DynamicAggregation(p, 'm.masa', TINY, new Rng(0));
  const rng = new Rng(2);
  const x = tf.tensor4d(Float32Array.from({ length: 16 * 16 * 3 }, () => rng.random()), [1, 16, 16, 3]);
  const g = tf.tensor4d(Float32Array.from({ length: 24 * 24 * 3 }, () => rng.random()), [1, 24, 24, 3]);
  const vars = p.trainable();
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(() => tf.addN(agg.call(x, g).map((f) => tf.sum(f))) as tf.Scalar, vars.map(([, v]) => v));
  for (const [name, v] of vars) {
    const gr = grads[v.name];
    assert.ok(gr, `gradient for ${name}`);
    assert.ok(tf.tidy(() => tf.max(tf.abs(gr)).dataSync()[0]) > 0, `non-zero gradient for ${name}`);
  }
  tf.dispose([value, ...Object.values(grads)]);
  assert.equal(tf.memory().numTensors, before, 'a gradient step leaks no tensors');
  tf.dispose([x, g]);
  p.dispose();
});

test('throws when x is not padded to 2^(levels−1)·blockSize or g is too small', () => {
  const p = new Params();
  const agg = new DynamicAggregation(p, 'm.masa', TINY, new Rng(0));
  const x = tf.zeros([1, 24, 16, 3]) as tf.Tensor4D;
  const g = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
  assert.throws(() => agg.call(x, g), /x \[1,24,16,3\] must be padded to a multiple of 16/);
  const x2 = tf.zeros([1, 16, 16, 3]) as tf.Tensor4D;
  assert.throws(() => agg.call(x2, g), /g \[1,16,16,3\] must be padded to a multiple of 8 and be at least 24×24/);
  tf.dispose([x, g, x2]);
  p.dispose();
});
