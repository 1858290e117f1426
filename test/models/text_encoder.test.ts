import { test, before } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { backendUnderTest } from '../helpers/backend';
import { Params } from '../../lib/models/params';
import { Rng } from '../../lib/util/rng';
import { TextEncoder, TextEncoderConfigInput, parseTextEncoderConfig } from '../../lib/models/text_encoder';
import { PROMPT_TEMPLATE, SPECIAL, buildVocab } from '../../lib/models/tokenizer';

const vocab = buildVocab(['a photo of a cat', 'a photo of a meadow, hazy', 'a photo of a dog with heavy rain streaks'], [PROMPT_TEMPLATE]);

function make(over: Partial<TextEncoderConfigInput> = {}, seed = 1): { p: Params; enc: TextEncoder } {
  const p = new Params();
  const enc = new TextEncoder(p, 'text', { vocabSize: vocab.size, width: 64, layers: 2, heads: 4, contextLength: 16, ...over }, new Rng(seed));
  // nn.Attention zero-inits its output projection; randomise everything so every path is live
  const rng = new Rng(seed + 100);
  for (const [, v] of p.entries()) {
    const a = new Float32Array(v.size);
    for (let i = 0; i < a.length; i++) a[i] = rng.normal() * 0.2;
    tf.tidy(() => v.assign(tf.tensor(a, v.shape)));
  }
  return { p, enc };
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

before(async () => {
  await initBackend({ quiet: true });
});

test('ids=[2,16] → ctx=[2,16,64] pooled=[2,64]', () => {
  const { p, enc } = make();
  const ids = vocab.encodeBatch(['a photo of a cat', 'a photo of a meadow, hazy'], 16);
  const { context, pooled } = enc.encode(ids);
  assert.deepEqual(context.shape, [2, 16, 64]);
  assert.deepEqual(pooled.shape, [2, 64]);
  // pooled = context at the EOS position of each row
  ids.forEach((r, i) => {
    const k = r.indexOf(SPECIAL.EOS);
    const want = tf.tidy(() => context.slice([i, k, 0], [1, 1, 64]).reshape([64]));
    const got = tf.tidy(() => pooled.slice([i, 0], [1, 64]).reshape([64]));
    assert.ok(maxAbsDiff(got, want) < 1e-6);
    tf.dispose([want, got]);
  });
  tf.dispose([context, pooled]);
  p.dispose();
});

test('ids=[3,8] tensor input, layers=0 → ctx=[3,8,32]; parameter names', () => {
  const p = new Params();
  const enc = new TextEncoder(p, 'te', { vocabSize: vocab.size, width: 32, layers: 0, heads: 2, contextLength: 8 }, new Rng(0));
  assert.deepEqual(p.names(), ['te.tok', 'te.pos', 'te.lnFinal.g', 'te.lnFinal.b']);
  const ids = tf.tensor2d(vocab.encodeBatch(['a cat', 'a dog', 'a photo of a cat'], 8), undefined, 'int32');
  const { context, pooled } = enc.encode(ids);
  assert.deepEqual(context.shape, [3, 8, 32]);
  assert.deepEqual(pooled.shape, [3, 32]);
  tf.dispose([ids, context, pooled]);
  p.dispose();
  const q = new Params();
  new TextEncoder(q, 'text', { vocabSize: 10, width: 16, layers: 1, heads: 2, contextLength: 4 }, new Rng(0));
  assert.deepEqual(q.names().filter((n) => n.startsWith('text.block0.')), [
    'text.block0.ln1.g', 'text.block0.ln1.b', 'text.block0.attn.q.w', 'text.block0.attn.k.w', 'text.block0.attn.v.w', 'text.block0.attn.o.w', 'text.block0.attn.o.b',
    'text.block0.ln2.g', 'text.block0.ln2.b', 'text.block0.fc1.w', 'text.block0.fc1.b', 'text.block0.fc2.w', 'text.block0.fc2.b',
  ]);
  q.dispose();
});

test('embedTokens is an exact table look-up (oneHot·matMul)', () => {
  const { p, enc } = make();
  const ids = [[1, 5, 7, 2], [0, 3, 4, 6]];
  const emb = enc.embedTokens(ids);
  const table = enc.tokenEmb.arraySync() as number[][];
  const got = emb.arraySync() as number[][][];
  ids.forEach((r, i) => r.forEach((id, j) => assert.deepEqual(got[i][j], table[id])));
  emb.dispose();
  p.dispose();
});

test('causal: changing token 9 leaves positions 0..8 unchanged and changes 9..', () => {
  const { p, enc } = make();
  const a = vocab.encode('a photo of a dog with heavy rain streaks', 16);
  const b = [...a];
  b[9] = b[9] === 5 ? 6 : 5;
  const ca = enc.encode([a]);
  const cb = enc.encode([b]);
  const early = tf.tidy(() => maxAbsDiff(ca.context.slice([0, 0, 0], [1, 9, 64]), cb.context.slice([0, 0, 0], [1, 9, 64])));
  const late = tf.tidy(() => maxAbsDiff(ca.context.slice([0, 9, 0], [1, 7, 64]), cb.context.slice([0, 9, 0], [1, 7, 64])));
  assert.equal(early, 0);
  assert.ok(late > 1e-3, `later positions should change, max diff ${late}`);
  tf.dispose([ca.context, ca.pooled, cb.context, cb.pooled]);
  p.dispose();
});

test('gradient reaches the embedding table on the backend under test (variableGrads; no gather gradient needed)', async () => {
  assert.equal(tf.getBackend(), await backendUnderTest());
  const { p, enc } = make();
  const ids = vocab.encodeBatch(['a photo of a cat', 'a photo of a S'], 16);
  const used = new Set(ids.flat());
  const n0 = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(() => {
    const { context, pooled } = enc.encode(ids);
    return tf.add(tf.mean(tf.square(context)), tf.mean(pooled)) as tf.Scalar;
  }, p.trainable().map(([, v]) => v));
  const g = grads[enc.tokenEmb.name].arraySync() as number[][];
  g.forEach((row, id) => {
    const norm = Math.hypot(...row);
    if (used.has(id)) assert.ok(norm > 0, `row ${id} is used but got no gradient`);
    else assert.equal(norm, 0, `row ${id} is unused but got gradient ${norm}`);
  });
  assert.ok(Object.keys(grads).length === p.names().length);
  tf.dispose([value, ...Object.values(grads)]);
  assert.equal(tf.memory().numTensors, n0);
  p.dispose();
});

/** Expected rows of the spliced output, as ('tok', j) = tokenEmb row j, ('word', k), ('pad'). */
function checkSplice(enc: TextEncoder, ids: number[], n: number, expect: Array<['tok', number] | ['word', number] | ['pad']>) {
  const d = enc.cfg.width;
  const emb = enc.embedTokens([ids]);
  const words = tf.randomNormal([1, n, d], 0, 1, 'float32', 7) as tf.Tensor3D;
  const out = enc.spliceAtPlaceholder(emb, [ids], words);
  assert.deepEqual(out.shape, [1, enc.cfg.contextLength, d]);
  assert.equal(expect.length, enc.cfg.contextLength);
  const o = (out.arraySync() as number[][][])[0];
  const e = (emb.arraySync() as number[][][])[0];
  const w = (words.arraySync() as number[][][])[0];
  const pad = (enc.tokenEmb.arraySync() as number[][])[SPECIAL.PAD];
  expect.forEach((x, pos) => {
    const want = x[0] === 'tok' ? e[x[1]] : x[0] === 'word' ? w[x[1]] : pad;
    assert.deepEqual(o[pos], want, `position ${pos} should be ${x.join(' ')}`);
  });
  tf.dispose([emb, words, out]);
}

const tok = (j: number): ['tok', number] => ['tok', j];
const word = (k: number): ['word', number] => ['word', k];
const PAD: ['pad'] = ['pad'];

test('splice N=1: "a photo of a S" — the word replaces the placeholder in place (position 5), nothing shifts', () => {
  const { p, enc } = make();
  const ids = vocab.encode(PROMPT_TEMPLATE, 16); // BOS a photo of a S EOS PAD…
  assert.equal(ids.indexOf(SPECIAL.PLACEHOLDER), 5);
  checkSplice(enc, ids, 1, [tok(0), tok(1), tok(2), tok(3), tok(4), word(0), tok(6), ...Array(9).fill(PAD)]);
  assert.deepEqual(enc.spliceIds([ids], 1)[0], ids);
  p.dispose();
});

test('splice N=5: "a photo of a S, hazy" — words at 5..9, ", hazy" and EOS shift right by 4', () => {
  const { p, enc } = make();
  const ids = vocab.encode('a photo of a S, hazy', 16); // BOS a photo of a S , hazy EOS PAD…
  assert.equal(ids.indexOf(SPECIAL.EOS), 8);
  checkSplice(enc, ids, 5, [tok(0), tok(1), tok(2), tok(3), tok(4), word(0), word(1), word(2), word(3), word(4), tok(6), tok(7), tok(8), PAD, PAD, PAD]);
  const s = enc.spliceIds([ids], 5)[0];
  assert.deepEqual(s, [...ids.slice(0, 5), 3, 3, 3, 3, 3, ids[6], ids[7], SPECIAL.EOS, 0, 0, 0]);
  p.dispose();
});

test('splice N=20 (paper) with contextLength 32: words at 5..24, EOS at 25, padding extended with E[PAD]', () => {
  const { p, enc } = make({ contextLength: 32 });
  const ids = vocab.encode(PROMPT_TEMPLATE, 10); // shorter than L: output is still L = 32
  checkSplice(enc, ids, 20, [tok(0), tok(1), tok(2), tok(3), tok(4), ...Array.from({ length: 20 }, (_, k) => word(k)), tok(6), ...Array(6).fill(PAD)]);
  p.dispose();
});

test('splice N=3 at batch 2 with different placeholder positions; N≠20 truncation keeps EOS last', () => {
  const { p, enc } = make({ contextLength: 10 });
  const rows = [vocab.encode('a S', 10), vocab.encode('a photo of a S, hazy', 10)];
  // row 0: BOS a S EOS → BOS a w0 w1 w2 EOS PAD×4
  // row 1: BOS a photo of a S , hazy EOS → 5 + 3 words + ", hazy" (2) + EOS = 11 > 10 → drop "hazy", keep EOS
  assert.deepEqual(enc.spliceIds(rows, 3), [
    [1, rows[0][1], 3, 3, 3, 2, 0, 0, 0, 0],
    [...rows[1].slice(0, 5), 3, 3, 3, rows[1][6], 2],
  ]);
  const emb = enc.embedTokens(rows);
  const words = tf.randomNormal([2, 3, 64]) as tf.Tensor3D;
  const out = enc.spliceAtPlaceholder(emb, rows, words);
  assert.deepEqual(out.shape, [2, 10, 64]);
  const o = out.arraySync() as number[][][];
  const w = words.arraySync() as number[][][];
  const e = emb.arraySync() as number[][][];
  assert.deepEqual(o[0].slice(2, 5), w[0]);
  assert.deepEqual(o[1].slice(5, 8), w[1]);
  assert.deepEqual(o[1][8], e[1][6]);
  assert.deepEqual(o[1][9], e[1][8]); // EOS
  tf.dispose([emb, words, out]);
  assert.throws(() => enc.spliceIds(rows, 6), /6 words at position 5 plus EOS need 12 positions, contextLength is 10/);
  p.dispose();
});

test('encodeWithWords: ctx=[2,16,64] pooled at the shifted EOS; gradient flows to the words and E', () => {
  const { p, enc } = make();
  const ids = vocab.encodeBatch([PROMPT_TEMPLATE, 'a photo of a S, hazy'], 16);
  const words = tf.variable(tf.randomNormal([2, 4, 64], 0, 1, 'float32', 3), true, 'test_words') as tf.Variable<tf.Rank.R3>;
  const n0 = tf.memory().numTensors;
  const { context, pooled } = enc.encodeWithWords(ids, words);
  assert.deepEqual(context.shape, [2, 16, 64]);
  assert.deepEqual(pooled.shape, [2, 64]);
  const eos = enc.spliceIds(ids, 4).map((r) => r.indexOf(SPECIAL.EOS));
  assert.deepEqual(eos, [9, 11]);
  eos.forEach((k, i) => {
    const want = tf.tidy(() => context.slice([i, k, 0], [1, 1, 64]).reshape([64]));
    const got = tf.tidy(() => pooled.slice([i, 0], [1, 64]).reshape([64]));
    assert.ok(maxAbsDiff(got, want) < 1e-6);
    tf.dispose([want, got]);
  });
  tf.dispose([context, pooled]);
  assert.equal(tf.memory().numTensors, n0);
  const { value, grads } = tf.variableGrads(() => tf.sum(enc.encodeWithWords(ids, words).pooled) as tf.Scalar, [words, enc.tokenEmb]);
  assert.ok(tf.tidy(() => tf.norm(grads['test_words']).dataSync()[0]) > 0);
  assert.ok(tf.tidy(() => tf.norm(grads[enc.tokenEmb.name]).dataSync()[0]) > 0);
  tf.dispose([value, ...Object.values(grads)]);
  assert.equal(tf.memory().numTensors, n0);
  words.dispose();
  p.dispose();
});

test('no tensor leak: encode / embed / splice / pool leave numTensors unchanged', () => {
  const { p, enc } = make();
  const ids = vocab.encodeBatch([PROMPT_TEMPLATE, 'a photo of a cat'], 16);
  const n0 = tf.memory().numTensors;
  const r = enc.encode(ids);
  tf.dispose([r.context, r.pooled]);
  const emb = enc.embedTokens(ids);
  const words = tf.zeros([1, 2, 64]) as tf.Tensor3D;
  const first = emb.slice([0, 0, 0], [1, 16, 64]) as tf.Tensor3D;
  const s = enc.spliceAtPlaceholder(first, [ids[0]], words);
  const pooled = tf.tidy(() => enc.pool(enc.encodeEmbeddings(s), enc.spliceIds([ids[0]], 2)));
  tf.dispose([emb, first, words, s, pooled]);
  assert.equal(tf.memory().numTensors, n0);
  p.dispose();
});

test('throws when config or inputs are invalid', () => {
  assert.throws(() => parseTextEncoderConfig({ vocabSize: 10, width: 30, layers: 1, heads: 4, contextLength: 8 }, 'presets/ci.json#text'), /presets\/ci\.json#text: .*width must be divisible by heads.*heads/s);
  assert.throws(() => parseTextEncoderConfig({ vocabSize: 10, width: 32, layers: 1, heads: 4, contextLength: 8, dropout: 0.1 }), /dropout/);
  assert.throws(() => parseTextEncoderConfig({ vocabSize: 3, width: 32, layers: 1, heads: 4, contextLength: 8 }), /vocabSize/);
  assert.equal(parseTextEncoderConfig({ vocabSize: 10, width: 32, layers: 1, heads: 4, contextLength: 8 }).mlpRatio, 4);
  const { p, enc } = make();
  assert.throws(() => enc.embedTokens([[1, 999]]), /ids\[0\]\[1\] = 999 is outside the vocabulary \[0,\d+\)/);
  assert.throws(() => enc.embedTokens([[1, 2], [1]]), /ids row 1 has 1 tokens, row 0 has 2/);
  assert.throws(() => enc.embedTokens([new Array(17).fill(0)]), /ids have 17 tokens, contextLength is 16/);
  const x = tf.zeros([1, 4, 32]) as tf.Tensor3D;
  assert.throws(() => enc.encodeEmbeddings(x), /emb must be \[B,T,64\], got \[1,4,32\]/);
  x.dispose();
  const ids = vocab.encode('a photo of a cat', 16);
  assert.throws(() => enc.spliceIds([ids], 2), /ids row 0 has no placeholder/);
  const two = vocab.encode('a S and a S', 16);
  assert.throws(() => enc.spliceIds([two], 2), /more than one placeholder/);
  tf.tidy(() => {
    const emb = enc.embedTokens([vocab.encode(PROMPT_TEMPLATE, 16)]);
    assert.throws(() => enc.spliceAtPlaceholder(emb, [vocab.encode(PROMPT_TEMPLATE, 16)], tf.zeros([2, 3, 64])), /words must be \[1,N,64\], got \[2,3,64\]/);
  });
  assert.throws(() => tf.tidy(() => enc.pool(tf.zeros([1, 16, 64]), [new Array(16).fill(0)])), /ids row 0 has no EOS/);
  p.dispose();
});

test('splice: one template for the whole batch (the batched path) gives the rows the per-row path gives', () => {
  const { p, enc } = make({ contextLength: 12 });
  const same = vocab.encode('a photo of a S, hazy', 12);
  const other = vocab.encode('a S', 12);
  const words = tf.randomNormal([3, 4, 64], 0, 1, 'float32', 5) as tf.Tensor3D;
  const embAll = enc.embedTokens([same, same, other]);
  const mixed = enc.spliceAtPlaceholder(embAll, [same, same, other], words).arraySync() as number[][][]; // per-row path
  const emb2 = enc.embedTokens([same, same]);
  const w2 = words.slice([0, 0, 0], [2, -1, -1]) as tf.Tensor3D;
  const batched = enc.spliceAtPlaceholder(emb2, [same, same], w2).arraySync() as number[][][];
  assert.deepEqual(batched, mixed.slice(0, 2));
  tf.dispose([words, embAll, emb2, w2]);
  p.dispose();
});
