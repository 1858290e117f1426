import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CorpusError,
  captionOf,
  entryRelPath,
  listEntries,
  loadCorpusImage,
  loadManifest,
  promptOf,
  sha256,
  verifyCorpus,
} from '../../lib/data/corpus';
import { SMOKE_SOURCES, TRAIN_SOURCES, VAL_SOURCES, buildCorpus, targetSize } from '../../lib/data/build_corpus';
import { projectRoot } from '../../lib/util/fsx';

const root = projectRoot();

function tempRoot(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tdr-corpus-test-'));
}

/** Copy a manifest and (optionally) some of its files into a fresh temp project root. */
function copyInto(tmp: string, which: 'corpus' | 'smoke', files: string[]): void {
  const dir = which === 'corpus' ? 'data/corpus' : 'data/smoke';
  fs.mkdirSync(path.join(tmp, dir), { recursive: true });
  fs.copyFileSync(path.join(root, dir, 'manifest.json'), path.join(tmp, dir, 'manifest.json'));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(tmp, f)), { recursive: true });
    fs.copyFileSync(path.join(root, f), path.join(tmp, f));
  }
}

test('manifests parse and have the expected counts per split', () => {
  const corpus = loadManifest('corpus');
  const smoke = loadManifest('smoke', root);
  assert.equal(corpus.version, 1);
  assert.match(corpus.rebuild, /corpus:build/);
  const train = listEntries('train');
  const val = listEntries('val');
  const sm = listEntries('smoke');
  assert.ok(train.length >= 30, `train has ${train.length} entries, expected >= 30`);
  assert.ok(val.length >= 15, `val has ${val.length} entries, expected >= 15`);
  assert.equal(sm.length, 10);
  assert.equal(listEntries().length, train.length + val.length);
  assert.equal(corpus.entries.length, train.length + val.length);
  assert.equal(smoke.entries.length, 10);
  // the manifests match the selection in the build script
  assert.deepEqual(corpus.entries.map((e) => e.id), [...TRAIN_SOURCES, ...VAL_SOURCES].map((s) => s.id));
  assert.deepEqual(smoke.entries.map((e) => e.id), SMOKE_SOURCES.map((s) => s.id));
});

test('every committed file exists and matches its sha256; sizes respect the max side', () => {
  const r = verifyCorpus();
  assert.equal(r.problems.length, 0);
  assert.equal(r.checked, listEntries().length + 10);
  const maxSide = { train: 768, val: 512, smoke: 128 } as const;
  let bytes = 0;
  for (const e of [...listEntries(), ...listEntries('smoke')]) {
    const buf = fs.readFileSync(path.join(root, entryRelPath(e)));
    assert.equal(sha256(buf), e.sha256, entryRelPath(e));
    assert.ok(Math.max(e.width, e.height) <= maxSide[e.split], `${e.id}: ${e.width}x${e.height} exceeds ${maxSide[e.split]}`);
    assert.ok(e.licence.length > 0 && e.copyright.length > 0);
    bytes += buf.length;
  }
  assert.ok(bytes < 15 * 1024 * 1024, `corpus is ${bytes} bytes, expected < 15 MB`);
});

test('loadCorpusImage decodes to float RGB with the manifest size', async () => {
  for (const e of [listEntries('train')[0], listEntries('val')[0], listEntries('smoke')[0]]) {
    const img = await loadCorpusImage(e);
    assert.equal(img.width, e.width);
    assert.equal(img.height, e.height);
    assert.equal(img.data.length, e.width * e.height * 3);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of img.data) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    assert.ok(lo >= 0 && hi <= 1 && hi > lo, `${e.id}: values in [${lo}, ${hi}]`);
  }
});

test('loadCorpusImage fails clearly on a missing file', async () => {
  const tmp = tempRoot();
  try {
    copyInto(tmp, 'corpus', []);
    const e = listEntries('val', tmp)[0];
    await assert.rejects(loadCorpusImage(e, tmp), (err: Error) => {
      assert.ok(err instanceof CorpusError);
      assert.equal(
        err.message,
        `data/corpus/val/${e.id}.jpg: missing (listed in data/corpus/manifest.json; rebuild with \`npm run corpus:build\`)`,
      );
      return true;
    });
    const r = verifyCorpus({ which: 'corpus', root: tmp, throwOnProblem: false });
    assert.equal(r.problems.length, r.checked);
    assert.throws(() => verifyCorpus({ which: 'corpus', root: tmp }), /corpus verification failed/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('loadCorpusImage fails clearly on an altered file (names it, expected vs actual sha256)', async () => {
  const tmp = tempRoot();
  try {
    const e = listEntries('smoke')[3];
    const rel = entryRelPath(e);
    copyInto(tmp, 'smoke', [rel]);
    const ok = await loadCorpusImage(e, tmp);
    assert.equal(ok.width, e.width);
    const f = path.join(tmp, rel);
    const buf = fs.readFileSync(f);
    buf[Math.floor(buf.length / 2)] ^= 0xff;
    fs.writeFileSync(f, buf);
    const actual = sha256(buf);
    await assert.rejects(loadCorpusImage(e, tmp), (err: Error) => {
      assert.ok(err instanceof CorpusError);
      assert.ok(err.message.startsWith(`${rel}: sha256 mismatch`), err.message);
      assert.ok(err.message.includes(`expected ${e.sha256}`), err.message);
      assert.ok(err.message.includes(`got ${actual}`), err.message);
      return true;
    });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('a malformed manifest names the file and the field at fault', () => {
  const tmp = tempRoot();
  try {
    copyInto(tmp, 'corpus', []);
    const file = path.join(tmp, 'data/corpus/manifest.json');
    const good = JSON.parse(fs.readFileSync(file, 'utf8'));

    const bad1 = structuredClone(good);
    bad1.entries[2].sha256 = 'not-a-hash';
    fs.writeFileSync(file, JSON.stringify(bad1));
    assert.throws(() => loadManifest('corpus', tmp), (err: Error) => {
      assert.ok(err instanceof CorpusError);
      assert.match(err.message, /^data\/corpus\/manifest\.json: invalid manifest/);
      assert.match(err.message, /entries\[2\]\.sha256: expected 64 lowercase hex digits/);
      return true;
    });

    const bad2 = structuredClone(good);
    bad2.entries[0].extra = 1;
    delete bad2.entries[1].caption;
    bad2.entries[4].width = -3;
    fs.writeFileSync(file, JSON.stringify(bad2));
    assert.throws(() => loadManifest('corpus', tmp), (err: Error) => {
      assert.match(err.message, /entries\[0\].*extra/);
      assert.match(err.message, /entries\[1\]\.caption/);
      assert.match(err.message, /entries\[4\]\.width/);
      return true;
    });

    const bad3 = structuredClone(good);
    bad3.entries[5].id = bad3.entries[6].id;
    bad3.entries[7].caption = 'Two Words.';
    fs.writeFileSync(file, JSON.stringify(bad3));
    assert.throws(() => loadManifest('corpus', tmp), (err: Error) => {
      assert.match(err.message, /entries\[6\]\.id: duplicate id/);
      assert.match(err.message, /entries\[7\]\.caption/);
      return true;
    });

    const bad4 = structuredClone(good);
    bad4.entries[0].split = 'smoke';
    bad4.entries[0].file = `${bad4.entries[0].id}.jpg`;
    fs.writeFileSync(file, JSON.stringify(bad4));
    assert.throws(() => loadManifest('corpus', tmp), /entries\[0\]\.split: 'smoke' does not belong in the corpus manifest/);

    fs.writeFileSync(file, '{ not json');
    assert.throws(() => loadManifest('corpus', tmp), /^CorpusError: data\/corpus\/manifest\.json: not valid JSON|data\/corpus\/manifest\.json: not valid JSON/);

    fs.rmSync(file);
    assert.throws(() => loadManifest('corpus', tmp), /data\/corpus\/manifest\.json: missing \(rebuild with `npm run corpus:build`\)/);
    assert.throws(() => loadManifest('smoke', tmp), /data\/smoke\/manifest\.json: missing \(rebuild with `npm run corpus:build -- --smoke`\)/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('captions are non-empty, lowercase, 3-10 words and unique', () => {
  const all = [...listEntries(), ...listEntries('smoke')];
  const seen = new Set<string>();
  for (const e of all) {
    const c = captionOf(e);
    assert.ok(c.length > 0);
    assert.equal(c, c.toLowerCase());
    assert.ok(!c.endsWith('.'));
    const words = c.split(/\s+/).length;
    assert.ok(words >= 3 && words <= 10, `${e.id}: '${c}' has ${words} words`);
    assert.ok(!seen.has(c), `duplicate caption '${c}'`);
    seen.add(c);
    assert.equal(promptOf(e), `a photo of ${c}`);
  }
  // "unique-ish": not all captions start the same way
  const firstWords = new Set(all.map((e) => e.caption.split(' ').slice(0, 2).join(' ')));
  assert.ok(firstWords.size > all.length / 3);
});

test('ids are unique across corpus and smoke', () => {
  const ids = [...listEntries(), ...listEntries('smoke')].map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length);
});

test('targetSize keeps aspect, never upscales', () => {
  assert.deepEqual(targetSize(2560, 1600, 768), { width: 768, height: 480 });
  assert.deepEqual(targetSize(2056, 3088, 768), { width: 511, height: 768 });
  assert.deepEqual(targetSize(500, 333, 512), { width: 500, height: 333 });
  assert.deepEqual(targetSize(512, 512, 512), { width: 512, height: 512 });
});

const ocvSample = VAL_SOURCES.find((s) => s.id === 'ocv-notebook')!;
test(
  'rebuilding an entry from its installed original reproduces the committed bytes',
  { skip: fs.existsSync(ocvSample.originalPath) ? false : `${ocvSample.sourcePackage} not installed` },
  async () => {
    const tmp = tempRoot();
    try {
      const m = await buildCorpus(tmp, [ocvSample]);
      const committed = listEntries('val').find((e) => e.id === ocvSample.id)!;
      assert.equal(m.entries[0].sha256, committed.sha256);
      assert.equal(m.entries[0].originalSha256, committed.originalSha256);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  },
);
