import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { Params } from '../../lib/models/params';
import { Autoencoder, AutoencoderConfigSchema, localHighFrequency } from '../../lib/models/autoencoder';
import { autoencoderKey } from '../../lib/t2i/autoencoder';
import { t2iPreset } from '../../lib/t2i/presets';
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

test('localHighFrequency: one value per f×f block, ~0 on a flat image, σ of white noise ≈ √20·σ', () => {
  tf.tidy(() => {
    const flat = tf.fill([1, 18, 18, 3], 0.5) as tf.Tensor4D;
    const a = localHighFrequency(flat, 4);
    assert.deepEqual(a.shape, [1, 4, 4]);
    assert.ok(a.max().dataSync()[0] < 0.01, 'flat image has no high frequency');
    const noisy = tf.add(0.5, tf.randomNormal([1, 66, 66, 3], 0, 0.1, 'float32', 5)) as tf.Tensor4D;
    const m = localHighFrequency(noisy, 4).mean().dataSync()[0];
    assert.ok(Math.abs(m - Math.sqrt(20) * 0.1) < 0.05, `RMS Laplacian of σ=0.1 noise ≈ 0.447, got ${m}`);
  });
  assert.throws(() => tf.tidy(() => localHighFrequency(tf.zeros([1, 2, 8, 3]) as tf.Tensor4D, 4)), /2x8 is smaller than 3x3/);
});

test('Autoencoder.loss: the HF term (hfWeight) is logged as l_hf, raises the loss and reaches the decoder', () => {
  const p = new Params();
  const ae = new Autoencoder(p, 'ae', cfg, new Rng(3));
  const x = tf.randomUniform([2, 16, 16, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const plain = ae.loss(x);
  assert.equal(plain.parts.l_hf, undefined, 'no HF term by default');
  const withHf = ae.loss(x, { hfWeight: 0.5 });
  const lhf = withHf.parts.l_hf.dataSync()[0];
  assert.ok(lhf > 0, 'an untrained decoder does not match the noise image\'s fine detail');
  assert.ok(Math.abs(withHf.total.dataSync()[0] - plain.total.dataSync()[0] - 0.5 * lhf) < 1e-4, 'total = plain + 0.5·l_hf');
  // the HF term alone has a gradient on the decoder's last conv
  const { grads, value } = tf.variableGrads(() => ae.loss(x, { hfWeight: 1 }).parts.l_hf, [p.get('ae.dec.out.w') as tf.Variable]);
  assert.ok(tf.sum(tf.abs(Object.values(grads)[0])).dataSync()[0] > 0);
  tf.dispose([x, value, plain.total, withHf.total, ...Object.values(plain.parts), ...Object.values(withHf.parts), ...Object.values(grads)]);
  p.dispose();
});

test('autoencoderKey (AE resume key and latent-cache signature) changes with aeHfWeight, not with UNet settings', () => {
  const demo = t2iPreset('demo');
  assert.notDeepEqual(autoencoderKey({ ...demo, aeHfWeight: 0 }), autoencoderKey({ ...demo, aeHfWeight: 0.5 }));
  assert.deepEqual(autoencoderKey({ ...demo, aeHfWeight: undefined }), autoencoderKey({ ...demo, aeHfWeight: 0 }), 'absent = 0');
  assert.deepEqual(autoencoderKey(demo), autoencoderKey({ ...demo, unetTrain: { ...demo.unetTrain, steps: 1 } }));
  assert.notDeepEqual(autoencoderKey(demo), autoencoderKey({ ...demo, aeTrain: { ...demo.aeTrain, lr: 1 } }));
});
