import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { initBackend } from '../../lib/backend';
import { GuidanceModel, t2iWeightsHash } from '../../lib/guidance/model';
import { textGuidance, guidanceCheckpointForWords, guidanceSourceByName, guidanceSourceNames, GUIDANCE_SOURCES } from '../../lib/jobs/sources';
import { noGuidance, pickGuidanceSource } from '../../lib/restore/source';
import { makeImage } from '../../lib/data/image';
import { tinyT2I, tinyGuidanceConfig } from './helpers';
import { tmpDir } from '../helpers/fixtures';

test('before: backend', async () => {
  await initBackend({ quiet: true });
});

test('the guidance sources are one explicit map: text, text-raw, clean-oracle, clean-thumb-<k>, none; an unknown name lists them', () => {
  assert.deepEqual(guidanceSourceNames(), ['text', 'text-raw', 'clean-oracle', 'clean-thumb-4', 'clean-thumb-8', 'clean-thumb-16', 'clean-thumb-32', 'none']);
  assert.equal(guidanceSourceByName('none').source, noGuidance);
  assert.equal(guidanceSourceByName('clean-oracle').source.name, 'clean-oracle');
  assert.ok(guidanceSourceByName('clean-oracle').source.standIn);
  assert.throws(() => guidanceSourceByName('texts'), /unknown guidance source 'texts'; sources: text, text-raw, clean-oracle, clean-thumb-4, clean-thumb-8, clean-thumb-16, clean-thumb-32, none/);
  // lib/restore picks from whatever map it is handed: no global registry
  assert.throws(() => pickGuidanceSource(new Map(), 'text'), /unknown guidance source 'text'; sources: $/);
  assert.equal(GUIDANCE_SOURCES.get('text')!.dependsOnN, true);
});

test('clean-thumb-<k>: the clean image at k px on its short side, enlarged back; needs the clean image', async () => {
  // a 24x36 image whose left and right halves differ, plus a fine checkerboard that k = 4 must drop
  const h = 24;
  const w = 36;
  const clean = makeImage(h, w);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) clean.data[(y * w + x) * 3 + c] = (x < w / 2 ? 0.2 : 0.8) + ((x + y) % 2 ? 0.1 : -0.1);
  const { source } = guidanceSourceByName('clean-thumb-4');
  assert.match(source.standIn ?? '', /STAND-IN 'clean-thumb-4'/);
  const g = await source.get(makeImage(h, w), 'train:p:noise25', { clean });
  assert.deepEqual([g.height, g.width], [h, w]);
  const at = (y: number, x: number): number => g.data[(y * w + x) * 3];
  // the checkerboard is averaged away (neighbours equal to within 8-bit rounding), the halves stay
  assert.ok(Math.abs(at(3, 2) - at(3, 3)) < 0.01 && Math.abs(at(20, 33) - at(21, 33)) < 0.01, `${at(3, 2)} ${at(3, 3)}`);
  assert.ok(Math.abs(at(12, 1) - 0.2) < 0.02 && Math.abs(at(12, 34) - 0.8) < 0.02, `${at(12, 1)} ${at(12, 34)}`);
  // k = 32 ≥ the short side keeps the checkerboard
  const g32 = await guidanceSourceByName('clean-thumb-32').source.get(makeImage(h, w), 'k', { clean });
  assert.ok(Math.abs(g32.data[(3 * w + 2) * 3] - g32.data[(3 * w + 3) * 3]) > 0.1);
  await assert.rejects(source.get(makeImage(h, w), 'val:p:haze'), /clean-thumb-4: no clean image offered for 'val:p:haze'/);
  await assert.rejects(source.get(makeImage(h, w + 1), 'k', { clean }), /clean 24x36 and degraded 24x37 differ/);
});

test("without a checkpoint the 'text' source refuses at once, naming the file", () => {
  process.env.TDR_GUIDANCE_CHECKPOINT = '/nonexistent/guidance.tdrc';
  try {
    assert.throws(() => guidanceSourceByName('text'), /\/nonexistent\/guidance\.tdrc: no guidance checkpoint/);
  } finally {
    delete process.env.TDR_GUIDANCE_CHECKPOINT;
  }
});

test('text guidance: a checkpoint pair → G for a degraded image, deterministic and cached; raw and cleaned cached apart', async () => {
  const dir = tmpDir();
  const t2i = tinyT2I();
  const t2iFile = path.join(dir, 't2i.tdrc');
  t2i.save(t2iFile);
  const g = new GuidanceModel(tinyGuidanceConfig(), t2i, { path: t2iFile, sha256: t2iWeightsHash(t2i) });
  const file = path.join(dir, 'guidance.tdrc');
  g.save(file);
  process.env.TDR_GUIDANCE_CHECKPOINT = file;
  process.env.TDR_GUIDANCE_CACHE = path.join(dir, 'cache');
  try {
    const x = makeImage(40, 48, new Float32Array(40 * 48 * 3).map((_, i) => ((i * 7) % 255) / 255));
    const a = await textGuidance().get(x, 'k');
    const b = await textGuidance().get(x, 'k');
    assert.equal(a.height, t2i.cfg.imageSize);
    assert.deepEqual(Array.from(b.data), Array.from(a.data));
    // the untrained residual M_clean is the identity, so G(E_txt) = G(E'_txt) here; they are cached apart
    await textGuidance({ raw: true }).get(x, 'k');
    assert.equal(fs.readdirSync(path.join(dir, 'cache')).filter((f) => f.endsWith('.png')).length, 2);
    assert.equal(guidanceCheckpointForWords(), file);
    assert.throws(() => guidanceCheckpointForWords(33), /no guidance checkpoint with N = 33 words/);
  } finally {
    delete process.env.TDR_GUIDANCE_CHECKPOINT;
    delete process.env.TDR_GUIDANCE_CACHE;
    g.dispose();
    t2i.dispose();
  }
});
