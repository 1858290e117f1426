import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { encodeImages, loadImageEncoder, preprocess, IMAGE_SIZE, CUTS, imagesToTensor } from '../../lib/models/image_encoder';
import { listEntries, loadCorpusImage } from '../../lib/data/corpus';
import { makeImage, RGBImage } from '../../lib/data/image';

// The real module objects (an `import * as` namespace under esModuleInterop has read-only getters).
const http = require('node:http') as typeof import('node:http');
const https = require('node:https') as typeof import('node:https');
const net = require('node:net') as typeof import('node:net');

// Any network access during these tests is an error: the encoder must load from node_modules alone.
const saved = { fetch: globalThis.fetch, httpRequest: http.request, httpGet: http.get, httpsRequest: https.request, httpsGet: https.get, connect: net.connect };
const netAttempts: string[] = [];
function blocked(what: string) {
  return (...args: unknown[]): never => {
    netAttempts.push(`${what} ${String(args[0])}`);
    throw new Error(`network access blocked in image_encoder.test: ${what}`);
  };
}

let loadMs = 0;
before(async () => {
  globalThis.fetch = blocked('fetch') as typeof fetch;
  const m = (mod: object, k: string, v: unknown) => Object.defineProperty(mod, k, { value: v, configurable: true, writable: true });
  m(http, 'request', blocked('http.request'));
  m(http, 'get', blocked('http.get'));
  m(https, 'request', blocked('https.request'));
  m(https, 'get', blocked('https.get'));
  m(net, 'connect', blocked('net.connect'));
  await initBackend({ quiet: true });
  loadMs = (await loadImageEncoder()).loadMs;
});

after(() => {
  globalThis.fetch = saved.fetch;
  const m = (mod: object, k: string, v: unknown) => Object.defineProperty(mod, k, { value: v, configurable: true, writable: true });
  m(http, 'request', saved.httpRequest);
  m(http, 'get', saved.httpGet);
  m(https, 'request', saved.httpsRequest);
  m(https, 'get', saved.httpsGet);
  m(net, 'connect', saved.connect);
});

function pattern(h: number, w: number, seed: number): RGBImage {
  const img = makeImage(h, w);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) img.data[(y * w + x) * 3 + c] = 0.5 + 0.5 * Math.sin((x * (c + 1) + y * seed) / 9 + seed);
  return img;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return d / Math.sqrt(na * nb);
}

test('loads offline from the installed nsfwjs package, frozen, cached', async () => {
  assert.deepEqual(netAttempts, []);
  const { model } = await loadImageEncoder();
  const again = await loadImageEncoder();
  assert.equal(again.model, model, 'second load returns the cached model');
  assert.ok(loadMs < 30_000, `load took ${loadMs} ms`);
  assert.equal(model.trainable, false);
  assert.ok(model.trainableWeights.length === 0, 'no trainable weights');
  for (const w of model.weights) assert.equal(w.trainable, false, `${w.name} must be frozen`);
  assert.deepEqual(model.inputs[0].shape, [null, IMAGE_SIZE, IMAGE_SIZE, 3]);
  assert.deepEqual(model.getLayer('out_relu').outputShape, [null, 7, 7, 1280]);
  assert.deepEqual(model.getLayer('block_10_project_BN').outputShape, [null, 14, 14, 96]);
});

test('imgs of different sizes are each resized: [RGBImage 50×70, RGBImage 224×224] → global=[2,1280]', async () => {
  const a = pattern(50, 70, 4);
  const b = pattern(224, 224, 5);
  const both = await encodeImages([a, b]);
  const one = await encodeImages([b]);
  assert.deepEqual(both.global.shape, [2, 1280]);
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(both.global.slice([1, 0], [1, 1280]), one.global))).dataSync()[0]);
  assert.ok(diff < 1e-4, `batching changes features by ${diff}`);
  tf.dispose([both.global, both.tokens, one.global, one.tokens]);
});

test("imgs=2×RGBImage 96×128 → global=[2,1280] tokens=[2,49,1280], global = mean of tokens", async () => {
  const { global, tokens } = await encodeImages([pattern(96, 128, 1), pattern(96, 128, 2)]);
  try {
    assert.deepEqual(global.shape, [2, 1280]);
    assert.deepEqual(tokens.shape, [2, 49, 1280]);
    const mean = tf.tidy(() => tf.mean(tokens, 1));
    const err = tf.tidy(() => tf.max(tf.abs(tf.sub(mean, global))).dataSync()[0]);
    mean.dispose();
    assert.ok(err < 1e-5);
    const min = tf.tidy(() => tf.min(tokens).dataSync()[0]);
    const max = tf.tidy(() => tf.max(tokens).dataSync()[0]);
    assert.ok(min >= 0 && max <= 6, `out_relu is ReLU6: got [${min}, ${max}]`);
  } finally {
    tf.dispose([global, tokens]);
  }
});

test("x=[3,224,224,3] cut=block10 → global=[3,96] tokens=[3,196,96]", async () => {
  const x = tf.randomUniform([3, 224, 224, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const { global, tokens } = await encodeImages(x, { cut: 'block10' });
  assert.equal(x.isDisposed, false, 'input tensor is not disposed');
  assert.deepEqual(global.shape, [3, CUTS.block10.dim]);
  assert.deepEqual(tokens.shape, [3, 196, 96]);
  tf.dispose([x, global, tokens]);
});

test('preprocess: [1,50,80,3] in [0,1] → [1,224,224,3]; unit keeps [0,1], symmetric maps to [-1,1]; centerCrop', () => {
  const x = tf.tidy(() => tf.concat([tf.zeros([1, 50, 40, 3]), tf.ones([1, 50, 40, 3])], 2)) as tf.Tensor4D;
  tf.tidy(() => {
    const u = preprocess(x);
    assert.deepEqual(u.shape, [1, 224, 224, 3]);
    assert.deepEqual([tf.min(u).dataSync()[0], tf.max(u).dataSync()[0]], [0, 1]);
    const s = preprocess(x, { range: 'symmetric' });
    assert.deepEqual([tf.min(s).dataSync()[0], tf.max(s).dataSync()[0]], [-1, 1]);
    const c = preprocess(x, { fit: 'centerCrop' }); // the centred 50×50 square: cols 15..64
    assert.deepEqual(c.shape, [1, 224, 224, 3]);
    const row = c.slice([0, 100, 0, 0], [1, 1, 224, 1]).dataSync();
    assert.equal(row[0], 0);
    assert.equal(row[223], 1);
  });
  x.dispose();
  assert.throws(() => preprocess(tf.zeros([1, 8, 8, 1]) as tf.Tensor4D), /preprocess: x must be \[B,H,W,3\] RGB, got \[1,8,8,1\]/);
});

test('throws when the batch is empty, the tensor is not RGB or the cut unknown', async () => {
  assert.throws(() => imagesToTensor([pattern(10, 10, 1), pattern(12, 10, 1)]), /image 1 is 12x10, image 0 is 10x10/);
  assert.throws(() => imagesToTensor([]), /imgs is empty/);
  await assert.rejects(encodeImages([]), /encodeImages: imgs is empty/);
  await assert.rejects(encodeImages(tf.zeros([1, 8, 8, 4]) as tf.Tensor4D), /images must be \[B,H,W,3\]/);
  await assert.rejects(encodeImages([pattern(8, 8, 1)], { cut: 'nope' as never }), /unknown cut 'nope'/);
});

test('deterministic: the same input gives identical features twice', async () => {
  const imgs = [pattern(64, 64, 3)];
  const a = await encodeImages(imgs);
  const b = await encodeImages(imgs);
  assert.deepEqual(a.tokens.dataSync(), b.tokens.dataSync());
  assert.deepEqual(a.global.dataSync(), b.global.dataSync());
  tf.dispose([a.global, a.tokens, b.global, b.tokens]);
});

test('no tensor leak: numTensors unchanged once the features are disposed', async () => {
  const x = tf.randomUniform([2, 100, 120, 3]) as tf.Tensor4D;
  await encodeImages(x).then((f) => tf.dispose([f.global, f.tokens])); // warm-up (cut model built)
  const n0 = tf.memory().numTensors;
  for (const cut of ['out_relu', 'block10'] as const) {
    const f = await encodeImages(x, { cut, fit: 'centerCrop', range: 'symmetric' });
    tf.dispose([f.global, f.tokens]);
  }
  assert.equal(tf.memory().numTensors, n0);
  x.dispose();
});

/**
 * Pretrained sanity: two overlapping crops (top-left 70 % and bottom-right 70 %) of the same photo
 * must be closer (cosine of `global`) than crops of different photos, and nearest-neighbour
 * retrieval must mostly find the partner. With 8 opencv-doc val photos on wasm (2026-11):
 *   out_relu, unit range:      same 0.79, different 0.43, retrieval 7/8   (25 photos: 0.72 / 0.46, 13/25)
 *   out_relu, symmetric range: same 0.85, different 0.57, retrieval 7/8   (25 photos: 0.75 / 0.57, 11/25)
 *   block10,  unit range:      same 0.87, different 0.26, retrieval 8/8   (25 photos: 0.78 / 0.26, 21/25)
 * — 'unit' separates better, hence the default.
 */
test('pretrained: crops of one photo are more alike than crops of different photos (8 val photos)', async () => {
  const entries = listEntries('val').slice(0, 8);
  const a: Float32Array[] = [];
  const b: Float32Array[] = [];
  for (const e of entries) {
    const im = await loadCorpusImage(e);
    const x = tf.tensor4d(im.data, [1, im.height, im.width, 3]);
    const ch = Math.floor(im.height * 0.7);
    const cw = Math.floor(im.width * 0.7);
    const ca = tf.slice(x, [0, 0, 0, 0], [1, ch, cw, 3]) as tf.Tensor4D;
    const cb = tf.slice(x, [0, im.height - ch, im.width - cw, 0], [1, ch, cw, 3]) as tf.Tensor4D;
    const fa = await encodeImages(ca);
    const fb = await encodeImages(cb);
    a.push(fa.global.dataSync() as Float32Array);
    b.push(fb.global.dataSync() as Float32Array);
    tf.dispose([x, ca, cb, fa.global, fa.tokens, fb.global, fb.tokens]);
  }
  let same = 0;
  let diff = 0;
  let hits = 0;
  const n = entries.length;
  for (let i = 0; i < n; i++) {
    same += cosine(a[i], b[i]) / n;
    let best = -Infinity;
    let arg = -1;
    for (let j = 0; j < n; j++) {
      const c = cosine(a[i], b[j]);
      if (j !== i) diff += c / (n * (n - 1));
      if (c > best) [best, arg] = [c, j];
    }
    if (arg === i) hits++;
  }
  console.log(`image encoder sanity: same ${same.toFixed(3)} different ${diff.toFixed(3)} retrieval ${hits}/${n} (load ${loadMs} ms)`);
  assert.ok(same > diff + 0.2, `same ${same} vs different ${diff}`);
  assert.ok(hits >= 6, `retrieval ${hits}/${n}`);
});
