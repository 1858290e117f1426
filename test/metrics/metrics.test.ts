/**
 * Known-answer tests for lib/metrics/metrics.ts.
 *
 * Expected values: test/eval/known_answers.py (run `/usr/bin/python3 test/eval/known_answers.py`),
 * Debian 12 python3-skimage 0.19.3 / python3-opencv 4.6.0 / python3-numpy 1.24.2 / python3-scipy 1.10.1:
 * - psnr, psnrY: skimage.metrics.peak_signal_noise_ratio(a, b, data_range=255)
 * - ssim, ssimY: skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
 *   use_sample_covariance=False, data_range=255, channel_axis=2 (RGB) / None (Y)); identical to 10
 *   digits with BasicSR `_ssim` re-typed with cv2.filter2D(…, cv2.getGaussianKernel(11, 1.5) outer)[5:-5, 5:-5]
 * - Y = 16 + (65.481 R + 128.553 G + 24.966 B)/255 (BasicSR to_y_channel formula, float64)
 * - ssim3d: TextualDegRemoval metrics/psnr_ssim.py `_ssim_3d` re-typed in float64 with
 *   scipy.ndimage.correlate(x, g⊗g⊗g, mode='nearest'), g = cv2.getGaussianKernel(11, 1.5)
 * Images: integer formulas in makePair (the same as make_pair in the script), stored as k/255.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { RGBImage, makeImage } from '../../lib/data/image';
import { computeMetrics, psnr, rgbToY, ssim, ssim3d } from '../../lib/metrics/metrics';

function makePair(h: number, w: number, seed: number): [RGBImage, RGBImage] {
  const a = new Float32Array(h * w * 3);
  const b = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        const av = (y * 5 + x * 3 + c * 40 + seed * 11 + ((x * x + 3 * y * y) % 23)) % 256;
        const d = ((x * 13 + y * 7 + c * 3 + seed * 5) % 41) - 20;
        const bv = Math.min(255, Math.max(0, av + d));
        a[(y * w + x) * 3 + c] = av / 255;
        b[(y * w + x) * 3 + c] = bv / 255;
      }
  return [makeImage(h, w, a), makeImage(h, w, b)];
}

// Printed by test/eval/known_answers.py (see header).
const KNOWN = [
  { h: 24, w: 20, seed: 0, crop: 0, psnr: 26.6998094913, ssim: 0.6799825392, psnrY: 29.261988468, ssimY: 0.7491042391, ssim3d: 0.943715611 },
  { h: 24, w: 20, seed: 0, crop: 3, psnr: 26.6726839516, ssim: 0.677468199, psnrY: 29.2882390912, ssimY: 0.7409904514, ssim3d: 0.940947311 },
  { h: 33, w: 41, seed: 5, crop: 0, psnr: 26.9238242993, ssim: 0.785067337, psnrY: 29.5583247035, ssimY: 0.8497375222, ssim3d: 0.9706823663 },
  { h: 33, w: 41, seed: 5, crop: 4, psnr: 26.9755389589, ssim: 0.7997942133, psnrY: 29.6409581327, ssimY: 0.8723054726, ssim3d: 0.9770789575 },
];

for (const k of KNOWN) {
  for (const quantize of [true, false]) {
    test(`known answers a,b=[${k.h},${k.w},3] seed ${k.seed} cropBorder ${k.crop} quantize ${quantize}`, () => {
      const [a, b] = makePair(k.h, k.w, k.seed);
      const m = computeMetrics(a, b, { cropBorder: k.crop, quantize });
      // without quantize the inputs carry float32 error of k/255 (≤ 1.5e-5 on the 255 scale)
      assert.ok(Math.abs(m.psnr - k.psnr) < 1e-4, `psnr ${m.psnr} vs ${k.psnr}`);
      assert.ok(Math.abs(m.psnrY - k.psnrY) < 1e-4, `psnrY ${m.psnrY} vs ${k.psnrY}`);
      assert.ok(Math.abs(m.ssim - k.ssim) < 1e-5, `ssim ${m.ssim} vs ${k.ssim}`);
      assert.ok(Math.abs(m.ssimY - k.ssimY) < 1e-5, `ssimY ${m.ssimY} vs ${k.ssimY}`);
      assert.ok(Math.abs(m.ssim3d - k.ssim3d) < 1e-5, `ssim3d ${m.ssim3d} vs ${k.ssim3d}`);
      assert.equal(psnr(a, b, { cropBorder: k.crop, quantize }), m.psnr);
      assert.equal(ssim(a, b, { cropBorder: k.crop, yChannel: true, quantize }), m.ssimY);
    });
  }
}

test('identical images: psnr Infinity (JSON null), ssim 1, ssim3d 1', () => {
  const [a] = makePair(16, 16, 1);
  assert.equal(psnr(a, a), Infinity);
  assert.equal(psnr(a, a, { yChannel: true }), Infinity);
  assert.ok(Math.abs(ssim(a, a) - 1) < 1e-12);
  assert.ok(Math.abs(ssim3d(a, a) - 1) < 1e-12);
  assert.equal(JSON.stringify({ psnr: psnr(a, a) }), '{"psnr":null}');
});

test('psnr of a constant offset of 1/255 is 20·log10(255) ≈ 48.1308 dB', () => {
  const a = makeImage(4, 5, new Float32Array(60).fill(100 / 255));
  const b = makeImage(4, 5, new Float32Array(60).fill(101 / 255));
  assert.ok(Math.abs(psnr(a, b, { quantize: true }) - 20 * Math.log10(255)) < 1e-9);
});

test('rgbToY: black → 16, white → 235 (BT.601 studio range)', () => {
  assert.ok(Math.abs(rgbToY(0, 0, 0) - 16) < 1e-12);
  assert.ok(Math.abs(rgbToY(255, 255, 255) - 235) < 1e-12);
});

test('cropBorder only looks at the inside: differences in the border do not count', () => {
  const [a] = makePair(20, 20, 2);
  const b = makeImage(20, 20, Float32Array.from(a.data));
  for (let x = 0; x < 20; x++) b.data[x * 3] = 1 - b.data[x * 3]; // top row, R
  assert.ok(Number.isFinite(psnr(a, b)));
  assert.equal(psnr(a, b, { cropBorder: 1 }), Infinity);
  assert.ok(ssim(a, b) < 1);
  assert.ok(Math.abs(ssim(a, b, { cropBorder: 1 }) - 1) < 1e-12);
});

test('ssim3d does not depend on the channel order (RGB vs BGR, symmetric window and padding)', () => {
  const [a, b] = makePair(17, 19, 3);
  const flip = (img: RGBImage) => {
    const d = new Float32Array(img.data.length);
    for (let p = 0; p < d.length; p += 3) [d[p], d[p + 1], d[p + 2]] = [img.data[p + 2], img.data[p + 1], img.data[p]];
    return makeImage(img.height, img.width, d);
  };
  assert.ok(Math.abs(ssim3d(a, b) - ssim3d(flip(a), flip(b))) < 1e-12);
});

test('throws when shapes differ, naming both shapes', () => {
  const a = makeImage(64, 64);
  const b = makeImage(64, 60);
  assert.throws(() => psnr(a, b), { message: 'psnr: a [64,64,3] and b [64,60,3] must have equal shapes' });
  assert.throws(() => ssim(a, b), /ssim: a \[64,64,3\] and b \[64,60,3\]/);
  assert.throws(() => ssim3d(a, b), /ssim3d: a \[64,64,3\] and b \[64,60,3\]/);
  assert.throws(() => computeMetrics(a, b), /must have equal shapes/);
});

test('throws when cropBorder is negative, fractional or too large', () => {
  const a = makeImage(20, 20);
  assert.throws(() => psnr(a, a, { cropBorder: -1 }), /psnr: cropBorder must be a non-negative integer, got -1/);
  assert.throws(() => psnr(a, a, { cropBorder: 1.5 }), /cropBorder must be a non-negative integer/);
  assert.throws(() => psnr(a, a, { cropBorder: 10 }), /leaves 0x0/);
  assert.throws(() => ssim(a, a, { cropBorder: 5 }), /ssim: image \[20,20,3\] with cropBorder 5 leaves 10x10, need at least 11x11/);
});

test('throws on NaN / Infinity values, naming the position', () => {
  const a = makeImage(12, 12);
  const b = makeImage(12, 12);
  b.data[(2 * 12 + 3) * 3 + 1] = NaN;
  assert.throws(() => psnr(a, b), /psnr: b has a non-finite value NaN at \(y=2, x=3, c=1\)/);
});

test('ssim3d rejects yChannel', () => {
  const a = makeImage(12, 12);
  assert.throws(() => ssim3d(a, a, { yChannel: true } as never), /ssim3d: yChannel is not supported/);
});
