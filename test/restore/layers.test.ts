/** Pixel (un)shuffle with gradients, replicate padding, backbone config errors. */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { pixelShuffle, pixelUnshuffle, replicatePad } from '../../lib/restore/layers';
import { Restormer } from '../../lib/restore/restormer';
import { NAFNet } from '../../lib/restore/nafnet';
import { Params } from '../../lib/models/params';
import { Rng } from '../../lib/util/rng';

test('setup backend', async () => {
  await initBackend({ quiet: true });
});

test('x=[2,4,6,3] r=2: pixelShuffle(pixelUnshuffle(x)) = x; gradient of shuffle is the inverse permutation', () => {
  const x = tf.randomNormal([2, 4, 6, 3]) as tf.Tensor4D;
  const u = pixelUnshuffle(x, 2);
  assert.deepEqual(u.shape, [2, 2, 3, 12]);
  const back = pixelShuffle(u, 2);
  assert.equal(tf.tidy(() => tf.max(tf.abs(tf.sub(back, x))).dataSync()[0]), 0);
  const w = tf.randomNormal([2, 4, 6, 3]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(pixelShuffle(t as tf.Tensor4D, 2), w)))(u);
  assert.equal(tf.tidy(() => tf.max(tf.abs(tf.sub(g, pixelUnshuffle(w as tf.Tensor4D, 2)))).dataSync()[0]), 0);
  tf.dispose([x, u, back, w, g]);
});

test('x=[1,2,3,1] p=2: replicatePad copies the edges', () => {
  const x = tf.tensor4d([1, 2, 3, 4, 5, 6], [1, 2, 3, 1]);
  const y = replicatePad(x, 2);
  assert.deepEqual(y.shape, [1, 6, 7, 1]);
  const v = y.dataSync();
  assert.deepEqual([...v.slice(0, 7)], [1, 1, 1, 2, 3, 3, 3]);
  assert.deepEqual([...v.slice(35, 42)], [4, 4, 4, 5, 6, 6, 6]);
  tf.dispose([x, y]);
});

test('throws when heads do not divide a level width, or NAFNet enc/dec lengths differ', () => {
  assert.throws(() => new Restormer(new Params(), 'r', { dim: 6, heads: [4, 1, 1, 1] }, new Rng(0)), /level 1 width 6 not divisible by heads\[0\] = 4/);
  assert.throws(() => new NAFNet(new Params(), 'n', { encBlocks: [1, 1], decBlocks: [1] }, new Rng(0)), /decBlocks must have as many entries as encBlocks/);
  assert.throws(() => new Restormer(new Params(), 'r', { dim: 8, depth: 3 } as never, new Rng(0)), /depth/);
});
