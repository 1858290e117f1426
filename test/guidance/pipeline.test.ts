import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { projectRoot } from '../../lib/util/fsx';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { GuidanceModel, t2iWeightsHash } from '../../lib/guidance/model';
import { generateGuidance, guidanceCached, guidanceCachedBatch, guidanceBatchSize, loadGuidancePair, imageWords, layoutMapImages } from '../../lib/guidance/pipeline';
import { loadPhotos, centerCrop } from '../../lib/data/patches';
import { thumbnailPsnr } from '../../lib/metrics/content';
import { decodeWords, tokenShift, degradationWordScores, fitPca, projectPca, embeddingPca, embeddingScatterFigure, interpolateGuidance, wordsToArrays } from '../../lib/guidance/analysis';
import { guideCommand } from '../../lib/cli/commands/guide';
import { guidanceDegradationEffect } from '../../lib/guidance/eval';
import { UserError } from '../../lib/util/errors';
import { encodeImage, readImage } from '../../lib/data/io';
import { degrade } from '../../lib/data/degrade';
import { makeImage, clip01, RGBImage } from '../../lib/data/image';
import { TextToImage } from '../../lib/t2i/model';
import { tmpDir, writePattern } from '../helpers/fixtures';
import { tinyT2I, tinyGuidanceConfig } from './helpers';

test('before: backend', async () => {
  await initBackend({ quiet: true });
});

function pattern(h: number, w: number, seed = 0): RGBImage {
  const d = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) d[(y * w + x) * 3 + c] = (((x * 7 + y * 13 + c * 60 + seed * 31) % 256) / 255) * 0.8 + 0.1;
  return makeImage(h, w, d);
}

/** A tiny guidance model with a non-identity M_clean (so raw and clean guidance differ). */
function setup(): { t2i: TextToImage; g: GuidanceModel } {
  const t2i = tinyT2I();
  const g = new GuidanceModel(tinyGuidanceConfig(), t2i);
  for (const [n, v] of g.params.entries()) if (n.startsWith('mclean.') && n.endsWith('out.w')) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.05, 'float32', 3)));
  return { t2i, g };
}

test('guidance generation: [1] image 48×40 → G 32×32; same seed → same bytes; raw ≠ clean; no leaks', async () => {
  const { t2i, g } = setup();
  const x = pattern(48, 40);
  const [a] = await generateGuidance(g, t2i, [x], { seed: 5 }); // the first call also loads τi (cached per process)
  assert.deepEqual([a.height, a.width], [32, 32]);
  const before = tf.memory().numTensors;
  const [b] = await generateGuidance(g, t2i, [x], { seed: 5 });
  assert.equal(tf.memory().numTensors, before, 'no leaks');
  assert.ok((await encodeImage(a)).equals(await encodeImage(b)), 'same seed → same PNG bytes');
  const [r] = await generateGuidance(g, t2i, [x], { seed: 5, raw: true });
  assert.ok(!(await encodeImage(a)).equals(await encodeImage(r)), 'raw E_txt gives another image than E\'_txt');
  const [c] = await generateGuidance(g, t2i, [x], { seed: 6 });
  assert.ok(!(await encodeImage(a)).equals(await encodeImage(c)), 'another seed → another image');
  g.dispose();
  t2i.dispose();
});

test('guidanceCached: written once (atomically) under the cache folder, then read back; key depends on seed and raw', async () => {
  const { t2i, g } = setup();
  const dir = tmpDir();
  const x = pattern(32, 32);
  const a = await guidanceCached(g, t2i, x, { seed: 1, cacheDir: dir });
  assert.equal(a.cached, false);
  assert.ok(fs.existsSync(a.file));
  const b = await guidanceCached(g, t2i, x, { seed: 1, cacheDir: dir });
  assert.equal(b.cached, true);
  assert.ok(a.png.equals(b.png));
  assert.equal(b.file, a.file);
  const c = await guidanceCached(g, t2i, x, { seed: 1, raw: true, cacheDir: dir });
  assert.notEqual(c.file, a.file);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  g.dispose();
  t2i.dispose();
});

test('guidanceCachedBatch: each image of a batch gets its own G, as generated alone (within 1/255), cached ones are read back, order kept', async () => {
  const { t2i, g } = setup();
  const dir = tmpDir();
  const xs = [pattern(32, 32, 1), pattern(40, 48, 2), pattern(32, 32, 3), pattern(36, 36, 4), pattern(32, 32, 5)];
  const alone = await Promise.all(xs.map(async (x) => (await generateGuidance(g, t2i, [x], { seed: 7 }))[0]));
  // one cached beforehand: the batch reads it and makes the other four in batches of 3 (3 + 1)
  const pre = await guidanceCached(g, t2i, xs[2], { seed: 7, cacheDir: dir });
  const seen: number[] = [];
  const rs = await guidanceCachedBatch(g, t2i, xs, { seed: 7, cacheDir: dir, batch: 3, onBatch: (d) => void seen.push(d) });
  assert.deepEqual(seen, [3, 4]);
  assert.deepEqual(rs.map((r) => r.cached), [false, false, true, false, false]);
  assert.equal(rs[2].file, pre.file);
  for (const [i, r] of rs.entries()) {
    let maxDiff = 0;
    for (let k = 0; k < r.image.data.length; k++) maxDiff = Math.max(maxDiff, Math.abs(r.image.data[k] - alone[i].data[k]));
    assert.ok(maxDiff <= 1 / 255 + 1e-6, `image ${i}: batch vs alone differ by ${maxDiff * 255} levels`);
    assert.ok(fs.existsSync(r.file));
  }
  // different images really got different G (not the batch's first one)
  assert.ok(!rs[0].png.equals(rs[1].png));
  assert.throws(() => guidanceBatchSize({ TDR_GUIDANCE_BATCH: '0' }), /TDR_GUIDANCE_BATCH must be a positive integer, got '0'/);
  assert.equal(guidanceBatchSize({}), 8);
  g.dispose();
  t2i.dispose();
});

test('checkpoint round-trip reproduces the guidance; a different T2I model is refused naming both hashes', async () => {
  const { t2i, g } = setup();
  const dir = tmpDir();
  const t2iFile = path.join(dir, 't2i.tdrc');
  t2i.save(t2iFile, { float16: true });
  const t2iBack = TextToImage.load(t2iFile);
  assert.equal(t2iWeightsHash(t2iBack), t2iWeightsHash(t2i), 'hash survives float16 storage');
  g.t2iRef = { path: t2iFile, sha256: t2iWeightsHash(t2i) };
  g.trainedStages = ['i2t', 'clean'];
  const file = path.join(dir, 'guidance.tdrc');
  g.save(file);
  const pair = loadGuidancePair(file);
  assert.deepEqual(pair.guidance.trainedStages, ['i2t', 'clean']);
  const x = pattern(32, 32);
  const [a] = await generateGuidance(g, t2iBack, [x], { seed: 2 });
  const [b] = await generateGuidance(pair.guidance, pair.t2i, [x], { seed: 2 });
  assert.deepEqual(Array.from(b.data), Array.from(a.data));
  const other = tinyT2I({ seed: 123 });
  assert.throws(() => GuidanceModel.load(file, other, { t2iLabel: 'other.tdrc' }), /trained on the text-to-image model .*t2i\.tdrc \(weights sha256 [0-9a-f]{12}…\), but the given one \(other\.tdrc\) has weights sha256 [0-9a-f]{12}…/);
  const otherFile = path.join(dir, 'other.tdrc');
  other.save(otherFile);
  assert.throws(() => loadGuidancePair(file, { t2iFile: otherFile }), /but the given one/);
  assert.throws(() => GuidanceModel.load(t2iFile, t2i), /not a guidance checkpoint \(kind 't2i'/);
  [pair.guidance, pair.t2i, other, g, t2i, t2iBack].forEach((m) => m.dispose());
});

test('tdr guide: same seed → same bytes (cached or not), --raw differs, errors are one line and leave no output', async () => {
  const { t2i, g } = setup();
  const dir = tmpDir();
  const t2iFile = path.join(dir, 't2i.tdrc');
  t2i.save(t2iFile);
  g.t2iRef = { path: t2iFile, sha256: t2iWeightsHash(t2i) };
  g.trainedStages = ['i2t', 'clean'];
  const ckpt = path.join(dir, 'guidance.tdrc');
  g.save(ckpt);
  const input = path.join(dir, 'in.png');
  await writePattern(input, 40, 48);
  const out = (n: string) => path.join(dir, n);
  const quiet = async (args: string[]) => {
    const e = process.stderr.write; // progress bars; stdout is left alone (the test reporter writes there)
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      return await guideCommand.run(args);
    } finally {
      process.stderr.write = e;
    }
  };
  const base = [input, '--checkpoint', ckpt, '--seed', '7'];
  assert.equal(await quiet([...base, '--out', out('a.png'), '--no-cache']), 0);
  assert.equal(await quiet([...base, '--out', out('b.png'), '--no-cache']), 0);
  assert.ok(fs.readFileSync(out('a.png')).equals(fs.readFileSync(out('b.png'))), 'same seed → same bytes');
  assert.equal(await quiet([...base, '--out', out('raw.png'), '--raw', '--no-cache']), 0);
  assert.ok(!fs.readFileSync(out('a.png')).equals(fs.readFileSync(out('raw.png'))), '--raw gives G(E_txt)');
  // two separate processes, the second reading the cache: the same bytes again
  const script = `require(${JSON.stringify(path.join(projectRoot(), 'dist', 'lib', 'cli', 'commands', 'guide.js'))}).guideCommand.run(process.argv.slice(1)).then((c) => process.exit(c), (e) => { console.error(e.message); process.exit(2); })`;
  const env = { ...process.env, TDR_QUIET: '1', TDR_GUIDANCE_CACHE: path.join(dir, 'cache') };
  for (const name of ['p1.png', 'p2.png']) {
    const r = spawnSync('nice', ['-n', '19', process.execPath, '-e', script, ...base, '--out', out(name)], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    if (name === 'p2.png') assert.match(r.stdout, /\(cached: /);
  }
  assert.ok(fs.readFileSync(out('p1.png')).equals(fs.readFileSync(out('a.png'))), 'another process, same bytes');
  assert.ok(fs.readFileSync(out('p2.png')).equals(fs.readFileSync(out('a.png'))), 'from the cache, same bytes');
  const img = await readImage(out('a.png'));
  assert.deepEqual([img.height, img.width], [32, 32]);

  const fails: Array<[string[], RegExp]> = [
    [[input, '--checkpoint', ckpt], /--out is required/],
    [[input, '--checkpoint', ckpt, '--out', out('x.jpg')], /use a \.png file name/],
    [[input, '--checkpoint', path.join(dir, 'nope.tdrc'), '--out', out('x.png')], /no such guidance checkpoint/],
    [[path.join(dir, 'missing.png'), '--checkpoint', ckpt, '--out', out('x.png')], /missing\.png/],
    [[input, '--checkpoint', ckpt, '--seed', '-1', '--out', out('x.png')], /--seed/],
    [[input, input, '--checkpoint', ckpt, '--out', out('x.png')], /exactly one input image \(or folder\), got 2/],
  ];
  for (const [args, re] of fails) {
    await assert.rejects(guideCommand.run(args), (e: Error) => {
      assert.ok(e instanceof UserError, `${args.join(' ')}: UserError, got ${e.name}: ${e.message}`);
      assert.match(e.message, re);
      assert.equal(e.message.split('\n').length, 1);
      return true;
    });
  }
  // a mismatched T2I is refused before anything is written
  const other = tinyT2I({ seed: 5 });
  const otherFile = path.join(dir, 'other.tdrc');
  other.save(otherFile);
  await assert.rejects(guideCommand.run([...base, '--t2i', otherFile, '--out', out('x.png')]), (e: Error) => e instanceof UserError && /trained on the text-to-image model/.test(e.message));
  assert.ok(!fs.existsSync(out('x.png')), 'no partial output');
  [other, g, t2i].forEach((m) => m.dispose());
});

test('analysis: nearest tokens, token shift, degradation-word scores, PCA and scatter figure, interpolation ends = raw / clean guidance', async () => {
  const { t2i, g } = setup();
  const x = pattern(32, 32, 1);
  const xd = clip01(degrade(x, { task: 'haze', seed: 3 }).image);
  const w = await imageWords(g, [x, xd]);
  const raw = wordsToArrays(w.raw);
  const clean = wordsToArrays(w.clean);
  const dec = decodeWords(t2i, raw[1], 3);
  assert.equal(dec.length, g.numWords);
  assert.ok(dec.every((l) => l.length === 3 && l[0].cosine >= l[1].cosine && l[0].token.length > 0));
  const shift = tokenShift(t2i, raw[1], clean[1], 4);
  assert.equal(shift.added.length, 4);
  assert.ok(shift.added[0].delta >= shift.removed[0].delta);
  const scores = degradationWordScores(t2i, raw[1]);
  assert.deepEqual(Object.keys(scores).sort(), ['blurry', 'hazy', 'noisy', 'rainy']);
  tf.dispose([w.raw, w.clean]);

  // PCA on known data: points on a line along (1,1,0) → PC1 explains ~all, coordinates ∝ t
  const rows = [-2, -1, 0, 1, 2].map((t) => [t + 1e-3 * t * t, t, 0.5]);
  const p = fitPca(rows, 2);
  assert.ok(p.explained[0] > 0.999);
  const c = projectPca(p, rows).map((r) => r[0]);
  for (let i = 1; i < c.length; i++) assert.ok(c[i] > c[i - 1]);
  assert.ok(Math.abs(c[4] - 2 * Math.SQRT2) < 0.01);

  const { points, pca } = await embeddingPca(g, [
    { image: x, task: 'clean' },
    { image: xd, task: 'haze' },
    { image: pattern(32, 32, 2), task: 'clean' },
  ]);
  assert.equal(points.length, 6);
  const fig = embeddingScatterFigure(points, { explained: pca.explained });
  assert.equal(fig.data.length, 4); // E_txt clean/haze, E'_txt clean/haze
  assert.ok(fig.data.every((d) => d.type === 'scatter'));

  const path2 = await interpolateGuidance(g, t2i, xd, [0, 0.5, 1], { seed: 9 });
  assert.deepEqual(path2.map((p) => p.alpha), [0, 0.5, 1]);
  const [gr] = await generateGuidance(g, t2i, [xd], { seed: 9, raw: true });
  const [gc] = await generateGuidance(g, t2i, [xd], { seed: 9 });
  assert.deepEqual(Array.from(path2[0].image.data), Array.from(gr.data));
  assert.deepEqual(Array.from(path2[2].image.data), Array.from(gc.data));
  g.dispose();
  t2i.dispose();
});

test('guidanceDegradationEffect: rows per (photo, task), ratios and task accuracies are finite', async () => {
  const { t2i, g } = setup();
  const r = await guidanceDegradationEffect(g, t2i, { tasks: ['noise', 'haze'], limit: 2, steps: 2, seed: 1 });
  assert.equal(r.rows.length, 4);
  assert.ok(r.rows.every((x) => (x.task === 'noise' ? x.statistic === 'hfEnergy' : x.statistic === 'darkChannel')));
  assert.ok(r.rows.filter((x) => x.task === 'noise').every((x) => x.input > x.clean), 'noise raises HF energy of the input');
  assert.ok(Number.isFinite(r.ratio.noise!) && Number.isFinite(r.ratio.haze!));
  assert.ok(r.taskAccuracy.raw >= 0 && r.taskAccuracy.raw <= 1 && r.taskAccuracy.restored >= 0);
  // the per-task content ranks are the overall ones split by task: their mean is the overall mean
  assert.deepEqual(r.thumbnail.byTask.map((t) => t.task), ['noise', 'haze']);
  for (const t of r.thumbnail.byTask) {
    const own = r.rows.filter((x) => x.task === t.task);
    assert.equal(t.restored.meanRank, own.reduce((a, x) => a + x.thumbRankRestored, 0) / own.length);
    assert.equal(t.raw.top1, own.filter((x) => x.thumbRankRaw === 1).length / own.length);
  }
  const mean = (k: 'raw' | 'restored') => r.thumbnail.byTask.reduce((a, t) => a + t[k].meanRank, 0) / r.thumbnail.byTask.length;
  assert.ok(Math.abs(mean('restored') - r.thumbnail.restored.meanRank) < 1e-12 && Math.abs(mean('raw') - r.thumbnail.raw.meanRank) < 1e-12);
  // 4×4 fidelity: finite per row, the summary is the rows' mean (per task too), G(E_txt(Y)) once per photo
  assert.ok(r.rows.every((x) => Number.isFinite(x.thumb4Raw) && Number.isFinite(x.thumb4Restored) && Number.isFinite(x.thumb4CleanGuidance)));
  const avg = (xs: number[]) => xs.reduce((a, v) => a + v, 0) / xs.length;
  assert.ok(Math.abs(r.thumb4.restored - avg(r.rows.map((x) => x.thumb4Restored))) < 1e-9);
  assert.ok(Math.abs(r.thumb4.byTask[1].raw - avg(r.rows.filter((x) => x.task === 'haze').map((x) => x.thumb4Raw))) < 1e-9);
  assert.ok(Math.abs(r.thumb4.cleanGuidance - avg(r.rows.filter((x) => x.task === 'noise').map((x) => x.thumb4CleanGuidance))) < 1e-9);
  // the degraded input's own 4×4 PSNR: noise averages out in 32×32-px blocks, haze shifts the colours
  const inputs = (t: string) => r.rows.filter((x) => x.task === t).map((x) => x.thumb4Input);
  assert.ok(Math.min(...inputs('noise')) > Math.max(...inputs('haze')) + 10, `noise X ${inputs('noise')} vs haze X ${inputs('haze')}`);
  assert.ok(Math.abs(r.thumb4.byTask[1].input - avg(inputs('haze'))) < 1e-9 && Math.abs(r.thumb4.input - avg(r.rows.map((x) => x.thumb4Input))) < 1e-9);
  assert.equal(r.thumb4.restoredBelowInput, r.rows.filter((x) => x.thumb4Restored < x.thumb4Input).length / r.rows.length);
  // no layout map in this text-to-image model: no map rows
  assert.equal(r.map4, undefined);
  assert.ok(r.rows.every((x) => x.map4Raw === undefined));
  g.dispose();
  t2i.dispose();
});

test("guidanceDegradationEffect with a layout map: the 4×4 PSNR of the words' layout maps (layoutMapImages, where G starts) per row and per task", async () => {
  const t2i = tinyT2I({ layoutLoss: 1 });
  const g = new GuidanceModel(tinyGuidanceConfig(), t2i);
  for (const [n, v] of g.params.entries()) if (n.startsWith('mclean.') && n.endsWith('out.w')) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.05, 'float32', 3)));
  const r = await guidanceDegradationEffect(g, t2i, { tasks: ['noise', 'haze'], limit: 2, steps: 2, seed: 1 });
  const avg = (xs: number[]) => xs.reduce((a, v) => a + v, 0) / xs.length;
  assert.ok(r.map4 && r.rows.every((x) => Number.isFinite(x.map4Raw) && Number.isFinite(x.map4Restored) && Number.isFinite(x.map4CleanGuidance)));
  assert.ok(Math.abs(r.map4.restored - avg(r.rows.map((x) => x.map4Restored!))) < 1e-9);
  assert.ok(Math.abs(r.map4.byTask[1].raw - avg(r.rows.filter((x) => x.task === 'haze').map((x) => x.map4Raw!))) < 1e-9);
  // the rows' maps are those of layoutMapImages on the photo's words: E_txt(Y) of the first photo
  const y = (await loadPhotos('val', t2i.cfg.photoShortSide, 1)).map((p) => centerCrop(p.image, t2i.cfg.imageSize));
  const w = await imageWords(g, y);
  const [mapY] = layoutMapImages(g, t2i, w.raw);
  tf.dispose([w.raw, w.clean]);
  assert.ok(Math.abs(r.rows[0].map4CleanGuidance! - thumbnailPsnr(mapY, y[0], 4)) < 1e-3, 'the same map (a batch of one rounds a little differently)');
  // M_clean changes the words, so E'_txt(X)'s map differs from E_txt(X)'s
  assert.ok(r.rows.some((x) => x.map4Raw !== x.map4Restored));
  // a text-to-image model without a layout map is refused by name
  const { t2i: plain, g: gp } = setup();
  assert.throws(() => layoutMapImages(gp, plain, tf.zeros([1, 2, 2]) as tf.Tensor3D), (e: Error) => e instanceof UserError && /layout map of a guidance model needs/.test(e.message));
  gp.dispose();
  plain.dispose();
  g.dispose();
  t2i.dispose();
});
