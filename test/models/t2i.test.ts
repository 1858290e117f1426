import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { t2iPreset, PRESET_NAMES, parseT2IConfig, PRESETS } from '../../lib/config/presets';
import { trainTextToImage, cacheCrops } from '../../lib/train/stages/t2i';
import { TextToImage } from '../../lib/models/t2i';
import { unetFlops } from '../../lib/models/unet';
import { readLog } from '../../lib/train/loop';
import { tmpDir } from '../helpers/fixtures';
import { degradationWordEffect, copyCheck } from '../../lib/eval/t2i_eval';

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
  assert.equal(a.length, 38 * cfg.cropsPerPhoto * (1 + cfg.degradedPerCrop));
  assert.deepEqual(a.map((x) => x.item), b.map((x) => x.item));
  assert.ok(a.some((x) => x.item.task === 'clean' && /^a photo of [^,]+$/.test(x.item.caption)));
  const degraded = a.filter((x) => x.item.task !== 'clean');
  assert.ok(degraded.every((x) => /, .*\b(noisy|rainy|hazy|blurry)\b/.test(x.item.caption)), 'every degraded caption carries its word');
});

test('a t2i checkpoint of another kind or shape is refused naming the file', () => {
  const dir = tmpDir();
  const f = path.join(dir, 'bad.tdrc');
  fs.writeFileSync(f, 'nope');
  assert.throws(() => TextToImage.load(f), /bad\.tdrc: not a tdr checkpoint/);
});
