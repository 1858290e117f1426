/**
 * Classical references (lib/restore/classical): O(N) filters against brute force, non-local means and
 * the guided filter against OpenCV, the dark channel prior against an independent numpy/OpenCV version
 * of the papers, and known-answer tests of dehazing on synthetic haze with known t and A.
 *
 * Reference values: test/restore/classical_known_answers.py (run `/usr/bin/python3
 * test/restore/classical_known_answers.py`; Debian 12 python3-opencv 4.6.0 with ximgproc, python3-numpy
 * 1.24.2). Images: the integer formulas of cleanImage / noise below (the same as clean_image / noise there).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { RGBImage, makeImage } from '../../lib/data/image';
import { borderIndex } from '../../lib/data/degrade/common';
import { addHaze, depthProxy } from '../../lib/data/degrade/haze';
import { ALL_IN_ONE_TASKS } from '../../lib/data/degrade';
import { psnr } from '../../lib/metrics/metrics';
import { Rng } from '../../lib/util/rng';
import {
  boxMean,
  minFilter,
  guidedFilterColor,
  guidedFilterGrey,
  nlmPlanes,
  nlmDenoise,
  rgbToLab255,
  lab255ToRgb,
  dehazeDcp,
  darkChannel,
  classicalMethodFor,
  DCP_METHOD,
  NLM_METHOD,
  NLM_RULE,
  nlmK,
  nlmStrength,
} from '../../lib/restore/classical';

/** 0..255 integers: ramps, an 8-px checker, texture; every 6th pixel of every 6th row has one channel at 0. */
function cleanImage(h: number, w: number): Float64Array {
  const d = new Float64Array(h * w * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        let v = Math.min(255, 20 + y + x + 30 * c + 50 * ((Math.floor(x / 8) + Math.floor(y / 8)) % 2) + ((x * x + 3 * y * y + 7 * c) % 17));
        if (x % 6 === 0 && y % 6 === 0 && (Math.floor(x / 6) + Math.floor(y / 6)) % 3 === c) v = 0;
        d[(y * w + x) * 3 + c] = v;
      }
  return d;
}

/** Sum of 4 hashed uniforms, centred and scaled to std σ (the script's noise()). */
function noise(h: number, w: number, sigma: number): Float64Array {
  const out = new Float64Array(h * w * 3);
  for (let j = 0; j < out.length; j++) {
    let t = 0;
    for (let k = 0; k < 4; k++) t += (Math.imul(j * 4 + k, 2654435761 | 0) >>> 0) / 2 ** 32;
    out[j] = (t - 2) * Math.sqrt(3) * sigma;
  }
  return out;
}

const PIXELS: Array<[number, number]> = [[0, 0], [0, 39], [5, 7], [12, 30], [20, 20], [31, 3], [40, 25], [47, 39]];

function psnr255(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return 10 * Math.log10((255 * 255) / (s / a.length));
}

function randomPlane(h: number, w: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: h * w }, () => rng.random());
}

// ---------------------------------------------------------------- filters against brute force

test('boxMean = brute-force window mean with reflect-101 and reflect borders (radius past the image too)', () => {
  for (const [h, w, r] of [[7, 9, 1], [7, 9, 3], [5, 4, 6], [1, 6, 2], [12, 3, 0]] as const) {
    const src = randomPlane(h, w, h * 100 + w * 10 + r);
    for (const border of ['reflect101', 'reflect'] as const) {
      const got = boxMean(src, h, w, r, border);
      const idx = (i: number, n: number) => {
        if (border === 'reflect101') return borderIndex(i, n, 'reflect');
        const p = 2 * n;
        let j = ((i % p) + p) % p;
        return j >= n ? p - 1 - j : j;
      };
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          let s = 0;
          for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) s += src[idx(y + dy, h) * w + idx(x + dx, w)];
          const want = s / (2 * r + 1) ** 2;
          assert.ok(Math.abs(got[y * w + x] - want) < 1e-12, `${border} [${h},${w}] r ${r} at (${y},${x}): ${got[y * w + x]} vs ${want}`);
        }
    }
  }
});

test('minFilter = brute-force minimum over the window cut at the border (cv2.erode)', () => {
  for (const [h, w, r] of [[9, 11, 1], [9, 11, 4], [6, 5, 7], [1, 10, 3], [20, 17, 7]] as const) {
    const src = randomPlane(h, w, h * 7 + w + r);
    const got = minFilter(src, h, w, r);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        let m = Infinity;
        for (let yy = Math.max(0, y - r); yy <= Math.min(h - 1, y + r); yy++) for (let xx = Math.max(0, x - r); xx <= Math.min(w - 1, x + r); xx++) m = Math.min(m, src[yy * w + xx]);
        assert.equal(got[y * w + x], m, `[${h},${w}] r ${r} at (${y},${x})`);
      }
  }
});

test('guided filter: a constant input stays constant; the guide itself with tiny ε comes back (edge-preserving)', () => {
  const h = 16, w = 12;
  const g = randomPlane(h, w, 3);
  const q = guidedFilterGrey(g, new Float64Array(h * w).fill(0.4), h, w, 2, 1e-3);
  assert.ok(q.every((v) => Math.abs(v - 0.4) < 1e-12));
  const self = guidedFilterGrey(g, g, h, w, 2, 1e-9);
  assert.ok(self.every((v, i) => Math.abs(v - g[i]) < 1e-5));
  const img = makeImage(h, w, Float32Array.from({ length: h * w * 3 }, (_, i) => g[Math.floor(i / 3)] * (1 + (i % 3)) / 3 + 0.1 * (i % 3)));
  const qc = guidedFilterColor(img, new Float64Array(h * w).fill(0.7), 3, 1e-2);
  assert.ok(qc.every((v) => Math.abs(v - 0.7) < 1e-9));
});

// ---------------------------------------------------------------- non-local means

/** Direct NLM from the definition (no running sums, no offset symmetry): reflect-101, weights < 0.001 dropped. */
function nlmBrute(planes: Float64Array[], h: number, w: number, hs: number, T: number, S: number): Float64Array[] {
  const t = (T - 1) / 2, s = (S - 1) / 2, C = planes.length;
  const at = (c: number, y: number, x: number) => planes[c][borderIndex(y, h, 'reflect') * w + borderIndex(x, w, 'reflect')];
  const out = planes.map(() => new Float64Array(h * w));
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let ws = 0;
      const acc = new Float64Array(C);
      for (let dy = -s; dy <= s; dy++)
        for (let dx = -s; dx <= s; dx++) {
          let d2 = 0;
          for (let oy = -t; oy <= t; oy++) for (let ox = -t; ox <= t; ox++) for (let c = 0; c < C; c++) d2 += (at(c, y + oy, x + ox) - at(c, y + dy + oy, x + dx + ox)) ** 2;
          const wt = Math.exp(-d2 / (T * T * C) / (hs * hs));
          if (wt < 0.001) continue;
          ws += wt;
          for (let c = 0; c < C; c++) acc[c] += wt * at(c, y + dy, x + dx);
        }
      for (let c = 0; c < C; c++) out[c][y * w + x] = acc[c] / ws;
    }
  return out;
}

test('nlmPlanes = NLM computed directly from its definition (1 and 3 planes, small and OpenCV-size windows)', () => {
  for (const [h, w, C, T, S, hs] of [[9, 11, 1, 3, 5, 20], [10, 8, 3, 3, 7, 15], [14, 12, 3, 7, 21, 25]] as const) {
    const planes = Array.from({ length: C }, (_, c) => randomPlane(h, w, 10 + c).map((v) => v * 255));
    const got = nlmPlanes(planes, h, w, hs, T, S);
    const want = nlmBrute(planes, h, w, hs, T, S);
    for (let c = 0; c < C; c++) for (let i = 0; i < h * w; i++) assert.ok(Math.abs(got[c][i] - want[c][i]) < 1e-9, `[${h},${w}]×${C} T ${T} S ${S}: plane ${c} value ${i}: ${got[c][i]} vs ${want[c][i]}`);
  }
});

// Printed by test/restore/classical_known_answers.py ("// NLM"): cv2.fastNlMeansDenoising ('rgb') and
// cv2.fastNlMeansDenoisingColored ('lab'), template 7, search 21, on the uint8 noisy image.
const NLM_KNOWN = [
  { space: 'rgb', sigma: 15, h: 10.0, hColor: 10.0, inputPsnr: 28.4051, psnr: 28.9014, mean: 124.9512, pixels: [[26, 57, 97], [62, 102, 121], [24, 84, 101], [73, 7, 124], [57, 106, 120], [108, 142, 176], [96, 130, 165], [157, 194, 221]] },
  { space: 'lab', sigma: 15, h: 10.0, hColor: 10.0, inputPsnr: 28.4051, psnr: 24.6215, mean: 123.8653, pixels: [[38, 59, 86], [66, 96, 121], [51, 79, 102], [41, 56, 80], [69, 98, 120], [97, 130, 161], [107, 136, 165], [157, 188, 226]] },
  { space: 'rgb', sigma: 25, h: 20.0, hColor: 15.0, inputPsnr: 23.9706, psnr: 24.0269, mean: 124.1936, pixels: [[34, 61, 96], [65, 102, 125], [48, 88, 113], [77, 93, 135], [66, 103, 125], [97, 128, 158], [111, 138, 170], [156, 191, 219]] },
  { space: 'lab', sigma: 25, h: 20.0, hColor: 15.0, inputPsnr: 23.9706, psnr: 21.1559, mean: 123.1589, pixels: [[42, 62, 92], [72, 103, 129], [59, 92, 117], [84, 109, 140], [76, 110, 130], [93, 121, 151], [116, 142, 173], [143, 172, 207]] },
] as const;

for (const k of NLM_KNOWN) {
  test(`nlmDenoise '${k.space}' σ${k.sigma} h ${k.h} matches OpenCV ${k.space === 'rgb' ? 'fastNlMeansDenoising' : 'fastNlMeansDenoisingColored'} on [48,40,3]`, () => {
    const H = 48, W = 40;
    const clean = cleanImage(H, W);
    const n = noise(H, W, k.sigma);
    const noisy = new Float32Array(H * W * 3);
    const n8 = new Float64Array(H * W * 3);
    for (let i = 0; i < noisy.length; i++) {
      n8[i] = Math.min(255, Math.max(0, Math.round(clean[i] + n[i])));
      noisy[i] = n8[i] / 255;
    }
    assert.ok(Math.abs(psnr255(n8, clean) - k.inputPsnr) < 1e-3, 'the same noisy input as the script');
    const out = nlmDenoise(makeImage(H, W, noisy), { h: k.h, hColor: k.hColor, space: k.space });
    const o8 = Array.from(out.data, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
    const p = psnr255(o8, clean);
    const mean = o8.reduce((a, b) => a + b, 0) / o8.length;
    // 'rgb': OpenCV differs only by its fixed-point weights; 'lab': also by its 8-bit Lab planes
    const tol = k.space === 'rgb' ? { psnr: 0.01, mean: 0.01, px: 1 } : { psnr: 0.05, mean: 0.5, px: 3 };
    assert.ok(Math.abs(p - k.psnr) < tol.psnr, `psnr ${p} vs OpenCV ${k.psnr}`);
    assert.ok(Math.abs(mean - k.mean) < tol.mean, `mean ${mean} vs OpenCV ${k.mean}`);
    for (const [j, [y, x]] of PIXELS.entries()) {
      for (let c = 0; c < 3; c++) {
        const v = o8[(y * W + x) * 3 + c];
        assert.ok(Math.abs(v - k.pixels[j][c]) <= tol.px, `pixel (${y},${x}) channel ${c}: ${v} vs OpenCV ${k.pixels[j][c]}`);
      }
    }
  });
}

test('Lab: matches cv2.cvtColor(COLOR_LRGB2Lab) and round-trips', () => {
  // Printed by the script ("// Lab"): L 0..100, a, b unshifted
  const want = [[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [73.4058, -8.9271, -28.0878], [60.2994, 63.999, -0.6423], [4.7748, -3.5555, 4.3803]];
  const cols = [[0, 0, 0], [1, 1, 1], [0.2, 0.5, 0.8], [0.9, 0.1, 0.3], [0.004, 0.006, 0.002]];
  const img = makeImage(1, cols.length, Float32Array.from(cols.flat()));
  const [L, A, B] = rgbToLab255(img);
  for (let i = 0; i < cols.length; i++) {
    assert.ok(Math.abs((L[i] * 100) / 255 - want[i][0]) < 2e-3, `L of ${cols[i]}: ${(L[i] * 100) / 255} vs ${want[i][0]}`);
    assert.ok(Math.abs(A[i] - 128 - want[i][1]) < 2e-3, `a of ${cols[i]}: ${A[i] - 128} vs ${want[i][1]}`);
    assert.ok(Math.abs(B[i] - 128 - want[i][2]) < 2e-3, `b of ${cols[i]}: ${B[i] - 128} vs ${want[i][2]}`);
  }
  const rng = new Rng(5);
  const rnd = makeImage(8, 8, Float32Array.from({ length: 192 }, () => rng.uniform(-0.1, 1.1)));
  const back = lab255ToRgb(...rgbToLab255(rnd), 8, 8);
  for (let i = 0; i < 192; i++) assert.ok(Math.abs(back.data[i] - rnd.data[i]) < 1e-5, `round trip value ${i}: ${back.data[i]} vs ${rnd.data[i]}`);
});

test('nlmDenoise rejects bad options with the field named', () => {
  const img = makeImage(4, 4);
  assert.throws(() => nlmDenoise(img, { h: 10, template: 4 }), /template must be an odd positive integer, got 4/);
  assert.throws(() => nlmDenoise(img, { h: -1 }), /h must be a finite number ≥ 0, got -1/);
  assert.throws(() => nlmDenoise(img, { h: 10, space: 'hsv' as never }), /space must be 'lab' or 'rgb'/);
});

// ---------------------------------------------------------------- dark channel prior

/** I = J·t + A(1 − t), t = exp(−β·d), d = 0.1 + 0.9·(1 − y/(H−1)) (the script's hazy image), J = cleanImage/255. */
function rampHaze(H: number, W: number, beta: number, A: number): { clean: RGBImage; hazy: RGBImage; t: Float64Array } {
  const J = cleanImage(H, W);
  const I = new Float32Array(H * W * 3);
  const t = new Float64Array(H * W);
  for (let y = 0; y < H; y++) {
    const ty = Math.exp(-beta * (0.1 + 0.9 * (1 - y / (H - 1))));
    for (let x = 0; x < W; x++) {
      t[y * W + x] = ty;
      for (let c = 0; c < 3; c++) I[(y * W + x) * 3 + c] = (J[(y * W + x) * 3 + c] / 255) * ty + A * (1 - ty);
    }
  }
  return { clean: makeImage(H, W, Float32Array.from(J, (v) => v / 255)), hazy: makeImage(H, W, I), t };
}

// Printed by the script ("// DCP"): numpy + cv2.erode + the colour guided filter of the paper in numpy (float64).
const DCP_KNOWN = {
  A: [0.76798, 0.771885, 0.779109],
  meanT: 0.314707,
  meanRawT: 0.314707,
  inputPsnr: 12.8479,
  psnr: 13.6904,
  tAt: [0.130827, 0.131051, 0.13551, 0.16427, 0.200809, 0.266483, 0.411252, 0.43097],
  jAt: [[0.708285, 0.767408, 0.774632], [0.808205, 0.837437, 0.819334], [0.706157, 0.747295, 0.736912], [0.692564, 0.537529, 0.749249], [0.602098, 0.671328, 0.727348], [0.617041, 0.708645, 0.791113], [0.537408, 0.629356, 0.716552], [0.696265, 0.816748, 0.875123]],
  // cv2.ximgproc.guidedFilter(I, p, 4, 1e-2): colour guide I, and its green channel as a grey guide
  gfAt: [0.134395, 0.190779, 0.230768, 0.338591, 0.462827, 0.629177, 0.784043, 0.87819],
  gfGreyAt: [0.134403, 0.190494, 0.230645, 0.338183, 0.462684, 0.631998, 0.778753, 0.88092],
};

test('guided filter matches cv2.ximgproc.guidedFilter (colour and grey guide, r 4, ε 1e-2, BORDER_REFLECT)', () => {
  const H = 64, W = 80;
  const { hazy } = rampHaze(H, W, 3, 0.8);
  const p = new Float64Array(H * W);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) p[y * W + x] = Math.fround(y / H + 0.3 * ((Math.floor(x / 5) + Math.floor(y / 5)) % 2));
  const q = guidedFilterColor(hazy, p, 4, 1e-2, 'reflect');
  const green = Float64Array.from({ length: H * W }, (_, i) => hazy.data[i * 3 + 1]);
  const qg = guidedFilterGrey(green, p, H, W, 4, 1e-2, 'reflect');
  for (const [j, [y, x]] of PIXELS.entries()) {
    assert.ok(Math.abs(q[y * W + x] - DCP_KNOWN.gfAt[j]) < 2e-5, `colour guide at (${y},${x}): ${q[y * W + x]} vs ${DCP_KNOWN.gfAt[j]}`);
    assert.ok(Math.abs(qg[y * W + x] - DCP_KNOWN.gfGreyAt[j]) < 2e-5, `grey guide at (${y},${x}): ${qg[y * W + x]} vs ${DCP_KNOWN.gfGreyAt[j]}`);
  }
});

test('dehazeDcp matches the numpy/OpenCV version of the papers on [64,80,3] (A, t, J)', () => {
  const H = 64, W = 80;
  const { clean, hazy } = rampHaze(H, W, 3, 0.8);
  const r = dehazeDcp(hazy);
  const mean = (a: Float64Array) => a.reduce((s, v) => s + v, 0) / a.length;
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(r.airlight[c] - DCP_KNOWN.A[c]) < 1e-6, `A[${c}] ${r.airlight[c]} vs ${DCP_KNOWN.A[c]}`);
  assert.ok(Math.abs(mean(r.transmission) - DCP_KNOWN.meanT) < 1e-5);
  assert.ok(Math.abs(mean(r.rawTransmission) - DCP_KNOWN.meanRawT) < 1e-5);
  for (const [j, [y, x]] of PIXELS.entries()) {
    assert.ok(Math.abs(r.transmission[y * W + x] - DCP_KNOWN.tAt[j]) < 1e-5, `t at (${y},${x}): ${r.transmission[y * W + x]} vs ${DCP_KNOWN.tAt[j]}`);
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(r.image.data[(y * W + x) * 3 + c] - DCP_KNOWN.jAt[j][c]) < 1e-4, `J at (${y},${x},${c})`);
  }
  assert.ok(Math.abs(psnr(clean, hazy, { quantize: true }) - DCP_KNOWN.inputPsnr) < 1e-3);
  assert.ok(Math.abs(psnr(clean, r.image, { quantize: true }) - DCP_KNOWN.psnr) < 1e-3);
});

test('DCP known answer: A recovered from dense haze (t ≥ 0.05 at the top) within 0.05, and the dark channel of a haze-free image with dark pixels is 0', () => {
  const H = 64, W = 80;
  const { clean, hazy } = rampHaze(H, W, 3, 0.8);
  assert.ok(darkChannel(clean).every((v) => v === 0), 'the clean test image obeys the prior exactly');
  const r = dehazeDcp(hazy);
  for (const a of r.airlight) assert.ok(Math.abs(a - 0.8) < 0.05, `A ${r.airlight} vs 0.8`);
});

test('DCP known answer: with the true A (0.9), the transmission of moderate haze (β 1.2) is recovered (mean error < 0.08) and J gains > 10 dB', () => {
  const H = 96, W = 96;
  const { clean, hazy, t } = rampHaze(H, W, 1.2, 0.9);
  const r = dehazeDcp(hazy, { airlight: [0.9, 0.9, 0.9] });
  // ω = 0.95 keeps 5 % of the haze on purpose (t̃ = 0.05 + 0.95·t for an image that obeys the prior)
  let err = 0;
  for (let i = 0; i < t.length; i++) err += Math.abs(r.transmission[i] - t[i]);
  assert.ok(err / t.length < 0.08, `mean |t − t_true| ${err / t.length}`);
  const gain = psnr(clean, r.image, { quantize: true }) - psnr(clean, hazy, { quantize: true });
  assert.ok(gain > 10, `PSNR gain ${gain.toFixed(2)} dB`);
});

test("DCP on the project's own haze (lib/data/degrade/haze.ts: depth proxy, β 1.8, A 0.85) of an image that obeys the prior: A within 0.1, t within 0.08, +3 dB", () => {
  const H = 128, W = 128;
  const clean = makeImage(H, W, Float32Array.from(cleanImage(H, W), (v) => v / 255));
  const hazy = addHaze(clean, { beta: 1.8, A: 0.85 });
  const r = dehazeDcp(hazy);
  // A is under-estimated: no pixel is fully hazy (t ≥ e^−1.8 ≈ 0.17), and DCP takes A from the haziest one
  for (const a of r.airlight) assert.ok(Math.abs(a - 0.85) < 0.1, `A ${r.airlight} vs 0.85`);
  const d = depthProxy(H, W);
  let err = 0;
  for (let i = 0; i < d.length; i++) err += Math.abs(r.transmission[i] - Math.exp(-1.8 * d[i]));
  assert.ok(err / d.length < 0.08, `mean |t − t_true| ${err / d.length}`);
  const gain = psnr(clean, r.image, { quantize: true }) - psnr(clean, hazy, { quantize: true });
  assert.ok(gain > 3, `PSNR gain ${gain.toFixed(2)} dB`);
});

test('dehazeDcp rejects bad options with the field named', () => {
  const img = makeImage(8, 8, new Float32Array(192).fill(0.5));
  assert.throws(() => dehazeDcp(img, { patch: 4 }), /patch must be an odd positive integer, got 4/);
  assert.throws(() => dehazeDcp(img, { omega: 1.5 }), /omega must be in \(0, 1\]/);
  assert.throws(() => dehazeDcp(img, { gfEps: 0 }), /gfEps must be positive/);
  assert.throws(() => dehazeDcp(img, { airlight: [0.5, 0, 0.5] }), /airlight must be 3 values in \(0, 1\]/);
});

// ---------------------------------------------------------------- the method per task

test('classicalMethodFor: haze → DCP, noise σ → NLM with h = k(σ)·σ, rain → none; NLM needs σ', () => {
  const spec = (n: string) => ALL_IN_ONE_TASKS.find((t) => t.name === n)!;
  assert.equal(classicalMethodFor(spec('haze')), DCP_METHOD);
  assert.equal(classicalMethodFor(spec('noise25')), NLM_METHOD);
  assert.equal(classicalMethodFor(spec('rain')), null);
  assert.equal(classicalMethodFor({ name: 'noise', task: 'noise', params: {} }), null);
  assert.equal(classicalMethodFor({ name: 'motion', task: 'motion', params: {} }), null);
  const H = 24, W = 20;
  const rng = new Rng(2);
  const x = makeImage(H, W, Float32Array.from({ length: H * W * 3 }, () => rng.random()));
  const viaMethod = NLM_METHOD.restore(x, spec('noise25'));
  const direct = nlmDenoise(x, { h: 0.9 * 25, space: NLM_RULE.space });
  assert.deepEqual(viaMethod.data, direct.data);
  // k(σ): the training-photo optima at σ 15, 25, 50, linear between, constant outside
  assert.deepEqual([5, 15, 20, 25, 37.5, 50, 80].map((s) => +nlmK(s).toFixed(10)), [1, 1, 0.95, 0.9, 0.85, 0.8, 0.8]);
  assert.equal(nlmStrength(50), 40);
  assert.throws(() => NLM_METHOD.restore(x, { name: 'noise', task: 'noise', params: {} }), /needs the noise σ of task 'noise'/);
});
