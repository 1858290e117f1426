import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { guidancePreset, GUIDANCE_PRESET_NAMES, parseGuidanceConfig, GUIDANCE_PRESETS, checkGuidanceAgainstT2I } from '../../lib/guidance/config';
import { t2iPreset } from '../../lib/t2i/presets';
import { GuidanceModel, splicedEmbeddings, wordsToContext, templateIds, t2iWeightsHash } from '../../lib/guidance/model';
import { CleanMapper } from '../../lib/guidance/m_clean';
import { WordMlp } from '../../lib/guidance/m_i2t';
import { Params } from '../../lib/models/params';
import { SPECIAL } from '../../lib/models/tokenizer';
import { Rng } from '../../lib/util/rng';
import { tinyT2I, tinyGuidanceConfig } from './helpers';

test('before: backend', async () => {
  await initBackend({ quiet: true });
});

test('every guidance preset parses; bad fields are named', () => {
  for (const n of GUIDANCE_PRESET_NAMES) assert.equal(guidancePreset(n).preset, n);
  assert.equal(guidancePreset('paper').mapper.numWords, 20);
  assert.throws(() => guidancePreset('huge'), /unknown guidance preset 'huge'; presets: ci, demo, paper/);
  assert.throws(() => parseGuidanceConfig({ ...GUIDANCE_PRESETS.demo, mapper: { ...GUIDANCE_PRESETS.demo.mapper, numWords: 41 } }, 'g.json'), /g\.json: mapper\.numWords/);
  assert.throws(() => parseGuidanceConfig({ ...GUIDANCE_PRESETS.demo, clean: { type: 'mixer', hidden: 30, layers: 1, heads: 4 } }, 'g.json'), /clean\.heads: clean\.hidden 30 must be divisible by clean\.heads 4/);
  assert.throws(() => parseGuidanceConfig({ ...GUIDANCE_PRESETS.demo, typo: 1 }, 'g.json'), /g\.json: .*typo/);
});

test('N words must fit the T2I context: demo N=20 and Table 9\'s N=40 fit the demo T2I (48 tokens); N=30 does not fit 32 and says so', () => {
  const demoT2I = t2iPreset('demo');
  assert.equal(guidancePreset('demo').mapper.numWords, 20);
  checkGuidanceAgainstT2I(guidancePreset('demo'), demoT2I.text);
  const withN = (n: number) => guidancePreset('demo', { mapper: { ...guidancePreset('demo').mapper, numWords: n } });
  checkGuidanceAgainstT2I(withN(40), demoT2I.text);
  assert.throws(() => checkGuidanceAgainstT2I(withN(30), { ...demoT2I.text, contextLength: 32 }), /mapper\.numWords 30 does not fit .* need 36 tokens, contextLength is 32 \(at most 26 words\)/);
  checkGuidanceAgainstT2I(withN(40), t2iPreset('paper').text);
});

for (const n of [5, 20, 40]) {
  test(`splice: N=${n} words start at the placeholder's position 5 ("<BOS> a photo of a"), EOS right after, context [2,48,32]`, () => {
    const t2i = tinyT2I({ contextLength: 48 });
    const d = t2i.cfg.text.width;
    const ids = templateIds(t2i, 1)[0];
    assert.equal(ids.indexOf(SPECIAL.PLACEHOLDER), 5);
    const rng = new Rng(n);
    const words = tf.tensor3d(Float32Array.from({ length: 2 * n * d }, () => rng.normal()), [2, n, d]);
    const before = tf.memory().numTensors;
    const emb = splicedEmbeddings(t2i, words);
    assert.deepEqual(emb.shape, [2, 48, d]);
    const e = emb.arraySync();
    const w = words.arraySync();
    const tok = tf.tidy(() => t2i.text.embedTokens([ids]).arraySync()[0]);
    for (let b = 0; b < 2; b++) {
      for (let p = 0; p < 5; p++) assert.deepEqual(e[b][p], tok[p], `template token ${p} unchanged`);
      for (let i = 0; i < n; i++) assert.deepEqual(e[b][5 + i], w[b][i], `word ${i} at position ${5 + i}`);
      assert.deepEqual(e[b][5 + n], tok[6], 'EOS right after the words');
    }
    // the causal text encoder: positions before the words do not see them, positions from 5 on do
    const ctx = wordsToContext(t2i, words);
    const words2 = tf.tidy(() => tf.add(words, 1) as tf.Tensor3D);
    const ctx2 = wordsToContext(t2i, words2);
    const diff = tf.tidy(() => tf.abs(tf.sub(ctx, ctx2)).max(2).max(0).arraySync() as number[]);
    assert.ok(diff.slice(0, 5).every((v) => v === 0), 'template prefix independent of the words');
    assert.ok(diff.slice(5, 5 + n + 1).every((v) => v > 0), 'word positions and EOS depend on the words');
    tf.dispose([emb, ctx, ctx2, words2]);
    assert.equal(tf.memory().numTensors, before, 'no leaks');
    words.dispose();
    t2i.dispose();
  });
}

test('M_i2t: global [2,99] + tokens [2,49,99] (block10 96 + 3 colour channels) → words [2,5,32]; k/v copies start equal to the originals but are their own variables', () => {
  const t2i = tinyT2I();
  const cfg = tinyGuidanceConfig();
  const g = new GuidanceModel(cfg, t2i);
  const rng = new Rng(1);
  const global = tf.tensor2d(Float32Array.from({ length: 2 * 99 }, () => rng.uniform()), [2, 99]);
  const tokens = tf.tensor3d(Float32Array.from({ length: 2 * 49 * 99 }, () => rng.uniform()), [2, 49, 99]);
  const before = tf.memory().numTensors;
  const w = g.words({ global, tokens }, { raw: true });
  assert.deepEqual(w.shape, [2, 5, 32]);
  const w2 = g.words({ global, tokens });
  assert.deepEqual(w2.shape, [2, 5, 32]);
  // residual M_clean starts as the identity
  assert.ok(tf.tidy(() => tf.abs(tf.sub(w, w2)).max().dataSync()[0]) === 0);
  // initial word scale ≈ token-embedding RMS (within a factor 3)
  const rmsW = tf.tidy(() => Math.sqrt(tf.mean(tf.square(w)).dataSync()[0]));
  const rmsE = tf.tidy(() => Math.sqrt(tf.mean(tf.square(t2i.text.tokenEmb)).dataSync()[0]));
  assert.ok(rmsW > rmsE / 3 && rmsW < rmsE * 3, `word RMS ${rmsW} vs token RMS ${rmsE}`);
  tf.dispose([w, w2]);
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => g.mapper.call({ global: tokens.reshape([98, 99]) as tf.Tensor2D, tokens }), /tokens must be \[98,T,99\]/);
  const kv = t2i.unet.crossAttentionKV();
  assert.equal(g.kv.map.size, kv.length);
  for (const { name, k, v } of kv) {
    const c = g.kv.map.get(name)!;
    assert.notEqual(c.k.w, k.w);
    assert.deepEqual(Array.from(c.k.w.dataSync()), Array.from(k.w.dataSync()));
    assert.deepEqual(Array.from(c.v.w.dataSync()), Array.from(v.w.dataSync()));
  }
  tf.dispose([global, tokens]);
  g.dispose();
  t2i.dispose();
});

test('WordMlp = N independent MLPs: word i of the output depends on word i of the input only', () => {
  const p = new Params();
  const mlp = new WordMlp(p, 'm', 3, 4, 8, 4, 2, new Rng(2), 0.1);
  const rng = new Rng(3);
  const x = tf.tensor3d(Float32Array.from({ length: 3 * 2 * 4 }, () => rng.normal()), [3, 2, 4]); // [N,M,din]
  const y = mlp.call(x).arraySync();
  const x2 = tf.tidy(() => tf.concat([x.slice([0, 0, 0], [1, 2, 4]), tf.add(x.slice([1, 0, 0], [1, 2, 4]), 1), x.slice([2, 0, 0], [1, 2, 4])], 0) as tf.Tensor3D);
  const y2 = mlp.call(x2).arraySync();
  assert.deepEqual(y2[0], y[0]);
  assert.deepEqual(y2[2], y[2]);
  assert.notDeepEqual(y2[1], y[1]);
  // the shared-input path ([M,din] for every word) equals tiling the input
  const s = x.slice([0, 0, 0], [1, 2, 4]).reshape([2, 4]) as tf.Tensor2D;
  const a = mlp.call(s).arraySync();
  const b = mlp.call(tf.tile(s.expandDims(0), [3, 1, 1]) as tf.Tensor3D).arraySync();
  a.forEach((r, i) => r.forEach((q, j) => q.forEach((v, k) => assert.ok(Math.abs(v - b[i][j][k]) < 1e-5))));
  tf.dispose([x, x2, s]);
  p.dispose();
});

test("M_clean: perWord keeps words apart, mixer mixes them (the ablation); both [2,5,32] → [2,5,32]", () => {
  for (const [type, mixes] of [['perWord', false], ['mixer', true]] as const) {
    const p = new Params();
    const cfg = type === 'perWord' ? { type, hidden: 16, layers: 1, residual: false } : { type, hidden: 16, layers: 1, heads: 2, residual: false };
    const m = new CleanMapper(p, 'c', cfg, 5, 32, 0.05, new Rng(4));
    if (type === 'mixer') p.get('c.block0.attn.o.w').assign(tf.randomNormal([16, 16], 0, 0.1, 'float32', 1)); // zero-initialised: open the attention branch
    const rng = new Rng(5);
    const e = tf.tensor3d(Float32Array.from({ length: 2 * 5 * 32 }, () => rng.normal()), [2, 5, 32]);
    const e2 = tf.tidy(() => tf.concat([tf.add(e.slice([0, 0, 0], [2, 1, 32]), 1), e.slice([0, 1, 0], [2, 4, 32])], 1) as tf.Tensor3D);
    const y = m.call(e);
    assert.deepEqual(y.shape, [2, 5, 32]);
    const y2 = m.call(e2);
    const changedOthers = tf.tidy(() => tf.abs(tf.sub(y.slice([0, 1, 0], [2, 4, 32]), y2.slice([0, 1, 0], [2, 4, 32]))).max().dataSync()[0]);
    assert.equal(changedOthers > 0, mixes, `${type}: other words ${mixes ? 'change' : 'stay'} when word 0 changes`);
    tf.dispose([e, e2, y, y2]);
    p.dispose();
  }
});

test('t2iWeightsHash: equal for the same weights, different after any change', () => {
  const a = tinyT2I();
  const b = tinyT2I();
  assert.equal(t2iWeightsHash(a), t2iWeightsHash(b));
  const v = b.unet.convOut.w;
  tf.tidy(() => v.assign(tf.add(v, 0.01)));
  assert.notEqual(t2iWeightsHash(a), t2iWeightsHash(b));
  a.dispose();
  b.dispose();
});
