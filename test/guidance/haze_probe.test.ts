import test from 'node:test';
import assert from 'node:assert/strict';
import { fitRidgeCv, fitKernelRidge, hazePixelFeatures, hazeWordsProbe, rSquared } from '../../lib/guidance/haze_probe';
import { makeImage } from '../../lib/data/image';
import { Rng } from '../../lib/util/rng';

/** n rows of p features, the first two of which (plus noise) give the targets linearly; groups of 8 rows. */
function data(n: number, p: number, seed: number, informative: boolean) {
  const rng = new Rng(seed);
  const x: Float32Array[] = [];
  const y: number[][] = [];
  for (let i = 0; i < n; i++) {
    const r = Float32Array.from({ length: p }, () => rng.normal());
    x.push(r);
    const a = informative ? 2 * r[0] - r[1] : rng.normal();
    const b = informative ? 0.5 * r[1] + 3 : rng.normal();
    y.push([a + 0.05 * rng.normal(), b + 0.05 * rng.normal()]);
  }
  return { x, y, groups: x.map((_, i) => Math.floor(i / 8)) };
}

test('fitRidgeCv: features that determine the targets are read off on new rows (R² ≈ 1, small λ chosen); unrelated ones are not', () => {
  const tr = data(160, 40, 1, true);
  const te = data(80, 40, 2, true);
  const fit = fitRidgeCv(tr.x, tr.y, tr.groups, [0.01, 1, 100]);
  assert.equal(fit.lambda, 0.01);
  assert.ok(fit.cvR2.length === 2 && fit.cvR2.every((r) => r > 0.95), `held-out groups: ${fit.cvR2}`);
  const pred = fit.predict(te.x);
  for (const t of [0, 1]) assert.ok(rSquared(pred.map((r) => r[t]), te.y.map((r) => r[t])) > 0.95, `target ${t}`);
  const noise = data(160, 40, 3, false);
  const noiseTe = data(80, 40, 4, false);
  const nf = fitRidgeCv(noise.x, noise.y, noise.groups, [0.01, 1, 100]);
  assert.equal(nf.lambda, 100, 'cross-validation prefers the strongest shrinkage when the features say nothing');
  assert.ok(nf.cvR2.every((r) => r < 0.2), `held-out groups: ${nf.cvR2}`);
  const np = nf.predict(noiseTe.x);
  for (const t of [0, 1]) assert.ok(rSquared(np.map((r) => r[t]), noiseTe.y.map((r) => r[t])) < 0.2, `target ${t}`);
  assert.throws(() => fitRidgeCv(tr.x, tr.y, tr.x.map(() => 0), [1]), /fewer than 2 of 4 folds/);
  assert.throws(() => fitRidgeCv(tr.x, tr.y.slice(1), tr.groups, [1]), /must agree/);
});

/** Targets that depend on the features non-linearly (a bump and a product), which no linear map can read. */
function bumps(n: number, seed: number) {
  const rng = new Rng(seed);
  const x: Float32Array[] = [];
  const y: number[][] = [];
  for (let i = 0; i < n; i++) {
    const r = Float32Array.from({ length: 3 }, () => rng.normal());
    x.push(r);
    y.push([Math.exp(-(r[0] ** 2 + r[1] ** 2)), r[0] * r[2]]);
  }
  return { x, y, groups: x.map((_, i) => Math.floor(i / 8)) };
}

test('fitRidgeCv with a Gaussian kernel reads non-linear targets that the linear read-out cannot; the width is chosen by cross-validation', () => {
  const tr = bumps(240, 5);
  const te = bumps(120, 6);
  const r2 = (fit: ReturnType<typeof fitRidgeCv>) => [0, 1].map((t) => rSquared(fit.predict(te.x).map((r) => r[t]), te.y.map((r) => r[t])));
  const lin = fitRidgeCv(tr.x, tr.y, tr.groups, [0.01, 1, 100]);
  assert.equal(lin.width, undefined);
  assert.ok(r2(lin).every((v) => v < 0.2), `linear: ${r2(lin)}`);
  const rbf = fitRidgeCv(tr.x, tr.y, tr.groups, [0.001, 0.01, 0.1], 4, { type: 'rbf', widths: [0.01, 1, 100] });
  assert.equal(rbf.width, 1, 'too narrow a Gaussian knows only its training rows, too wide a one is nearly linear');
  assert.ok(r2(rbf).every((v) => v > 0.8), `Gaussian: ${r2(rbf)}`);
  assert.ok(rbf.cvR2.every((v) => v > 0.7), `held-out groups: ${rbf.cvR2}`);
  assert.throws(() => fitRidgeCv(tr.x, tr.y, tr.groups, [1], 4, { type: 'rbf', widths: [0] }), /widths > 0/);
});

test('fitKernelRidge: many targets at once, the same predictions as fitRidgeCv at the same λ and width', () => {
  const tr = bumps(120, 7);
  const te = bumps(20, 8);
  const cv = fitRidgeCv(tr.x, tr.y, tr.groups, [0.01], 4, { type: 'rbf', widths: [1] });
  const many = fitKernelRidge(tr.x, tr.y.map((r) => Float32Array.from(r)), 0.01, 1)(te.x);
  const one = cv.predict(te.x);
  for (let i = 0; i < te.x.length; i++) for (const t of [0, 1]) assert.ok(Math.abs(many[i][t] - one[i][t]) < 1e-5, `row ${i} target ${t}: ${many[i][t]} vs ${one[i][t]}`);
  const lin = fitRidgeCv(tr.x, tr.y, tr.groups, [1]);
  const linMany = fitKernelRidge(tr.x, tr.y.map((r) => Float32Array.from(r)), 1)(te.x);
  assert.ok(Math.abs(linMany[0][1] - lin.predict(te.x)[0][1]) < 1e-5, 'no width: the linear read-out, λ as a multiple of the feature count');
  assert.throws(() => fitKernelRidge(tr.x, tr.y.slice(1).map((r) => Float32Array.from(r)), 1), /must agree/);
});

test('rSquared: 1 for a perfect prediction, 0 for the mean, NaN for constant targets', () => {
  assert.equal(rSquared([1, 2, 3], [1, 2, 3]), 1);
  assert.equal(rSquared([2, 2, 2], [1, 2, 3]), 0);
  assert.ok(Number.isNaN(rSquared([1, 1], [1, 1])));
});

test('hazePixelFeatures: the 4×4 thumbnail and the local contrast of a 16×16 grid', () => {
  const flat = makeImage(32, 32, new Float32Array(32 * 32 * 3).fill(0.4));
  const f = hazePixelFeatures(flat);
  assert.equal(f.length, 48 + 256);
  assert.ok(f.subarray(0, 48).every((v) => Math.abs(v - 0.4) < 1e-6));
  assert.ok(f.subarray(48).every((v) => v === 0), 'a flat image has no local contrast');
  const stripes = makeImage(32, 32, Float32Array.from({ length: 32 * 32 * 3 }, (_, i) => (Math.floor(i / 3) % 2 ? 1 : 0)));
  assert.ok(hazePixelFeatures(stripes).subarray(48).every((v) => Math.abs(v - 0.5) < 1e-6), 'alternating columns: deviation 0.5 in every cell');
  assert.equal(hazePixelFeatures(makeImage(40, 24, new Float32Array(40 * 24 * 3))).length, 304, 'sizes that are not multiples of 16');
  assert.throws(() => hazePixelFeatures(makeImage(12, 32, new Float32Array(12 * 32 * 3))), /12×32 is smaller than the 16×16 contrast grid/);
});

test("hazeWordsProbe: the text-to-image model's config in place of the model is refused, naming what to pass", async () => {
  await assert.rejects(hazeWordsProbe({} as never, { imageSize: 128, photoShortSide: 160 } as never), /the text-to-image model itself \(loadGuidancePair\(file\)\.t2i\), not its cfg/);
});
