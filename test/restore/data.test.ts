/**
 * Training data of guided restoration: the guidance crop chosen by best feature match (a synthetic
 * case with a known answer), the stand-in sources, task sets, deterministic sampling and batch shapes.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { makeImage, RGBImage } from '../../lib/data/image';
import { crop, LoadedPhoto } from '../../lib/data/patches';
import { degradeWithSpec, ALL_IN_ONE_TASKS } from '../../lib/data/degrade';
import { Rng } from '../../lib/util/rng';
import { colorJitter } from '../../lib/data/color_jitter';
import { guidanceCandidates, selectGuidanceCrop, patchFeature, taskSpecs, buildGuidanceCache, makeRestoreData, sampleRestore, restoreBatch, lowpass } from '../../lib/restore/data';
import { cleanOracleGuidance, noGuidance, guidanceKey, CLEAN_ORACLE_NOTE } from '../../lib/restore/source';

/** A textured random image: smooth blobs + per-pixel detail, values in [0,1]. */
function texture(seed: number, h: number, w: number): RGBImage {
  const rng = new Rng(seed);
  const blobs = Array.from({ length: 12 }, () => ({ y: rng.uniform(0, h), x: rng.uniform(0, w), r: rng.uniform(4, 14), c: [rng.random(), rng.random(), rng.random()] }));
  const d = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) {
        let v = 0.2;
        for (const b of blobs) v += 0.6 * b.c[c] * Math.exp(-((y - b.y) ** 2 + (x - b.x) ** 2) / (2 * b.r * b.r));
        d[(y * w + x) * 3 + c] = Math.min(1, v);
      }
  return makeImage(h, w, d);
}

function photo(id: string, img: RGBImage): LoadedPhoto {
  return { entry: { id } as LoadedPhoto['entry'], image: img };
}

test('setup backend', async () => {
  await initBackend({ quiet: true });
});

test('guidanceCandidates: G=[96,80] size 32 → stride 8 unfold grid 9×7, positions that fit only', () => {
  const g = texture(1, 96, 80);
  const c = guidanceCandidates(g, 32);
  assert.equal(c.positions.length, 9 * 7);
  assert.deepEqual(c.positions[0], [0, 0]);
  assert.deepEqual(c.positions[c.positions.length - 1], [64, 48]);
  assert.equal(c.features[0].length, 192);
  const n = Math.hypot(...c.features[5]);
  assert.ok(Math.abs(n - 1) < 1e-5, 'features are L2-normalised');
  assert.throws(() => guidanceCandidates(g, 100), /smaller than the patch 100/);
});

test('selectGuidanceCrop: a degraded copy of the G window at (48,24) picks exactly that candidate (noise σ25, haze, rain)', () => {
  const g = texture(2, 96, 96);
  const cands = guidanceCandidates(g, 32);
  const want = cands.positions.findIndex(([y, x]) => y === 48 && x === 24);
  assert.ok(want >= 0);
  for (const spec of ALL_IN_ONE_TASKS.filter((t) => ['noise25', 'haze', 'rain'].includes(t.name))) {
    const lq = degradeWithSpec(crop(g, 48, 24, 32, 32), spec, 7).image;
    const m = selectGuidanceCrop(lq, cands);
    assert.equal(m.index, want, `${spec.name}: picked ${m.y0},${m.x0} (score ${m.score.toFixed(3)})`);
    assert.deepEqual([m.y0, m.x0], [48, 24]);
  }
  // a patch whose content is nowhere in G scores lower than the true match
  const other = selectGuidanceCrop(crop(texture(99, 32, 32), 0, 0, 32, 32), cands);
  const self = selectGuidanceCrop(crop(g, 48, 24, 32, 32), cands);
  assert.ok(self.score > 0.999 && other.score < self.score);
  assert.throws(() => selectGuidanceCrop(crop(g, 0, 0, 16, 16), cands), /must be 32x32/);
});

test('patchFeature: flat window → zero vector; out-of-range window throws', () => {
  const flat = makeImage(16, 16, new Float32Array(16 * 16 * 3).fill(0.5));
  assert.ok(patchFeature(flat, 0, 0, 16).every((v) => v === 0));
  assert.throws(() => patchFeature(flat, 4, 4, 16), /exceeds the image 16x16/);
});

test('stand-ins: clean-oracle gives a DIFFERENT crop/rescale of the clean image, labelled as a stand-in; none refuses', async () => {
  const clean = texture(3, 40, 48);
  const o = cleanOracleGuidance();
  assert.equal(o.standIn, CLEAN_ORACLE_NOTE);
  const g = await o.get(clean, 'val:a:haze', { clean });
  assert.equal(g.height, 40);
  assert.equal(g.width, 48);
  let diff = 0;
  for (let i = 0; i < g.data.length; i++) diff += Math.abs(g.data[i] - clean.data[i]);
  assert.ok(diff / g.data.length > 0.01, 'not the clean image itself');
  const again = await o.get(clean, 'val:a:haze', { clean });
  assert.deepEqual(again.data, g.data, 'seeded by the key');
  await assert.rejects(o.get(clean, 'k'), /no clean image offered/);
  await assert.rejects(noGuidance.get(clean, 'k'), /takes none/);
});

test('taskSpecs: all-in-one = noise15/25/50, rain, haze; a family = its default ranges', () => {
  assert.deepEqual(taskSpecs('all-in-one').map((s) => s.name), ['noise15', 'noise25', 'noise50', 'rain', 'haze']);
  assert.deepEqual(taskSpecs('motion'), [{ name: 'motion', task: 'motion', params: {} }]);
});

test('sampling: guided batch x,y,g=[4,32,32,3]; same rng → same batch; the G crop is the matched candidate; no leak', async () => {
  const photos = [photo('p0', texture(10, 48, 64)), photo('p1', texture(11, 56, 48))];
  const specs = taskSpecs('all-in-one');
  const cache = await buildGuidanceCache(photos, specs, cleanOracleGuidance(), 32, undefined, { quiet: true });
  assert.equal(cache.size, 10);
  assert.ok(cache.has(guidanceKey('train', 'p0', 'rain')));
  const data = makeRestoreData(photos, specs, 32, cache);
  const s1 = sampleRestore(data, new Rng(5));
  const s2 = sampleRestore(data, new Rng(5));
  assert.deepEqual(s1.x.data, s2.x.data);
  assert.deepEqual(s1.g!.data, s2.g!.data);
  assert.ok(s1.match && s1.match.score > 0.5, `the matched candidate is similar (score ${s1.match?.score})`);
  const before = tf.memory().numTensors;
  const b = restoreBatch(data, 4, new Rng(6));
  assert.deepEqual(b.x.shape, [4, 32, 32, 3]);
  assert.deepEqual(b.y.shape, [4, 32, 32, 3]);
  assert.deepEqual(b.g!.shape, [4, 32, 32, 3]);
  assert.equal(b.tasks.length, 4);
  tf.dispose([b.x, b.y, b.g!]);
  assert.equal(tf.memory().numTensors, before);
  const plain = restoreBatch(makeRestoreData(photos, specs, 32), 2, new Rng(6));
  assert.equal(plain.g, undefined);
  tf.dispose([plain.x, plain.y]);
  assert.throws(() => makeRestoreData(photos, specs, 64), /smaller than the patch 64/);
});

test('lowpass: f=1 is the identity; the mean is kept; detail finer than the block is gone; a factor not dividing the size throws', () => {
  const img = texture(21, 32, 48);
  assert.equal(lowpass(img, 1), img);
  const lp = lowpass(img, 4);
  assert.equal(lp.height, 32);
  assert.equal(lp.width, 48);
  const mean = (a: RGBImage) => a.data.reduce((s, v) => s + v, 0) / a.data.length;
  assert.ok(Math.abs(mean(lp) - mean(img)) < 0.01, `mean ${mean(lp)} vs ${mean(img)}`);
  // a one-pixel checkerboard becomes its mean
  const board = makeImage(16, 16);
  for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) board.data.fill((x + y) % 2, (y * 16 + x) * 3, (y * 16 + x) * 3 + 3);
  for (const v of lowpass(board, 2).data) assert.ok(Math.abs(v - 0.5) < 1e-6);
  // a constant stays constant
  const flat = makeImage(16, 16, new Float32Array(16 * 16 * 3).fill(0.3));
  for (const v of lowpass(flat, 8).data) assert.ok(Math.abs(v - 0.3) < 1e-6);
  assert.throws(() => lowpass(img, 5), /factor 5 must be a positive integer dividing 32x48/);
});

test('guidanceLowpass, guidanceColorJitter: sampling low-passes the G crop; X, Y and the match are drawn as without it; a factor not dividing the patch is refused', async () => {
  const photos = [photo('p0', texture(10, 48, 64)), photo('p1', texture(11, 56, 48))];
  const specs = taskSpecs('all-in-one');
  const cache = await buildGuidanceCache(photos, specs, cleanOracleGuidance(), 32, undefined, { quiet: true });
  const plain = sampleRestore(makeRestoreData(photos, specs, 32, cache), new Rng(5));
  const lp = sampleRestore(makeRestoreData(photos, specs, 32, cache, { guidanceLowpass: [8] }), new Rng(5));
  assert.deepEqual(lp.x.data, plain.x.data);
  assert.deepEqual(lp.y.data, plain.y.data);
  assert.deepEqual(lp.match, plain.match);
  assert.deepEqual(lp.g!.data, lowpass(plain.g!, 8).data);
  const cj = { hue: 10, saturation: 0.2, gain: 0.1, gamma: 0.2 };
  const jit = sampleRestore(makeRestoreData(photos, specs, 32, cache, { guidanceLowpass: [8], guidanceColorJitter: cj }), new Rng(5));
  assert.deepEqual(jit.x.data, plain.x.data);
  assert.notDeepEqual(jit.g!.data, lp.g!.data, 'the colour transform changes G');
  const seed = new Rng(5);
  sampleRestore(makeRestoreData(photos, specs, 32, cache, { guidanceLowpass: [8] }), seed);
  assert.deepEqual(jit.g!.data, colorJitter(lp.g!, seed.nextUint32(), cj).data, 'G low-passed, then colour-jittered with the next draw of the sample rng');
  assert.throws(() => makeRestoreData(photos, specs, 32, cache, { guidanceLowpass: [3] }), /guidanceLowpass factor 3 must be a positive integer dividing patchSize 32/);
});
