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

test('the guidance sources are one explicit map: text, text-raw, clean-oracle, none; an unknown name lists them', () => {
  assert.deepEqual(guidanceSourceNames(), ['text', 'text-raw', 'clean-oracle', 'none']);
  assert.equal(guidanceSourceByName('none').source, noGuidance);
  assert.equal(guidanceSourceByName('clean-oracle').source.name, 'clean-oracle');
  assert.ok(guidanceSourceByName('clean-oracle').source.standIn);
  assert.throws(() => guidanceSourceByName('texts'), /unknown guidance source 'texts'; sources: text, text-raw, clean-oracle, none/);
  // lib/restore picks from whatever map it is handed: no global registry
  assert.throws(() => pickGuidanceSource(new Map(), 'text'), /unknown guidance source 'text'; sources: $/);
  assert.equal(GUIDANCE_SOURCES.get('text')!.dependsOnN, true);
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
