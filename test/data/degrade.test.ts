/** Tests for lib/data/degrade: determinism, reported params, phrases, effects, kernels, validation. */
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { RGBImage, makeImage } from '../../lib/data/image';
import { encodeImage } from '../../lib/data/io';
import { Rng } from '../../lib/util/rng';
import {
  TASKS,
  Task,
  addGaussianNoise,
  degrade,
  depthProxy,
  removeHaze,
  diskKernel,
  kernelSum,
  lineKernel,
  motionKernel,
  sampleMotion,
  rainLayer,
  sampleNoise,
  sampleRain,
  convolve,
  MOTION_DEFAULTS,
} from '../../lib/data/degrade';

/** A smooth, textured test image [H,W,3] in [0.1, 0.9]. */
function testImage(h = 48, w = 40): RGBImage {
  const d = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) d[(y * w + x) * 3 + c] = 0.1 + 0.8 * (((x * 7 + y * 3 + c * 50 + ((x * y) % 11) * 9) % 256) / 255);
  return makeImage(h, w, d);
}

const sha = (a: Float32Array | Uint8Array) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

const KEYWORD: Record<Task, string> = { noise: 'noisy', rain: 'rainy', haze: 'hazy', motion: 'blurry', defocus: 'blurry' };

for (const task of TASKS) {
  test(`${task}: same seed → identical Float32Array and PNG bytes; other seed differs`, async () => {
    const img = testImage();
    const r1 = degrade(img, { task, seed: 7 });
    const r2 = degrade(img, { task, seed: 7 });
    const r3 = degrade(img, { task, seed: 8 });
    assert.equal(sha(r1.image.data), sha(r2.image.data));
    assert.equal(sha(await encodeImage(r1.image)), sha(await encodeImage(r2.image)));
    assert.notEqual(sha(r1.image.data), sha(r3.image.data));
    assert.deepEqual(r1.params, r2.params);
    assert.notDeepEqual(r1.params, r3.params);
    assert.equal(r1.image.height, img.height);
    assert.equal(r1.image.width, img.width);
    assert.equal(r1.task, task);
  });

  test(`${task}: phrase contains '${KEYWORD[task]}', params reported and finite`, () => {
    const r = degrade(testImage(), { task, seed: 3 });
    assert.ok(r.phrase.includes(KEYWORD[task]), r.phrase);
    assert.match(r.phrase, /^(slightly |heavily )?(noisy|rainy|hazy|blurry)$/);
    for (const [k, v] of Object.entries(r.params)) if (typeof v === 'number') assert.ok(Number.isFinite(v), `${k}=${v}`);
    assert.equal(JSON.parse(JSON.stringify(r.params)).constructor, Object);
  });
}

test('degrade: an override fixes that value and leaves the other drawn values unchanged', () => {
  const img = testImage();
  const a = degrade(img, { task: 'rain', seed: 11 });
  const b = degrade(img, { task: 'rain', seed: 11, angle: 10 });
  assert.equal(b.params.angle, 10);
  assert.equal(b.params.density, a.params.density);
  assert.equal(b.params.length, a.params.length);
  assert.equal(b.params.intensity, a.params.intensity);
});

test('degrade: ranges narrow the sampling', () => {
  for (let s = 0; s < 20; s++) {
    const r = degrade(testImage(16, 16), { task: 'haze', seed: s, ranges: { beta: [2, 2.5] } });
    assert.ok(r.params.beta >= 2 && r.params.beta <= 2.5);
  }
});

test('noise phrases: σ15, σ25 → noisy; σ50 → heavily noisy; σ5 → slightly noisy', () => {
  const img = testImage(8, 8);
  assert.equal(degrade(img, { task: 'noise', seed: 0, sigma: 15 }).phrase, 'noisy');
  assert.equal(degrade(img, { task: 'noise', seed: 0, sigma: 25 }).phrase, 'noisy');
  assert.equal(degrade(img, { task: 'noise', seed: 0, sigma: 50 }).phrase, 'heavily noisy');
  assert.equal(degrade(img, { task: 'noise', seed: 0, sigma: 5 }).phrase, 'slightly noisy');
});

test("noise 'float' [128,128,3] σ25: residual mean ≈ 0, std ≈ 25/255, values not clipped", () => {
  const img = makeImage(128, 128, new Float32Array(128 * 128 * 3).fill(0.02));
  const out = addGaussianNoise(img, { sigma: 25, mode: 'float' }, new Rng(1));
  let s = 0, ss = 0, neg = 0;
  for (let i = 0; i < out.data.length; i++) {
    const r = out.data[i] - img.data[i];
    s += r;
    ss += r * r;
    if (out.data[i] < 0) neg++;
  }
  const n = out.data.length;
  const mean = s / n;
  const std = Math.sqrt(ss / n - mean * mean);
  assert.ok(Math.abs(mean) < 0.002, `mean ${mean}`);
  assert.ok(Math.abs(std - 25 / 255) / (25 / 255) < 0.02, `std ${std} vs ${25 / 255}`);
  assert.ok(neg > 0, 'float mode must not clip');
});

test("noise 'uint8' σ25: outputs are k/255 in [0,1], truncation lowers the mean by ≈ 0.5/255", () => {
  const img = makeImage(128, 128, new Float32Array(128 * 128 * 3).fill(128 / 255));
  const out = addGaussianNoise(img, { sigma: 25, mode: 'uint8' }, new Rng(2));
  let s = 0;
  for (const v of out.data) {
    assert.ok(v >= 0 && v <= 1);
    assert.ok(Math.abs(v * 255 - Math.round(v * 255)) < 1e-4);
    s += v * 255;
  }
  const meanShift = s / out.data.length - 128;
  assert.ok(meanShift < -0.3 && meanShift > -0.7, `mean shift ${meanShift}`);
});

test('noise σ0 is the identity in float mode', () => {
  const img = testImage(8, 8);
  assert.deepEqual(addGaussianNoise(img, { sigma: 0, mode: 'float' }, new Rng(0)).data, img.data);
});

test('rain: only brightens (O ≥ B), stays in [0,1], streak layer non-trivial', () => {
  const img = testImage();
  const r = degrade(img, { task: 'rain', seed: 4, density: 0.02 });
  let changed = 0;
  for (let i = 0; i < img.data.length; i++) {
    assert.ok(r.image.data[i] >= img.data[i] - 1e-7 && r.image.data[i] <= 1);
    if (r.image.data[i] > img.data[i] + 1e-3) changed++;
  }
  assert.ok(changed > img.data.length * 0.05, `changed ${changed}`);
  const S = rainLayer(32, 32, { density: 0, length: 20, angle: 0, intensity: 1 }, new Rng(0));
  assert.ok(S.every((v) => v === 0), 'density 0 → no streaks');
});

test('rain line kernel [size,size] sums to 1 and is vertical at angle 0', () => {
  const k = lineKernel(21, 0);
  assert.ok(Math.abs(kernelSum(k) - 1) < 1e-12);
  const c = (k.size - 1) / 2;
  let off = 0;
  for (let y = 0; y < k.size; y++) for (let x = 0; x < k.size; x++) if (x !== c) off += k.weights[y * k.size + x];
  assert.ok(off < 1e-9, 'all mass in the centre column');
  assert.ok(Math.abs(kernelSum(lineKernel(30, 37)) - 1) < 1e-12);
});

test('haze raises the mean dark channel and pulls values towards A', () => {
  const img = testImage();
  const r = degrade(img, { task: 'haze', seed: 0, beta: 2, A: 0.95 });
  const dark = (im: RGBImage) => {
    let s = 0;
    for (let p = 0; p < im.height * im.width; p++) s += Math.min(im.data[p * 3], im.data[p * 3 + 1], im.data[p * 3 + 2]);
    return s / (im.height * im.width);
  };
  assert.ok(dark(r.image) > dark(img) + 0.1, `${dark(r.image)} vs ${dark(img)}`);
  for (let i = 0; i < img.data.length; i++) assert.ok(Math.abs(r.image.data[i] - 0.95) <= Math.abs(img.data[i] - 0.95) + 1e-6);
  // β = 0 → t = 1 → identity
  const id = degrade(img, { task: 'haze', seed: 0, beta: 0 });
  for (let i = 0; i < img.data.length; i++) assert.ok(Math.abs(id.image.data[i] - img.data[i]) < 1e-6);
});

test('removeHaze inverts addHaze given the true β and A, and only then', () => {
  const img = testImage();
  const p = { beta: 2.4, A: 0.8 };
  const x = degrade(img, { task: 'haze', seed: 3, ...p }).image;
  const back = removeHaze(x, p);
  let err = 0;
  for (let i = 0; i < img.data.length; i++) err = Math.max(err, Math.abs(back.data[i] - img.data[i]));
  assert.ok(err < 1e-4, `max error ${err}`);
  const wrong = removeHaze(x, { beta: 1.4, A: 0.8 });
  let far = 0;
  for (let i = 0; i < img.data.length; i++) far = Math.max(far, Math.abs(wrong.data[i] - img.data[i]));
  assert.ok(far > 0.05, `a wrong β still gives the clean image (max difference ${far})`);
  assert.ok(wrong.data.every((v) => v >= 0 && v <= 1), 'clipped to [0,1]');
  assert.throws(() => removeHaze(x, { beta: -1, A: 0.8 }), /beta/);
});

test('haze depth proxy [H,W] in [0.1,1], far (larger) at the top than at the bottom', () => {
  const d = depthProxy(40, 30);
  assert.ok(d.every((v) => v >= 0.1 - 1e-12 && v <= 1 + 1e-12));
  assert.ok(d[15] > d[39 * 30 + 15]);
  assert.doesNotThrow(() => depthProxy(1, 1));
});

test('motion PSF [size,size] sums to 1, non-negative, ≤ 31 px at default strength', () => {
  let maxSize = 0;
  for (let s = 0; s < 100; s++) {
    const rng = new Rng(s);
    const k = motionKernel(sampleMotion(rng), rng);
    assert.ok(Math.abs(kernelSum(k) - 1) < 1e-9);
    assert.ok(k.weights.every((v) => v >= 0));
    assert.equal(k.size % 2, 1);
    maxSize = Math.max(maxSize, k.size);
  }
  assert.ok(maxSize <= 31, `max kernel ${maxSize}`);
  assert.ok(MOTION_DEFAULTS.length[1] + 4 <= 31);
});

test('motion and defocus blur keep a constant image constant and lower the gradient energy', () => {
  const flat = makeImage(20, 20, new Float32Array(1200).fill(0.4));
  for (const task of ['motion', 'defocus'] as const) {
    const r = degrade(flat, { task, seed: 1 });
    for (const v of r.image.data) assert.ok(Math.abs(v - 0.4) < 1e-6);
    const img = testImage();
    const b = degrade(img, { task, seed: 1, ...(task === 'motion' ? { length: 15 } : { radius: 3 }) }).image;
    const grad = (im: RGBImage) => {
      let s = 0;
      for (let i = 3; i < im.data.length; i++) s += (im.data[i] - im.data[i - 3]) ** 2;
      return s;
    };
    assert.ok(grad(b) < 0.5 * grad(img), `${task}: ${grad(b)} vs ${grad(img)}`);
  }
});

test('defocus disk kernel sums to 1, is symmetric, and matches the pillbox area for aliasBlur 0', () => {
  const k = diskKernel(3, 0.5);
  assert.ok(Math.abs(kernelSum(k) - 1) < 1e-12);
  for (let y = 0; y < k.size; y++)
    for (let x = 0; x < k.size; x++) assert.ok(Math.abs(k.weights[y * k.size + x] - k.weights[x * k.size + (k.size - 1 - y)]) < 1e-15);
  const hard = diskKernel(3, 0);
  const nz = hard.weights.filter((v) => v > 0).length;
  assert.equal(nz, 29); // lattice points with x²+y² ≤ 9
});

test('convolve with a 1×1 kernel [1] is the identity', () => {
  const img = testImage(9, 7);
  assert.deepEqual(convolve(img, { size: 1, weights: new Float64Array([1]) }).data, img.data);
});

test('samplers draw within their default ranges', () => {
  const rng = new Rng(5);
  for (let i = 0; i < 200; i++) {
    const n = sampleNoise(rng);
    assert.ok(n.sigma >= 0 && n.sigma <= 50);
    const r = sampleRain(rng);
    assert.ok(r.angle >= -30 && r.angle <= 30 && r.length >= 10 && r.length <= 40);
  }
});

test('throws naming the parameter and its allowed range (out of range, NaN, unknown)', () => {
  const img = testImage(8, 8);
  assert.throws(() => degrade(img, { task: 'noise', seed: 0, sigma: -1 }), { message: 'noise: sigma must be a number in [0, 255], got -1' });
  assert.throws(() => degrade(img, { task: 'noise', seed: 0, sigma: NaN }), /noise: sigma must be a number in \[0, 255\], got NaN/);
  assert.throws(() => degrade(img, { task: 'noise', seed: 0, mode: 'int' as never }), /noise: mode must be one of float, uint8/);
  assert.throws(() => degrade(img, { task: 'rain', seed: 0, density: 0.5 }), /rain: density must be a number in \[0, 0.2\], got 0.5/);
  assert.throws(() => degrade(img, { task: 'haze', seed: 0, A: 1.5 }), /haze: A must be a number in \[0, 1\], got 1.5/);
  assert.throws(() => degrade(img, { task: 'motion', seed: 0, length: 100 }), /motion: length must be a number in \[1, 64\], got 100/);
  assert.throws(() => degrade(img, { task: 'defocus', seed: 0, radius: Infinity }), /defocus: radius must be a number in \[0.5, 25\], got Infinity/);
  assert.throws(() => degrade(img, { task: 'rain', seed: 0, sigma: 3 } as never), /degrade: unknown parameter 'sigma' for task rain/);
  assert.throws(() => degrade(img, { task: 'blur', seed: 0 } as never), /degrade: task must be one of noise, rain, haze, motion, defocus, got "blur"/);
  assert.throws(() => degrade(img, { task: 'haze', seed: NaN }), /degrade: seed must be a finite number/);
  assert.throws(() => degrade(img, { task: 'haze', seed: 0, ranges: { beta: [0, 9] } }), /haze: beta range hi must be a number in \[0, 6\], got 9/);
  assert.throws(() => degrade(img, { task: 'haze', seed: 0, ranges: { beta: [2, 1] } }), /haze: range for beta must have lo <= hi/);
});
