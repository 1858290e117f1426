import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { GuidanceModel } from '../../lib/guidance/model';
import { featureCache, guidanceCrops, i2tStage, trainImageToText, FEATURE_CACHE_FILE } from '../../lib/guidance/train_i2t';
import { parseGuidanceConfig } from '../../lib/guidance/config';
import { cleanStage, trainCleanMapper } from '../../lib/guidance/train_clean';
import { stepRng, readLog, Stage } from '../../lib/train/loop';
import { TextToImage } from '../../lib/t2i/model';
import { tmpDir } from '../helpers/fixtures';
import { tinyT2I, tinyGuidanceConfig } from './helpers';
import { t2iPreset, parseT2IConfig } from '../../lib/t2i/presets';
import { Params } from '../../lib/models/params';

test('before: backend', async () => {
  await initBackend({ quiet: true });
});

type Snap = Map<string, Float32Array>;
const snap = (entries: Array<[string, tf.Variable]>): Snap => new Map(entries.map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
const same = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((x, i) => x === b[i]);
/** names (by prefix) whose values differ between two snapshots */
function changed(a: Snap, b: Snap, prefix: string): { changed: number; total: number } {
  let c = 0;
  let t = 0;
  for (const [n, v] of a) {
    if (!n.startsWith(prefix)) continue;
    t++;
    if (!same(v, b.get(n)!)) c++;
  }
  return { changed: c, total: t };
}

test('guidance training crops: data.taskWeights sets each task\'s share of the degraded crops (0 leaves a task out)', async () => {
  const t2i = tinyT2I();
  const base = tinyGuidanceConfig();
  const cfg = parseGuidanceConfig({ ...base, data: { ...base.data, cropsPerPhoto: 2, degradedPerCrop: 4, taskWeights: { haze: 3, motion: 0, defocus: 0 } } }, 'w.json');
  const crops = await guidanceCrops(cfg, t2i);
  const count = (t: string) => crops.filter((c) => c.item.task === t).length;
  // 2 photos × 2 crops × 4 degraded = 16, in turn noise, rain, haze, haze, haze
  assert.deepEqual([count('clean'), count('noise'), count('rain'), count('haze'), count('motion'), count('defocus')], [4, 4, 3, 9, 0, 0]);
  assert.throws(() => parseGuidanceConfig({ ...base, data: { ...base.data, taskWeights: { noise: 0, rain: 0, haze: 0, motion: 0, defocus: 0 } } }, 'z.json'), /z\.json: data\.taskWeights: at least one task needs a weight > 0/);
  t2i.dispose();
});

test('guidance training crops: data.colorJitter adds colour-jittered copies, each a clean crop with its own degraded versions; 0 keeps the crops of before', async () => {
  const { colorJitter } = await import('../../lib/data/color_jitter');
  const t2i = tinyT2I();
  const base = tinyGuidanceConfig();
  const plain = await guidanceCrops(parseGuidanceConfig({ ...base, data: { ...base.data, cropsPerPhoto: 2, degradedPerCrop: 2 } }, 'p.json'), t2i);
  const jit = await guidanceCrops(parseGuidanceConfig({ ...base, data: { ...base.data, cropsPerPhoto: 2, degradedPerCrop: 2, colorJitter: 1 } }, 'j.json'), t2i);
  assert.equal(jit.length, 2 * plain.length);
  const copies = jit.filter((c) => c.item.jitter !== undefined);
  assert.equal(copies.length, plain.length);
  // every item points at its own clean crop; a jittered clean crop is its crop under the seed's colour transform
  assert.ok(jit.every((c) => jit[c.item.clean].item.task === 'clean' && jit[c.item.clean].item.jitter === c.item.jitter));
  const c0 = copies.find((c) => c.item.task === 'clean')!;
  const src = jit.find((c) => c.item.task === 'clean' && c.item.jitter === undefined && c.item.photoId === c0.item.photoId && c.item.crop === c0.item.crop)!;
  assert.deepEqual(Array.from(c0.image.data), Array.from(colorJitter(src.image, c0.item.jitter!).data));
  // the first crop of each photo is the same with and without jitter (same random crop)
  assert.deepEqual(Array.from(jit[0].image.data), Array.from(plain[0].image.data));
  t2i.dispose();
});

test('guidance training crops: data.cropScales takes crops from the photos at several short sides; one scale at photoShortSide is the cache of before', async () => {
  const t2i = tinyT2I();
  const base = tinyGuidanceConfig();
  const short = t2i.cfg.photoShortSide;
  const data = { ...base.data, cropsPerPhoto: 2, degradedPerCrop: 1 };
  const plain = await guidanceCrops(parseGuidanceConfig({ ...base, data }, 'p.json'), t2i);
  const one = await guidanceCrops(parseGuidanceConfig({ ...base, data: { ...data, cropScales: [{ shortSide: short, crops: 2 }] } }, 'o.json'), t2i);
  assert.deepEqual(one.map((c) => c.item), plain.map((c) => c.item));
  assert.deepEqual(Array.from(one[3].image.data), Array.from(plain[3].image.data));
  const two = await guidanceCrops(parseGuidanceConfig({ ...base, data: { ...data, cropScales: [{ shortSide: short, crops: 2 }, { shortSide: 2 * short, crops: 1 }] } }, 't.json'), t2i);
  assert.equal(two.length, 2 * (2 + 1) * 2, '2 photos × 3 crops × (clean + 1 degraded)');
  assert.deepEqual(two.slice(0, plain.length).map((c) => c.item), plain.map((c) => c.item), 'the first scale draws as before');
  for (const id of new Set(two.map((c) => c.item.photoId))) {
    assert.deepEqual([...new Set(two.filter((c) => c.item.photoId === id && c.item.task === 'clean').map((c) => c.item.crop))], [0, 1, 2], 'crop numbers stay unique per photo across scales');
  }
  await assert.rejects(guidanceCrops(parseGuidanceConfig({ ...base, data: { ...data, cropScales: [{ shortSide: short, crops: 1 }, { shortSide: t2i.cfg.imageSize - 1, crops: 1 }] } }, 's.json'), t2i), new RegExp(`data\\.cropScales\\[1\\]\\.shortSide ${t2i.cfg.imageSize - 1} must be ≥ the text-to-image model's imageSize ${t2i.cfg.imageSize}`));
  t2i.dispose();
});

test('feature cache: clean + degraded crops of 2 photos, τi block10 features pooled 7×7, latents; deterministic and reused', async () => {
  const t2i = tinyT2I();
  const cfg = tinyGuidanceConfig();
  const dir = tmpDir();
  const file = path.join(dir, FEATURE_CACHE_FILE);
  const a = await featureCache(cfg, t2i, file, { quiet: true });
  assert.equal(a.items.length, 2 * cfg.data.cropsPerPhoto * (1 + cfg.data.degradedPerCrop));
  assert.deepEqual([a.dim, a.numTokens, a.zShape], [96 + 3, 49, [16, 16, 4]], 'block10 channels + the cell colour');
  assert.ok(a.items.some((i) => i.task === 'clean') && a.items.some((i) => i.task !== 'clean'));
  assert.ok(a.items.every((i) => a.items[i.clean].task === 'clean' && a.items[i.clean].photoId === i.photoId));
  const mtime = fs.statSync(file).mtimeMs;
  const b = await featureCache(cfg, t2i, file, { quiet: true });
  assert.equal(fs.statSync(file).mtimeMs, mtime, 'second call reads the file');
  assert.ok(same(a.tokens, b.tokens) && same(a.z, b.z));
  t2i.dispose();
});

test('stage 1 trains M_i2t + k/v copies only; stage 2 trains M_clean only (not the frozen M_i2t, as the official script did); T2I untouched', async () => {
  const t2i = tinyT2I();
  const cfg = tinyGuidanceConfig();
  const runs = tmpDir();
  const t2iBefore = snap(t2i.params.entries());
  const r1 = await trainImageToText(cfg, t2i, runs, { quiet: true });
  assert.ok(r1.model);
  const init = new GuidanceModel(cfg, t2i);
  const s0 = snap(init.params.entries());
  const s1 = snap(r1.model.params.entries());
  const m1 = changed(s0, s1, 'mi2t.');
  const k1 = changed(s0, s1, 'kv.');
  assert.ok(m1.changed > m1.total / 2, `stage 1 changes M_i2t (${m1.changed}/${m1.total})`);
  assert.ok(k1.changed > 0, `stage 1 changes the k/v copies (${k1.changed}/${k1.total})`);
  assert.equal(changed(s0, s1, 'mclean.').changed, 0, 'stage 1 leaves M_clean at init');

  const r2 = await trainCleanMapper(cfg, t2i, runs, { quiet: true });
  assert.ok(r2.model);
  const s2 = snap(r2.model.params.entries());
  const c2 = changed(s1, s2, 'mclean.');
  assert.ok(c2.changed > c2.total / 2, `stage 2 changes M_clean (${c2.changed}/${c2.total})`);
  assert.equal(changed(s1, s2, 'mi2t.').changed, 0, 'stage 2 leaves M_i2t untouched');
  assert.equal(changed(s1, s2, 'kv.').changed, 0, 'stage 2 leaves the k/v copies untouched');
  const t2iAfter = snap(t2i.params.entries());
  assert.equal(changed(t2iBefore, t2iAfter, '').changed, 0, 'the T2I model is untouched by both stages');
  assert.deepEqual(r2.model.trainedStages, ['i2t', 'clean']);
  assert.equal(readLog(path.join(runs, 'clean')).length, cfg.cleanTrain.steps);
  // stage 2 refuses to run on another T2I model than its run was started with
  const other = tinyT2I({ seed: 99 });
  await assert.rejects(trainCleanMapper(cfg, other, runs, { quiet: true }), /trained on another text-to-image model/);
  other.dispose();
  init.dispose();
  r1.model.dispose();
  r2.model.dispose();
  t2i.dispose();
});

test('stage 2 of the mixer variant on a stage-1 run of the per-word config: loads M_i2t + k/v only, trains the mixer', async () => {
  const t2i = tinyT2I();
  const cfg = tinyGuidanceConfig();
  const runs = tmpDir();
  const r1 = await trainImageToText(cfg, t2i, runs, { quiet: true });
  assert.ok(r1.model);
  const s1 = snap(r1.model.params.entries());
  const mixCfg = tinyGuidanceConfig({ clean: { type: 'mixer', hidden: 16, layers: 1, heads: 2, residual: true } });
  const r2 = await trainCleanMapper(mixCfg, t2i, runs, { quiet: true });
  assert.ok(r2.model);
  const s2 = snap(r2.model.params.entries());
  assert.ok([...s2.keys()].some((n) => n.startsWith('mclean.block0.')), 'the model holds the mixer');
  for (const [n, v] of s1) if (n.startsWith('mi2t.') || n.startsWith('kv.')) assert.ok(same(v, s2.get(n)!), `${n} is stage 1's`);
  const init = snap(new GuidanceModel(mixCfg, t2i).params.entries());
  const c2 = changed(init, s2, 'mclean.');
  assert.ok(c2.changed > c2.total / 2, `stage 2 trains the mixer (${c2.changed}/${c2.total})`);
  // a stage-1 run of another mapper (N = 6 words) cannot feed this config: the error names the parameter
  const other = tmpDir();
  fs.cpSync(path.join(runs, 'i2t'), path.join(other, 'i2t'), { recursive: true });
  const n6 = tinyGuidanceConfig({ mapper: { ...cfg.mapper, numWords: 6 } });
  await assert.rejects(trainCleanMapper(n6, t2i, other, { quiet: true }), /checkpoint\.tdrc: parameter 'mi2t\.[^']+' has shape/);
  r1.model.dispose();
  r2.model.dispose();
  t2i.dispose();
});

test('stage 2 before stage 1 says what to run', async () => {
  const t2i = tinyT2I();
  await assert.rejects(trainCleanMapper(tinyGuidanceConfig(), t2i, tmpDir(), { quiet: true }), /no stage-1 checkpoint; run 'tdr train i2t --preset ci' first/);
  t2i.dispose();
});

test('no tensor leaks in a training step of either stage (getBatch, loss + gradients, disposeBatch)', async () => {
  const t2i = tinyT2I();
  const cfg = tinyGuidanceConfig();
  const cache = await featureCache(cfg, t2i, path.join(tmpDir(), FEATURE_CACHE_FILE), { quiet: true });
  const model = new GuidanceModel(cfg, t2i);
  const builders: Array<() => Stage<unknown>> = [() => i2tStage(model, t2i, cfg, cache) as Stage<unknown>, () => cleanStage(model, t2i, cfg, cache) as Stage<unknown>];
  for (const build of builders) {
    const stage = build(); // sets the stage's trainable split
    const vars = stage.params.trainable().map(([, v]) => v);
    const before = tf.memory().numTensors;
    const batch = await stage.getBatch(0, stepRng(0, 0, 'batch'));
    const { value, grads } = tf.variableGrads(() => stage.loss(batch, 0, stepRng(0, 0, 'loss')).total, vars);
    assert.ok(Number.isFinite(value.dataSync()[0]));
    assert.ok(Object.values(grads).some((g) => tf.tidy(() => tf.abs(g).max().dataSync()[0]) > 0), 'some gradient is non-zero');
    tf.dispose([value, ...Object.values(grads)]);
    const half = stage.sliceBatch!(batch, 0, 1);
    assert.equal(stage.batchSize!(half), 1);
    stage.disposeBatch!(half);
    stage.disposeBatch!(batch);
    assert.equal(tf.memory().numTensors, before, 'tensors after one step');
  }
  model.dispose();
  t2i.dispose();
});

test('exact resume: stage 1 for 2 steps in one call = 1 step + resume 1 step (weights and log)', async () => {
  const t2i = tinyT2I();
  const cfg = tinyGuidanceConfig();
  const a = tmpDir();
  const b = tmpDir();
  const ra = await trainImageToText(cfg, t2i, a, { quiet: true });
  const rb1 = await trainImageToText(cfg, t2i, b, { quiet: true, maxStepsThisCall: 1 });
  assert.equal(rb1.model, null);
  assert.equal(rb1.result.step, 1);
  const rb = await trainImageToText(cfg, t2i, b, { quiet: true });
  assert.equal(rb.result.resumedFrom, 1);
  const sa = snap(ra.model!.params.entries());
  const sb = snap(rb.model!.params.entries());
  assert.equal(changed(sa, sb, '').changed, 0, 'same weights');
  assert.deepEqual(readLog(path.join(a, 'i2t')).map((r) => r.l_total), readLog(path.join(b, 'i2t')).map((r) => r.l_total));
  ra.model!.dispose();
  rb.model!.dispose();
  t2i.dispose();
});

test('data-parallel factory: a worker replica of stage 1 gives the same loss as the main stage for the same batch', async () => {
  const t2i = tinyT2I();
  const cfg = tinyGuidanceConfig();
  const dir = tmpDir();
  const t2iFile = path.join(dir, 't2i.tdrc');
  t2i.save(t2iFile);
  const cacheFile = path.join(dir, FEATURE_CACHE_FILE);
  const cache = await featureCache(cfg, t2i, cacheFile, { quiet: true });
  const main = i2tStage(new GuidanceModel(cfg, t2i), t2i, cfg, cache);
  const { i2tStageForWorker } = await import('../../lib/guidance/train_i2t');
  const worker = await i2tStageForWorker({ config: cfg, t2iFile, cacheFile });
  const losses = [];
  for (const st of [main, worker]) {
    const batch = await st.getBatch(3, stepRng(0, 3, 'batch'));
    losses.push(tf.tidy(() => st.loss(batch, 3, stepRng(0, 3, 'loss')).total.dataSync()[0]));
    st.disposeBatch!(batch);
  }
  assert.equal(losses[0], losses[1]);
  main.params.dispose();
  worker.params.dispose();
  t2i.dispose();
  void TextToImage;
});

test("initFromT2I: M_i2t starts from the T2I's own image-to-words mapper (first N words when N differs); a T2I without one, or with another mapper shape, is refused naming the field", async () => {
  const { initMapperFromT2I } = await import('../../lib/guidance/train_i2t');
  const { GuidanceModel } = await import('../../lib/guidance/model');
  const { UserError } = await import('../../lib/util/errors');
  const t2i = tinyT2I();
  const cfg = tinyGuidanceConfig();
  assert.equal(cfg.initFromT2I, true);
  const g = new GuidanceModel(cfg, t2i);
  const same = (a: tf.Variable, b: tf.Variable) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]) === 0;
  assert.ok(!same(g.mapper.global.outW, t2i.words!.global.outW), 'different before');
  initMapperFromT2I(g, t2i, 'tiny t2i');
  assert.ok(same(g.mapper.global.outW, t2i.words!.global.outW) && same(g.mapper.patch.layers[0].w, t2i.words!.patch.layers[0].w) && same(g.mapper.where!, t2i.words!.where!));
  // N = 6 > the T2I's 5: the first 5 words are copied, the 6th keeps its own init
  const g6 = new GuidanceModel(tinyGuidanceConfig({ mapper: { ...cfg.mapper, numWords: 6 } }), t2i);
  const before6 = g6.mapper.global.outW.arraySync() as number[][][];
  initMapperFromT2I(g6, t2i, 'tiny t2i');
  const after6 = g6.mapper.global.outW.arraySync() as number[][][];
  assert.deepEqual(after6.slice(0, 5), t2i.words!.global.outW.arraySync());
  assert.deepEqual(after6[5], before6[5]);
  const gh = new GuidanceModel(tinyGuidanceConfig({ mapper: { ...cfg.mapper, hidden: 24 } }), t2i);
  assert.throws(() => initMapperFromT2I(gh, t2i, 'tiny t2i'), (e: Error) => e instanceof UserError && /tiny t2i: its mapper differs from the guidance config's in hidden/.test(e.message));
  // a colour path in one mapper only would silently drop (or add) part of the words
  const gc = new GuidanceModel(tinyGuidanceConfig({ mapper: { ...cfg.mapper, colorPath: true } }), t2i);
  assert.throws(() => initMapperFromT2I(gc, t2i, 'tiny t2i'), (e: Error) => e instanceof UserError && /differs from the guidance config's in colorPath/.test(e.message));
  gc.dispose();
  const plainCfg = parseT2IConfig({ ...t2iPreset('ci'), words: undefined, cropScales: undefined }, 'plain');
  const plain = new TextToImage(plainCfg, t2i.vocab, new Params(), 1);
  const gp = new GuidanceModel(cfg, plain);
  assert.throws(() => initMapperFromT2I(gp, plain, 'plain.tdrc'), /plain\.tdrc: this text-to-image model has no image-to-words mapper/);
  [g, g6, gh, gp, t2i, plain].forEach((m) => m.dispose());
});

test('layoutLoss > 0: stages 1 and 2 add the layout objective (l_layout = UNet.layoutLoss of the context against the target latents) and its gradient reaches the trained mapper; refused without a layout head', async () => {
  const t2i = tinyT2I();
  const cfg = tinyGuidanceConfig({ layoutLoss: 2 });
  const cache = await featureCache(cfg, t2i, path.join(tmpDir(), FEATURE_CACHE_FILE), { quiet: true });
  const model = new GuidanceModel(cfg, t2i);
  for (const [name, build] of [['i2t', () => i2tStage(model, t2i, cfg, cache) as Stage<unknown>], ['clean', () => cleanStage(model, t2i, cfg, cache) as Stage<unknown>]] as const) {
    const stage = build();
    const batch = await stage.getBatch(0, stepRng(0, 0, 'batch'));
    const out = stage.loss(batch, 0, stepRng(0, 0, 'loss'));
    const parts = out.parts!;
    const [total, eps, lay] = [out.total, parts.l_eps, parts.l_layout].map((t) => t.dataSync()[0]);
    assert.ok(lay > 0, `${name}: l_layout is reported`);
    assert.ok(Math.abs(total - (eps + 2 * lay)) < 1e-5 * Math.max(1, total), `${name}: total = l_eps + 2·l_layout (${total} vs ${eps} + 2·${lay})`);
    // only the layout term: its gradient must reach the stage's trainable weights (the mapper in stage 1, M_clean in stage 2)
    const vars = stage.params.trainable().map(([, v]) => v);
    const { value, grads } = tf.variableGrads(() => stage.loss(batch, 0, stepRng(0, 0, 'loss')).parts!.l_layout, vars);
    const prefix = name === 'i2t' ? 'mi2t.' : 'mclean.';
    const reached = Object.entries(grads).filter(([n, g]) => n.startsWith(prefix) && tf.tidy(() => tf.abs(g).max().dataSync()[0]) > 0);
    assert.ok(reached.length > 0, `${name}: the layout loss has a non-zero gradient in ${prefix}* (${Object.keys(grads).slice(0, 4).join(', ')} …)`);
    tf.dispose([value, ...Object.values(grads), ...Object.values(parts), out.total]);
    stage.disposeBatch!(batch);
  }
  model.dispose();
  const noLayout = new TextToImage(parseT2IConfig({ ...t2i.cfg, unet: { ...t2i.cfg.unet, layout: undefined } }, 'no layout'), t2i.vocab, new Params(), 1);
  await assert.rejects(trainImageToText(cfg, noLayout, tmpDir(), { quiet: true, t2iFile: 'plain-t2i.tdrc' }), /layoutLoss 2 needs a text-to-image model with a layout head \(unet\.layout\); plain-t2i\.tdrc has none/);
  noLayout.dispose();
  t2i.dispose();
});
