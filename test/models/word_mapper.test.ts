/**
 * The image-to-words mapper's spatial pooling (lib/models/word_mapper.ts): 'regions' pools per-word
 * MLP outputs over the token positions; with `poolFirst` each word's MLP reads its pooled raw
 * features instead, MLP_i(Σ_p w_ip·token_p).
 */
import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { Params } from '../../lib/models/params';
import { Rng } from '../../lib/util/rng';
import { ImageToTextMapper, MapperConfigSchema } from '../../lib/models/word_mapper';

before(async () => {
  await initBackend({ quiet: true });
});

function mapper(poolFirst: boolean): { p: Params; m: ImageToTextMapper } {
  const p = new Params();
  const cfg = MapperConfigSchema.parse({ numWords: 5, hidden: 8, layers: 1, spatial: 'regions', poolFirst });
  return { p, m: new ImageToTextMapper(p, 'w', cfg, 6, 4, 1, new Rng(3), 9) };
}

test('poolFirst: word i = global MLP + its MLP on the softmax(where)-pooled raw tokens; differs from pooling MLP outputs', () => {
  const a = mapper(true);
  const b = mapper(false);
  const global = tf.randomNormal([2, 6], 0, 1, 'float32', 1) as tf.Tensor2D;
  const tokens = tf.randomNormal([2, 9, 6], 0, 1, 'float32', 2) as tf.Tensor3D;
  const got = a.m.call({ global, tokens }); // [B,N,D]
  assert.deepEqual(got.shape, [2, 5, 4]);
  assert.equal(a.m.poolFirst, true);
  const want = tf.tidy(() => {
    const w = tf.softmax(a.m.where!, -1).reshape([5, 9]); // [N,T]
    const pin = tf.stack([0, 1].map((bi) => tf.matMul(w, tokens.slice([bi, 0, 0], [1, -1, -1]).reshape([9, 6])))).transpose([1, 0, 2]) as tf.Tensor3D; // [N,B,dim]
    return tf.add(a.m.global.call(global), a.m.patch.call(pin)).transpose([1, 0, 2]);
  });
  const err = tf.max(tf.abs(tf.sub(got, want))).dataSync()[0];
  assert.ok(err < 1e-5, `poolFirst output differs from MLP_i(Σ w·token) by ${err}`);
  // the same weights without poolFirst compute something else (MLP before pooling)
  for (const [n, v] of a.p.entries()) b.p.select([n])[0][1].assign(v);
  const other = b.m.call({ global, tokens });
  assert.ok(tf.max(tf.abs(tf.sub(got, other))).dataSync()[0] > 1e-3);
  assert.throws(() => a.m.initFrom(b.m), /poolFirst true here, false in the source/);
  tf.dispose([global, tokens, got, want, other]);
  a.p.dispose();
  b.p.dispose();
});

test('colorPath: starts as the same words, then adds a per-word linear function of the token colours (the last 3 feature channels) only; needs color; initFrom copies it', () => {
  const make = (colorPath: boolean) => {
    const p = new Params();
    const cfg = MapperConfigSchema.parse({ numWords: 5, hidden: 8, layers: 1, spatial: 'regions', poolFirst: true, color: true, colorPath });
    return { p, m: new ImageToTextMapper(p, 'w', cfg, 6, 4, 1, new Rng(3), 9) };
  };
  const a = make(true);
  const b = make(false);
  const global = tf.randomNormal([2, 6], 0, 1, 'float32', 1) as tf.Tensor2D;
  const tokens = tf.randomNormal([2, 9, 6], 0, 1, 'float32', 2) as tf.Tensor3D;
  const d0 = tf.tidy(() => tf.max(tf.abs(tf.sub(a.m.call({ global, tokens }), b.m.call({ global, tokens })))).dataSync()[0]);
  assert.equal(d0, 0, 'zero-initialised: the same words as without the path');
  const W = tf.randomNormal([5, 27, 4], 0, 1, 'float32', 4);
  a.m.colorW!.assign(W);
  const got = tf.tidy(() => tf.sub(a.m.call({ global, tokens }), b.m.call({ global, tokens }))); // [B,N,D]: the path alone
  const want = tf.tidy(() => {
    const c = tokens.slice([0, 0, 3], [2, 9, 3]).reshape([2, 27]);
    return tf.stack([0, 1, 2, 3, 4].map((i) => tf.matMul(c, W.slice([i, 0, 0], [1, 27, 4]).reshape([27, 4]))), 1); // [B,N,D]
  });
  const err = tf.tidy(() => tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]);
  assert.ok(err < 1e-4, `colour path differs from W_i · colours by ${err}`);
  // callWithColours: the colour path reads other colours, the MLPs still read f's own
  const other = tf.randomNormal([2, 9, 3], 0, 1, 'float32', 5) as tf.Tensor3D;
  const withOther = tf.tidy(() => tf.sub(a.m.callWithColours({ global, tokens }, other), b.m.call({ global, tokens })));
  const wantOther = tf.tidy(() => tf.stack([0, 1, 2, 3, 4].map((i) => tf.matMul(other.reshape([2, 27]), W.slice([i, 0, 0], [1, 27, 4]).reshape([27, 4]))), 1));
  assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(withOther, wantOther))).dataSync()[0]) < 1e-4, 'callWithColours = MLP words + W_i · the given colours');
  const own = tf.tidy(() => tf.max(tf.abs(tf.sub(a.m.callWithColours({ global, tokens }, tokens.slice([0, 0, 3], [2, 9, 3])), a.m.call({ global, tokens })))).dataSync()[0]);
  assert.ok(own < 1e-5, 'its own colours: the words of call');
  assert.throws(() => a.m.callWithColours({ global, tokens }, other.slice([0, 0, 0], [2, 8, 3])), /colours must be \[2,9,3\], got \[2,8,3\]/);
  assert.throws(() => b.m.callWithColours({ global, tokens }, other), /callWithColours needs colorPath/);
  tf.dispose([other, withOther, wantOther]);
  const c = make(true);
  c.m.initFrom(a.m);
  assert.equal(tf.tidy(() => tf.max(tf.abs(tf.sub(c.m.colorW!, W))).dataSync()[0]), 0, 'initFrom copies the colour path');
  assert.throws(() => new ImageToTextMapper(new Params(), 'x', MapperConfigSchema.parse({ numWords: 5, hidden: 8, layers: 1, colorPath: true }), 6, 4, 1, new Rng(3), 9), /colorPath needs color: true/);
  tf.dispose([global, tokens, W, got, want]);
  [a, b, c].forEach((x) => x.p.dispose());
});

test('cellColours: each cell its mean colour mapped to [-1, 1] (the colour channels of mapperFeatures)', async () => {
  const { cellColours } = await import('../../lib/models/word_mapper');
  // left half red, right half blue, 28×28
  const x = tf.tidy(() => tf.concat([tf.tile(tf.tensor4d([1, 0, 0], [1, 1, 1, 3]), [1, 28, 14, 1]), tf.tile(tf.tensor4d([0, 0, 1], [1, 1, 1, 3]), [1, 28, 14, 1])], 2)) as tf.Tensor4D;
  const c = cellColours(x, 2); // [1,4,3]: cells row-major
  const want = [1, -1, -1, -1, -1, 1, 1, -1, -1, -1, -1, 1];
  c.dataSync().forEach((a, i) => assert.ok(Math.abs(a - want[i]) < 0.05, `value ${i}: ${a}, expected ≈ ${want[i]} (only the resize blends the border)`));
  assert.throws(() => cellColours(x, 5), /5 cells must divide the encoder's input size/);
  tf.dispose([x, c]);
});
