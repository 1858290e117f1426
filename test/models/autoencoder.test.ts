import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { Params } from '../../lib/models/params';
import { Autoencoder, AutoencoderConfigSchema } from '../../lib/models/autoencoder';
import { Rng } from '../../lib/util/rng';

test('before: backend', async () => {
  await initBackend({ quiet: true });
});

const cfg = AutoencoderConfigSchema.parse({ channels: [8, 16, 16], latentChannels: 4 });

test('x=[2,16,24,3] → z=[2,4,6,4] → x̂=[2,16,24,3] (factor 4)', () => {
  const p = new Params();
  const ae = new Autoencoder(p, 'ae', cfg, new Rng(0));
  assert.equal(ae.factor, 4);
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    const x = tf.randomUniform([2, 16, 24, 3]) as tf.Tensor4D;
    const z = ae.encode(x);
    assert.deepEqual(z.shape, [2, 4, 6, 4]);
    assert.deepEqual(ae.decode(z).shape, [2, 16, 24, 3]);
  });
  assert.equal(tf.memory().numTensors, before);
  p.dispose();
});

test('encode throws naming the size when not divisible by the factor', () => {
  const p = new Params();
  const ae = new Autoencoder(p, 'ae', cfg, new Rng(0));
  assert.throws(() => tf.tidy(() => ae.encode(tf.zeros([1, 18, 16, 3]) as tf.Tensor4D)), /18x16 must be divisible by 4/);
  p.dispose();
});

test('gradients reach encoder and decoder on this backend; same seed → same weights', () => {
  const p = new Params();
  const ae = new Autoencoder(p, 'ae', cfg, new Rng(3));
  const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const { grads, value } = tf.variableGrads(() => ae.loss(x).total);
  for (const name of ['ae.enc.in.w', 'ae.dec.out.w', 'ae.enc.down0.w']) {
    const g = grads[p.get(name).name];
    assert.ok(g, `gradient for ${name}`);
    assert.ok((tf.sum(tf.abs(g)).dataSync()[0]) > 0, `non-zero gradient for ${name}`);
  }
  tf.dispose([x, value, ...Object.values(grads)]);
  const q = new Params();
  new Autoencoder(q, 'ae', cfg, new Rng(3));
  for (const n of p.names()) assert.deepEqual(Array.from(q.get(n).dataSync()), Array.from(p.get(n).dataSync()), n);
  p.dispose();
  q.dispose();
});
