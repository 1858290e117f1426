import test from 'node:test';
import assert from 'node:assert/strict';
import { darkChannel, highFrequencyEnergy, nearest, meanStd, meanSquaredDistance, median } from '../../lib/metrics/stats';
import { makeImage } from '../../lib/data/image';
import { degrade } from '../../lib/data/degrade';

function gradient(h: number, w: number): ReturnType<typeof makeImage> {
  const img = makeImage(h, w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = (y * w + x) * 3;
    img.data[i] = x / w;
    img.data[i + 1] = 0.5;
    img.data[i + 2] = y / h;
  }
  return img;
}

test('darkChannel: hand-computed on a 3×3 image with a 3×3 window', () => {
  const img = makeImage(3, 3);
  for (let i = 0; i < 9; i++) { img.data[i * 3] = (i + 1) / 10; img.data[i * 3 + 1] = 1; img.data[i * 3 + 2] = 1; }
  // min-channel = R = 0.1…0.9 row-major; 3×3 min with clipped windows:
  // row0: min(0.1,0.2,0.4,0.5)=0.1, 0.1, min(0.2,0.3,0.5,0.6)=0.2; row1: 0.1, 0.1, 0.2; row2: 0.4, 0.4, 0.5
  const expected = (0.1 + 0.1 + 0.2 + 0.1 + 0.1 + 0.2 + 0.4 + 0.4 + 0.5) / 9;
  assert.ok(Math.abs(darkChannel(img, 3) - expected) < 1e-6);
});

test('haze raises the dark channel; noise raises high-frequency energy; blur lowers it', () => {
  const img = gradient(48, 64);
  const hazy = degrade(img, { task: 'haze', seed: 1, beta: 2 }).image;
  assert.ok(darkChannel(hazy) > darkChannel(img) + 0.1);
  const noisy = degrade(img, { task: 'noise', seed: 1, sigma: 25 }).image;
  assert.ok(highFrequencyEnergy(noisy) > 10 * (highFrequencyEnergy(img) + 1));
  const blurred = degrade(noisy, { task: 'defocus', seed: 1, radius: 3 }).image;
  assert.ok(highFrequencyEnergy(blurred) < highFrequencyEnergy(noisy) / 4);
});

test('highFrequencyEnergy: constant image is 0, a single bright pixel is hand-computed', () => {
  assert.equal(highFrequencyEnergy(makeImage(5, 5, new Float32Array(75).fill(0.3))), 0);
  const img = makeImage(3, 3);
  img.data[(1 * 3 + 1) * 3] = 1; // centre red = 1 → Laplacian 4·255 at the only interior pixel, 0 for G/B
  assert.equal(highFrequencyEnergy(img), (4 * 255) ** 2 / 3);
});

test('nearest ranks by distance; meanStd; shape mismatch is named', () => {
  const a = gradient(8, 8);
  const b = degrade(a, { task: 'noise', seed: 2, sigma: 5 }).image;
  const c = degrade(a, { task: 'noise', seed: 2, sigma: 50 }).image;
  const r = nearest(a, [{ image: c, id: 'c' }, { image: b, id: 'b' }], 2);
  assert.deepEqual(r.map((x) => x.id), ['b', 'c']);
  assert.deepEqual(meanStd([1, 2, 3, 4]), { mean: 2.5, std: Math.sqrt(1.25) });
  assert.throws(() => meanSquaredDistance(a, gradient(8, 9)), /8x8 and 8x9 differ/);
});

test('aeHighFrequency: an identity autoencoder keeps all of the noise, a denoising one none, one that halves the noise a quarter of its energy', async () => {
  const { aeHighFrequency } = await import('../../lib/t2i/check');
  const clean = gradient(32, 32);
  const noisy = degrade(clean, { task: 'noise', seed: 3, sigma: 25 }).image;
  const half = makeImage(32, 32, clean.data.map((v, i) => (v + noisy.data[i]) / 2));
  const identity = aeHighFrequency([{ clean, rec: clean, noisy, recNoisy: noisy }]);
  assert.ok(Math.abs(identity.noiseKept - 1) < 1e-9, String(identity.noiseKept));
  assert.ok(identity.noisy > 10 * identity.clean, `${identity.noisy} vs ${identity.clean}`);
  assert.equal(aeHighFrequency([{ clean, rec: clean, noisy, recNoisy: clean }]).noiseKept, 0);
  // the Laplacian is linear: halving the noise quarters its energy (up to the clean×noise cross term)
  const h = aeHighFrequency([{ clean, rec: clean, noisy, recNoisy: half }]).noiseKept;
  assert.ok(h > 0.2 && h < 0.3, String(h));
  assert.throws(() => aeHighFrequency([]), /no reconstructions/);
});

test('median: middle value, mean of the two middle ones for an even count, input unchanged, NaN for none', () => {
  const xs = [5, 1, 4];
  assert.equal(median(xs), 4);
  assert.deepEqual(xs, [5, 1, 4]);
  assert.equal(median([3, 1, 4, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.ok(Number.isNaN(median([])));
});

test('ridgeFit: recovers a known linear map with intercept from noiseless data (λ tiny), shrinks towards 0 with a large λ, and names bad shapes', async () => {
  const { ridgeFit } = await import('../../lib/metrics/stats');
  const n = 50, p = 3, q = 2;
  const W = [[1.5, -2], [0.5, 0.25], [-1, 3]];
  const c = [0.3, -0.7];
  const x = new Float32Array(n * p);
  const y = new Float32Array(n * q);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < p; j++) x[i * p + j] = ((Math.sin(12.9898 * i + 78.233 * j) * 43758.5453) % 1) - 0.5; // independent columns
    for (let k = 0; k < q; k++) y[i * q + k] = c[k] + W.reduce((s, row, j) => s + x[i * p + j] * row[k], 0);
  }
  const f = ridgeFit(x, y, n, p, q, 1e-9);
  const probe = Float32Array.from([0.2, -0.4, 1]);
  const got = f(probe, 1);
  for (let k = 0; k < q; k++) assert.ok(Math.abs(got[k] - (c[k] + 0.2 * W[0][k] - 0.4 * W[1][k] + W[2][k])) < 1e-4, `output ${k}: ${got[k]}`);
  const big = ridgeFit(x, y, n, p, q, 1e9)(probe, 1);
  assert.ok(Math.abs(big[0]) < 1e-3 && Math.abs(big[1]) < 1e-3, 'λ → ∞: all weights → 0');
  assert.throws(() => ridgeFit(x, y, n, p + 1, q, 1), /ridgeFit: x must hold 50×4/);
});
