import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { UserError } from '../../lib/util/errors';
import { t2iPreset, PRESET_NAMES, parseT2IConfig, PRESETS, cropScalesOf } from '../../lib/t2i/presets';
import { trainTextToImage, cacheCrops, latentCache } from '../../lib/t2i/train';
import { taskTurn } from '../../lib/data/degrade';
import { buildVocab } from '../../lib/models/tokenizer';
import { Params } from '../../lib/models/params';
import { TextToImage } from '../../lib/t2i/model';
import { unetFlops } from '../../lib/models/unet';
import { readLog } from '../../lib/train/loop';
import { tmpDir } from '../helpers/fixtures';
import { degradationWordEffect, copyCheck, layoutFidelity } from '../../lib/t2i/check';

test('before: backend', async () => {
  await initBackend({ quiet: true });
});

test('every preset parses; a bad field is named', () => {
  for (const n of PRESET_NAMES) assert.equal(t2iPreset(n).preset, n);
  assert.throws(() => t2iPreset('huge'), /unknown preset 'huge'; presets: ci, demo, paper/);
  assert.throws(() => parseT2IConfig({ ...PRESETS.demo, imageSize: 100 }, 'my.json'), /my\.json: imageSize: imageSize 100 must be divisible/);
  assert.throws(() => parseT2IConfig({ ...PRESETS.demo, text: { ...PRESETS.demo.text, width: 64 } }, 'x.json'), /unet\.ctxDim: unet\.ctxDim 128 must equal text\.width 64/);
  assert.throws(() => parseT2IConfig({ ...PRESETS.demo, typo: 1 }, 'x.json'), /x\.json: .*typo/);
});

test('paper preset: SD-like sizes (512 px, f8 latents 64×64×4, 77 tokens, width 1024) and its UNet cost is computable', () => {
  const c = t2iPreset('paper');
  assert.equal(c.imageSize / 2 ** (c.autoencoder.channels.length - 1), 64);
  assert.equal(c.text.contextLength, 77);
  assert.deepEqual([c.sample.steps, c.sample.cfgScale], [100, 5]);
  const gflop = unetFlops(c.unet, 64, 64, 77) / 1e9;
  assert.ok(gflop > 100, `paper UNet forward ${gflop} GFLOP`);
});

test('ci preset: the whole stage 0 trains, resumes, saves, reloads and samples deterministically', async () => {
  const cfg = t2iPreset('ci');
  const runs = tmpDir();
  const first = await trainTextToImage(cfg, runs, { quiet: true, maxStepsThisCall: 2 });
  assert.equal(first.model, null); // stopped inside the AE stage
  const r = await trainTextToImage(cfg, runs, { quiet: true });
  assert.ok(r.model && r.t2i);
  assert.equal(r.t2i.step, cfg.unetTrain.steps);
  assert.equal(readLog(path.join(runs, 'ae')).length, cfg.aeTrain.steps);
  assert.ok(fs.existsSync(path.join(runs, 't2i', 'latents.tdrc')));
  const model = r.model;
  // frozen AE: its weights equal the AE run's EMA weights, untouched by stage 0b
  const before = tf.memory().numTensors;
  const a = await model.generate(['a photo of a red apple on a table', 'a photo of a red apple on a table, hazy'], { seed: 5 });
  assert.equal(tf.memory().numTensors, before, 'generate leaks no tensors');
  assert.deepEqual([a.length, a[0].height, a[0].width], [2, cfg.imageSize, cfg.imageSize]);
  const b = await model.generate(['a photo of a red apple on a table', 'a photo of a red apple on a table, hazy'], { seed: 5 });
  assert.deepEqual(Array.from(b[1].data), Array.from(a[1].data), 'same seed → same image');
  const file = path.join(runs, 'model.tdrc');
  model.save(file);
  const back = TextToImage.load(file);
  assert.equal(back.latentScale, model.latentScale);
  assert.equal(back.vocab.size, model.vocab.size);
  const c = await back.generate(['a photo of a red apple on a table', 'a photo of a red apple on a table, hazy'], { seed: 5 });
  assert.deepEqual(Array.from(c[0].data), Array.from(a[0].data), 'checkpoint round-trip reproduces the sample');
  back.dispose();
  model.dispose();
});

test('training captions: clean and degraded crops, degradation words present, deterministic', async () => {
  const cfg = t2iPreset('ci');
  const a = await cacheCrops(cfg);
  const b = await cacheCrops(cfg);
  const perPhoto = cropScalesOf(cfg).reduce((s, c) => s + c.crops, 0);
  assert.equal(a.length, 38 * perPhoto * (1 + cfg.degradedPerCrop));
  assert.deepEqual(a.map((x) => x.item), b.map((x) => x.item));
  assert.ok(a.some((x) => x.item.task === 'clean' && /^a photo of [^,]+$/.test(x.item.caption)));
  const degraded = a.filter((x) => x.item.task !== 'clean');
  assert.ok(degraded.every((x) => /, .*\b(noisy|rainy|hazy|blurry)\b/.test(x.item.caption)), 'every degraded caption carries its word');
});

test('taskWeights: a task weighted 2 takes twice the degraded crops of a task weighted 1; 0 leaves it out; the default is one each', async () => {
  const base = t2iPreset('ci');
  assert.equal(base.taskWeights, undefined);
  assert.deepEqual(taskTurn(base.taskWeights), ['noise', 'rain', 'haze', 'motion', 'defocus']);
  const cfg = parseT2IConfig({ ...PRESETS.ci, degradedPerCrop: 5, taskWeights: { haze: 2, defocus: 0 } }, 'w.json');
  assert.deepEqual(taskTurn(cfg.taskWeights), ['noise', 'rain', 'haze', 'haze', 'motion']);
  const crops = await cacheCrops(cfg);
  const count = (t: string) => crops.filter((c) => c.item.task === t).length;
  const n = 38 * cropScalesOf(cfg).reduce((s, c) => s + c.crops, 0); // clean crops
  assert.equal(count('clean'), n);
  assert.equal(count('haze'), 2 * n);
  assert.deepEqual([count('noise'), count('rain'), count('motion'), count('defocus')], [n, n, n, 0]);
  assert.ok(crops.filter((c) => c.item.task === 'haze').every((c) => /hazy$/.test(c.item.caption)));
  assert.throws(() => parseT2IConfig({ ...PRESETS.ci, taskWeights: { noise: 0, rain: 0, haze: 0, motion: 0, defocus: 0 } }, 'z.json'), /z\.json: taskWeights: at least one task needs a weight > 0/);
});

test('latent cache: a cache built with other crop settings is rebuilt, not reused', async () => {
  const dir = tmpDir();
  const cfg = t2iPreset('ci');
  const model = new TextToImage(cfg, buildVocab(['']), new Params(), 1);
  const file = path.join(dir, 'latents.tdrc');
  const a = await latentCache(model, cfg, file, { quiet: true });
  const n = 38 * cropScalesOf(cfg).reduce((s, c) => s + c.crops, 0);
  assert.equal(a.items.length, n * 2);
  const again = await latentCache(model, cfg, file, { quiet: true });
  assert.deepEqual(Array.from(again.z), Array.from(a.z), 'same settings: the cache is read back');
  const more = parseT2IConfig({ ...PRESETS.ci, degradedPerCrop: 2 }, 'm.json');
  const b = await latentCache(model, more, file, { quiet: true });
  assert.equal(b.items.length, n * 3, 'another degradedPerCrop: rebuilt');
  assert.equal((await latentCache(model, more, file, { quiet: true })).items.length, n * 3);
  model.dispose();
});

test('words.colorJitter: each clean crop gets that many colour-jittered copies (words only, never captioned), the other crops are those of the cache without it, and the cache is rebuilt when it changes', async () => {
  const { t2iStage } = await import('../../lib/t2i/train');
  const { colorJitter } = await import('../../lib/data/color_jitter');
  const base = parseT2IConfig({ ...PRESETS.ci }, 'base.json');
  const cfg = parseT2IConfig({ ...PRESETS.ci, words: { ...PRESETS.ci.words!, colorJitter: 2 } }, 'jitter.json');
  const plain = await cacheCrops(base);
  const all = await cacheCrops(cfg);
  const jit = all.filter((c) => c.item.jitter !== undefined);
  const clean = all.filter((c) => c.item.task === 'clean' && c.item.jitter === undefined);
  assert.equal(jit.length, 2 * clean.length);
  assert.equal(all.length - jit.length, plain.length);
  assert.ok(jit.every((c) => c.item.wholeScene === false && c.item.task === 'clean'));
  // a copy is its clean crop under the colour transform of its seed
  const j0 = jit[0];
  const src = clean.find((c) => c.item.photoId === j0.item.photoId && c.item.crop === j0.item.crop && c.item.scale === j0.item.scale)!;
  assert.deepEqual(Array.from(j0.image.data), Array.from(colorJitter(src.image, j0.item.jitter!).data));
  assert.notDeepEqual(Array.from(j0.image.data), Array.from(src.image.data));
  assert.ok(!(await cacheCrops(cfg, { cleanOnly: true })).some((c) => c.item.jitter !== undefined), 'the copy check compares with real crops only');
  // latent cache: rebuilt for the new setting; the jittered rows are never caption rows
  const dir = tmpDir();
  const file = path.join(dir, 'latents.tdrc');
  const m0 = new TextToImage(base, buildVocab(['']), new Params(), 1);
  await latentCache(m0, base, file, { quiet: true });
  const cache = await latentCache(m0, cfg, file, { quiet: true });
  assert.equal(cache.items.length, all.length);
  const m2 = new TextToImage(cfg, buildVocab(cache.items.map((i) => i.caption).concat(['a photo of a S', ''])), new Params(), 1);
  const stage = t2iStage(m2, parseT2IConfig({ ...PRESETS.ci, words: { ...PRESETS.ci.words!, colorJitter: 2, prob: 0 } }, 'captions.json'), cache);
  const { Rng } = await import('../../lib/util/rng');
  const b = await stage.getBatch(0, new Rng(1));
  assert.equal(b.words, undefined, 'prob 0: caption rows only');
  stage.disposeBatch!(b);
  m0.dispose();
  m2.dispose();
});

test('a t2i checkpoint of another kind or shape is refused naming the file', () => {
  const dir = tmpDir();
  const f = path.join(dir, 'bad.tdrc');
  fs.writeFileSync(f, 'nope');
  assert.throws(() => TextToImage.load(f), /bad\.tdrc: not a tdr checkpoint/);
});

test('contentRetrieval: a "model" that returns its caption\'s own photo ranks it first; the empty prompt (a grey image) does not', async () => {
  const { contentRetrieval } = await import('../../lib/t2i/check');
  const { loadPhotos, centerCrop } = await import('../../lib/data/patches');
  const { makeImage } = await import('../../lib/data/image');
  const cfg = t2iPreset('ci');
  const photos = await loadPhotos('train', cfg.photoShortSide);
  const byCaption = new Map(photos.map((p) => [`cap:${p.entry.id}`, p]));
  const seen: string[] = [];
  const fake = {
    cfg,
    async generate(prompts: readonly string[]) {
      return prompts.map((c) => {
        seen.push(c);
        if (c === '') return makeImage(cfg.imageSize, cfg.imageSize, new Float32Array(cfg.imageSize * cfg.imageSize * 3).fill(0.5));
        const p = byCaption.get(c);
        if (!p) throw new Error(`unexpected caption ${c}`);
        return centerCrop(p.image, cfg.imageSize);
      });
    },
  } as unknown as TextToImage;
  const pick = photos.filter((_, i) => i % 6 === 0);
  const r = await contentRetrieval(fake, pick.map((p) => ({ id: p.entry.id, caption: `cap:${p.entry.id}` })), [1]);
  assert.equal(r.photos, photos.length);
  assert.equal(r.rows.length, pick.length);
  assert.deepEqual(r.rows.map((x) => x.photoId), pick.map((p) => p.entry.id));
  assert.ok(r.top1 >= 0.8, `own photo first in ${r.top1}`);
  assert.equal(r.top5, 1);
  // a grey image is the same query for every photo: at most one of them can be its nearest
  assert.ok(r.uncondTop1 <= 1 / pick.length + 1e-9, `grey image top-1 ${r.uncondTop1}`);
  assert.ok(seen.includes(''), 'the empty prompt was sampled');
});

test('diffusion autoencoder through the text space (words): the cache holds τi features, only whole-scene crops keep a caption, batches mix word and caption rows and split consistently, and the loss trains the mapper', async () => {
  const { t2iStage } = await import('../../lib/t2i/train');
  const { Rng } = await import('../../lib/util/rng');
  const cfg = parseT2IConfig({ ...PRESETS.ci, words: { ...PRESETS.ci.words!, prob: 0.5, noise: 0.1 }, condDropProb: 0.2, unetTrain: { ...PRESETS.ci.unetTrain, batch: 12 } }, 'words.json');
  const dir = tmpDir();
  const model = new TextToImage(cfg, buildVocab(['']), new Params(), 1);
  const cache = await latentCache(model, cfg, path.join(dir, 'latents.tdrc'), { quiet: true });
  const f = cache.features!;
  assert.ok(f, 'features cached with words');
  assert.equal(f.global.length, cache.items.length * f.dim);
  assert.equal(f.dim, 96 + 3, 'block10 channels + 3 colour channels');
  assert.equal(f.numTokens, 49);
  assert.ok(cache.items.some((i) => i.wholeScene === false) && cache.items.some((i) => i.wholeScene === true));
  assert.ok(cache.items.every((i) => i.wholeScene === (i.scale === cfg.photoShortSide)));
  const m2 = new TextToImage(cfg, buildVocab(cache.items.map((i) => i.caption).concat(['a photo of a S', ''])), new Params(), 1);
  m2.params.freeze(['ae']);
  // at init ε_θ ≡ 0 (zero-initialised output conv): only convOut would get a gradient; perturb it as one step would
  const w0 = m2.unet.convOut.w;
  w0.assign(tf.tidy(() => tf.randomNormal(w0.shape, 0, 0.01, 'float32', 7)));
  const stage = t2iStage(m2, cfg, cache);
  let sawBoth = false;
  for (let step = 0; step < 6; step++) {
    const b = await stage.getBatch(step, new Rng(100 + step));
    const k = b.words ? b.words.global.shape[0] : 0;
    assert.equal(k + b.ids.length, 12);
    if (k > 0 && b.ids.length > 0) {
      sawBoth = true;
      // a split across the word/caption boundary keeps every row once, in order
      const parts = [stage.sliceBatch!(b, 0, k - 1 > 0 ? k - 1 : 1), stage.sliceBatch!(b, k - 1 > 0 ? k - 1 : 1, 12)];
      assert.equal(parts.reduce((s, p) => s + stage.batchSize!(p), 0), 12);
      assert.equal(parts.reduce((s, p) => s + (p.words ? p.words.global.shape[0] : 0), 0), k);
      assert.equal(parts.reduce((s, p) => s + p.ids.length, 0), b.ids.length);
      const mapperVars = m2.params.select(['words']).map(([, v]) => v);
      assert.ok(mapperVars.length > 0);
      const { value, grads } = tf.variableGrads(() => stage.loss(b, 0, new Rng(0)).total, mapperVars);
      const gmax = Math.max(...Object.values(grads).map((g) => tf.tidy(() => tf.max(tf.abs(g)).dataSync()[0])));
      assert.ok(gmax > 0, 'the mapper gets a gradient through the text encoder and the UNet');
      tf.dispose([value, ...Object.values(grads)]);
      parts.forEach((p) => stage.disposeBatch!(p));
    }
    stage.disposeBatch!(b);
  }
  assert.ok(sawBoth, 'some batch mixes word rows and caption rows');
  const imgs = (await cacheCrops(cfg)).slice(0, 3).map((c) => c.image);
  const { toBatch } = await import('../../lib/data/patches');
  const w = await m2.imageWords(toBatch(imgs));
  assert.deepEqual(w.shape, [3, 5, cfg.text.width]);
  w.dispose();
  model.dispose();
  m2.dispose();
});

test('words.layoutLoss: the word rows\' layout map regresses their pooled latents (known value at init: the map is 0), its Linear gets a gradient, and a config without a wide enough layout map is refused', async () => {
  const { t2iStage } = await import('../../lib/t2i/train');
  const { Rng } = await import('../../lib/util/rng');
  const ci = PRESETS.ci;
  assert.throws(() => parseT2IConfig({ ...ci, unet: { ...ci.unet, layout: undefined }, words: { ...ci.words!, layoutLoss: 1 } }, 'nolayout.json'), /words\.layoutLoss.*layoutLoss needs unet\.layout/s);
  assert.throws(() => parseT2IConfig({ ...ci, unet: { ...ci.unet, layout: { grid: 4, channels: 2, heads: 2 } }, words: { ...ci.words!, layoutLoss: 1 } }, 'narrow.json'), /channels ≥ latentChannels 4 \(has 2\)/);
  const cfg = parseT2IConfig({ ...ci, words: { ...ci.words!, prob: 1, layoutLoss: 0.5 }, condDropProb: 0, unetTrain: { ...ci.unetTrain, batch: 4 } }, 'layout.json');
  const dir = tmpDir();
  const model = new TextToImage(cfg, buildVocab(['a photo of a S', '']), new Params(), 1);
  const cache = await latentCache(model, cfg, path.join(dir, 'latents.tdrc'), { quiet: true });
  model.params.freeze(['ae']);
  const stage = t2iStage(model, cfg, cache);
  const b = await stage.getBatch(0, new Rng(5));
  assert.equal(b.words!.global.shape[0], 4, 'prob 1, no dropping: every row is a word row');
  const g = cfg.unet.layout!.grid;
  const [, h] = b.z.shape;
  // the layout Linear is zero-initialised: the map is 0 and l_layout = mean of the pooled latents squared
  const expected = tf.tidy(() => tf.mean(tf.square(tf.avgPool(b.z, h / g, h / g, 'valid'))).dataSync()[0]);
  const out = model.unet.layout!.out;
  const { value, grads } = tf.variableGrads(() => {
    const l = stage.loss(b, 0, new Rng(0));
    const lay = l.parts!.l_layout.dataSync()[0];
    assert.ok(Math.abs(lay - expected) <= 1e-5 * Math.max(1, expected), `l_layout ${lay} vs ${expected}`);
    const eps = l.parts!.l_eps.dataSync()[0];
    assert.ok(Math.abs(l.total.dataSync()[0] - (eps + 0.5 * lay)) < 1e-5, 'total = l_eps + layoutLoss · l_layout');
    return l.total;
  }, [out.w]);
  const gmax = tf.tidy(() => tf.max(tf.abs(Object.values(grads)[0])).dataSync()[0]);
  assert.ok(gmax > 0, 'the layout map\'s Linear gets a gradient from the auxiliary loss at init');
  tf.dispose([value, ...Object.values(grads)]);
  stage.disposeBatch!(b);
  model.dispose();
});

test('words.layoutSteps: a layout warm-up before the UNet stage trains only the words, the text encoder and the layout head, resumes, and lowers the layout loss; fromLayout starts DDIM from the words\' layout map', async () => {
  const ci = PRESETS.ci;
  assert.throws(() => parseT2IConfig({ ...ci, words: { ...ci.words!, layoutSteps: 5 } }, 'nolossw.json'), /layoutSteps needs layoutLoss > 0/);
  const cfg = parseT2IConfig({ ...ci, words: { ...ci.words!, layoutLoss: 1, layoutSteps: 12, layoutBatch: 8, mapper: { ...ci.words!.mapper, poolFirst: true } } }, 'warm.json');
  const runs = tmpDir();
  const aeOnly = await trainTextToImage(cfg, runs, { quiet: true, maxStepsThisCall: cfg.aeTrain.steps });
  assert.equal(aeOnly.model, null);
  // the warm-up stops after 5 steps of this call: no UNet stage yet
  const part = await trainTextToImage(cfg, runs, { quiet: true, maxStepsThisCall: 5 });
  assert.equal(part.model, null);
  assert.ok(part.layout?.interrupted && part.layout.step === 4 + 5, // the first call's 4 steps went on past the AE into the warm-up
    `the warm-up is where it stopped (tdr train t2i names its folder): ${JSON.stringify(part.layout && { step: part.layout.step, interrupted: part.layout.interrupted })}`);
  assert.ok(!fs.existsSync(path.join(runs, 't2i', 'checkpoint.tdrc')), 'the UNet stage waits for the warm-up');
  const logs: Array<{ stage: string; l: number }> = [];
  const r = await trainTextToImage(cfg, runs, { quiet: true, onLog: (stage, rec) => void logs.push({ stage, l: Number(rec.l_layout ?? rec.l_total) }) });
  assert.ok(r.model && r.t2i);
  const lay = readLog(path.join(runs, 't2i-layout'));
  assert.equal(lay.length, cfg.words!.layoutSteps, 'resumed: every warm-up step logged once');
  const first = lay.slice(0, 3).reduce((a, x) => a + Number(x.l_layout), 0) / 3;
  const last = lay.slice(-3).reduce((a, x) => a + Number(x.l_layout), 0) / 3;
  assert.ok(last < first, `layout loss ${first.toFixed(4)} → ${last.toFixed(4)}`);
  // only words, text and unet.layout moved in the warm-up: its checkpoint's other UNet weights equal a fresh model's (same seed)
  const warm = TextToImage.load(path.join(runs, 't2i-layout', 'checkpoint.tdrc'));
  const fresh = new TextToImage(cfg, warm.vocab, new Params(), warm.latentScale);
  for (const [n, v] of warm.params.entries()) {
    if (!n.startsWith('unet.') || n.startsWith('unet.layout')) continue;
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(v, fresh.params.select([n])[0][1]))).dataSync()[0]);
    assert.equal(d, 0, `${n} changed in the warm-up`);
  }
  const moved = tf.tidy(() => tf.max(tf.abs(tf.sub(warm.params.select(['unet.layout.out.w'])[0][1], fresh.params.select(['unet.layout.out.w'])[0][1]))).dataSync()[0]);
  assert.ok(moved > 0, 'the layout head trained');
  // SDEdit start from the layout map: deterministic, differs from pure-noise DDIM, refused without layoutLoss
  const { toBatch } = await import('../../lib/data/patches');
  const imgs = (await cacheCrops(cfg)).slice(0, 2).map((c) => c.image);
  const w = await r.model.imageWords(toBatch(imgs));
  const ctx = r.model.wordsContext(w);
  const a = await r.model.generate(ctx, { seed: 3, steps: 6, fromLayout: 0.5 });
  const b = await r.model.generate(ctx, { seed: 3, steps: 6, fromLayout: 0.5 });
  const c = await r.model.generate(ctx, { seed: 3, steps: 6 });
  assert.deepEqual(Array.from(a[0].data), Array.from(b[0].data));
  assert.notDeepEqual(Array.from(a[0].data), Array.from(c[0].data));
  const plain = new TextToImage(parseT2IConfig({ ...ci, words: { ...ci.words!, layoutLoss: 0 } }, 'plain.json'), warm.vocab, new Params(), 1);
  // one predicate (hasLayoutMap) behind every user of the map, each error a UserError naming what asked
  assert.equal(plain.hasLayoutMap, false);
  assert.equal(r.model.hasLayoutMap, true);
  await assert.rejects(plain.generate(['a photo'], { seed: 1, steps: 2, fromLayout: 0.5 }), (e: Error) => e instanceof UserError && /^fromLayout .*needs a text-to-image model trained with words, unet\.layout and words\.layoutLoss > 0/.test(e.message));
  await assert.rejects(layoutFidelity(plain), (e: Error) => e instanceof UserError && /^the layout fidelity check needs .*words\.layoutLoss > 0 \(preset 'ci' has no layout map\)/.test(e.message));
  plain.dispose();
  // the layout check: both splits, its mse is the layout objective on the same validation crops
  const fid = await layoutFidelity(r.model, { limit: 3 });
  assert.deepEqual(fid.map((x) => [x.split, x.photos]), [['val', 3], ['train', 3]]);
  for (const x of fid) for (const v of [x.map4, x.map8, x.ceiling4, x.ceiling8, x.mse, x.targetVar, x.probe.mse, x.probe.map4]) assert.ok(Number.isFinite(v) && v > 0, JSON.stringify(x));
  const { loadPhotos, centerCrop } = await import('../../lib/data/patches');
  const vx = toBatch((await loadPhotos('val', cfg.photoShortSide, 3)).map((p) => centerCrop(p.image, cfg.imageSize)));
  const vctx = r.model.wordsContext(await r.model.imageWords(vx));
  const direct = tf.tidy(() => r.model!.unet.layoutLoss(vctx, r.model!.encodeImages(vx)).dataSync()[0]);
  assert.ok(Math.abs(direct - fid[0].mse) < 1e-5 * Math.max(1, direct), `${direct} vs ${fid[0].mse}`);
  tf.dispose([vx, vctx]);
  tf.dispose([w, ctx]);
  warm.dispose();
  fresh.dispose();
  r.model.dispose();
});
