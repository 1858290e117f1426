/**
 * The shipped checkpoints (data/checkpoints): the whole set stays within the 60 MB budget, every model
 * has its loss log beside it, and the README's checkpoint table names each one with its rebuild command.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shippedCheckpoint, portablePath } from '../../lib/util/paths';
import { readCheckpointMeta } from '../../lib/util/checkpoint';
import { guidanceModelRef } from '../../lib/jobs/sources';
import type { BackboneType } from '../../lib/restore/config';

const dir = path.dirname(shippedCheckpoint('x'));
const root = path.resolve(dir, '..', '..');

test('shipped checkpoints: within 60 MB, each with its log, a rebuild command and a README row', () => {
  const files = fs.readdirSync(dir);
  const total = files.reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
  assert.ok(total <= 60 * 1024 * 1024, `data/checkpoints holds ${(total / 2 ** 20).toFixed(1)} MB, over the 60 MB budget`);
  const models = files.filter((f) => f.endsWith('.tdrc'));
  assert.ok(models.length >= 5, `expected the shipped models, found ${models.join(', ')}`);
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  for (const f of models) {
    const base = f.replace(/\.tdrc$/, '');
    assert.ok(files.includes(`${base}.log.jsonl`), `${f}: no ${base}.log.jsonl beside it`);
    assert.ok(readme.includes(`\`data/checkpoints/${f}\``), `README's checkpoint table does not name data/checkpoints/${f}`);
    const meta = readCheckpointMeta(path.join(dir, f));
    assert.notEqual(meta.kind, 'train-state', `${f} is a training-run checkpoint (optimizer state), not a shipped model`);
    assert.match(String(meta.rebuild), /^tdr train /, `${f}: its meta has no rebuild command`);
  }
});

test('data/configs: every shipped config parses (a T2I, guidance or restore preset file) and docs/experiments.md names it', async () => {
  const { parseT2IConfig } = await import('../../lib/t2i/presets');
  const { parseGuidanceConfig } = await import('../../lib/guidance/config');
  const { parseRestorePresetFile, restorePresetFrom } = await import('../../lib/restore/config');
  const cfgDir = path.join(root, 'data', 'configs');
  const experiments = fs.readFileSync(path.join(root, 'docs', 'experiments.md'), 'utf8');
  const files = fs.readdirSync(cfgDir).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 2, files.join(', '));
  for (const f of files) {
    const file = path.join(cfgDir, f);
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    // a guidance config names the T2I preset it builds on; a restore preset file has backbones; a T2I config has the autoencoder
    if ('t2iPreset' in raw) parseGuidanceConfig(raw, file);
    else if ('backbones' in raw) {
      const p = parseRestorePresetFile(raw, file);
      for (const backbone of Object.keys(p.backbones)) for (const guidance of [false, true]) restorePresetFrom(p.preset, p, { backbone: backbone as BackboneType, guidance, tasks: 'all-in-one' }, file);
    } else parseT2IConfig(raw, file);
    assert.ok(experiments.includes(`data/configs/${f}`), `docs/experiments.md does not name data/configs/${f} (each experiment config is recorded with its command and result there)`);
  }
});

test('the shipped demo models were trained with the current demo presets and experiment configs (a change needs a retrain)', async () => {
  const { PRESETS, parseT2IConfig } = await import('../../lib/t2i/presets');
  const { GUIDANCE_PRESETS, parseGuidanceConfig } = await import('../../lib/guidance/config');
  const demoGuidance = parseGuidanceConfig(GUIDANCE_PRESETS.demo, 'guidance preset demo');
  // guidance-demo-n<N>.tdrc (Table 9): the demo preset with N pseudo-words
  const withN = fs.readdirSync(dir).flatMap((f) => {
    const m = /^guidance-demo-n(\d+)\.tdrc$/.exec(f);
    return m ? [[f, { ...demoGuidance, mapper: { ...demoGuidance.mapper, numWords: Number(m[1]) } }] as [string, unknown]] : [];
  });
  // both sides parsed: a field added later with a default that keeps the old behaviour does not count as a change
  const expected: Array<[string, unknown, (raw: unknown, label: string) => unknown]> = [
    ['t2i-demo.tdrc', parseT2IConfig(PRESETS.demo, 'preset demo'), parseT2IConfig],
    ['guidance-demo.tdrc', demoGuidance, parseGuidanceConfig],
    ...withN.map(([f, c]) => [f, c, parseGuidanceConfig] as [string, unknown, (raw: unknown, label: string) => unknown]),
  ];
  // a shipped model of an experiment config (data/configs/<name>.json → data/checkpoints/<name>.tdrc): trained with that config
  const cfgDir = path.join(root, 'data', 'configs');
  for (const f of fs.readdirSync(cfgDir).filter((x) => x.endsWith('.json') && fs.existsSync(path.join(dir, x.replace(/\.json$/, '.tdrc'))))) {
    const raw = JSON.parse(fs.readFileSync(path.join(cfgDir, f), 'utf8')) as Record<string, unknown>;
    const parse = ('t2iPreset' in raw ? parseGuidanceConfig : parseT2IConfig) as (raw: unknown, label: string) => unknown;
    expected.push([f.replace(/\.json$/, '.tdrc'), parse(raw, f), parse]);
  }
  for (const [f, cfg, parse] of expected) {
    const meta = readCheckpointMeta(path.join(dir, f));
    assert.deepEqual(JSON.parse(JSON.stringify(parse(meta.config, f))), JSON.parse(JSON.stringify(cfg)), `${f}: its config differs from the demo preset`);
  }
});

test('every shipped guidance model was trained on a shipped text-to-image model, the one it names (a T2I retrain needs stages 1–2 again)', async () => {
  const { initBackend } = await import('../../lib/backend');
  const { TextToImage } = await import('../../lib/t2i/model');
  const { GuidanceModel, t2iWeightsHash } = await import('../../lib/guidance/model');
  await initBackend({ quiet: true });
  const hashes = new Map<string, string>();
  const hashOf = (rel: string): string => {
    if (!hashes.has(rel)) {
      const t2i = TextToImage.load(path.join(root, rel));
      hashes.set(rel, t2iWeightsHash(t2i));
      t2i.dispose();
    }
    return hashes.get(rel)!;
  };
  const files = fs.readdirSync(dir).filter((f) => /^guidance-.*\.tdrc$/.test(f));
  assert.ok(files.includes('guidance-demo.tdrc'));
  for (const f of files) {
    const h = GuidanceModel.readHeader(path.join(dir, f));
    assert.match(h.t2i.path, /^data\/checkpoints\/t2i-[\w-]+\.tdrc$/, `${f}: trained on ${h.t2i.path}, not on a shipped text-to-image model`);
    assert.ok(fs.existsSync(path.join(root, h.t2i.path)), `${f}: its text-to-image model ${h.t2i.path} is not shipped`);
    assert.equal(h.t2i.sha256, hashOf(h.t2i.path), `${f}: trained on another ${h.t2i.path} than the shipped one`);
  }
});

test('every shipped guided restorer that records its guidance model was trained with a shipped one, byte for byte; Table 1\'s guided restorer records one', () => {
  const files = fs.readdirSync(dir).filter((f) => /^restore-.*-guided-.*\.tdrc$/.test(f));
  let recorded = 0;
  for (const f of files) {
    const meta = readCheckpointMeta(path.join(dir, f));
    const g = meta.guidanceModel as { file?: string; sha256?: string } | null | undefined;
    // the smaller demo pair and the clean-oracle restorer predate the record (README: trained with an earlier guidance model / a stand-in source)
    if (g == null) continue;
    assert.match(String(g.file), /^data\/checkpoints\/guidance-[\w-]+\.tdrc$/, `${f}: trained with the guidance of ${g.file}, not a shipped guidance model`);
    const gfile = path.join(root, String(g.file));
    assert.ok(fs.existsSync(gfile), `${f}: its guidance model ${g.file} is not shipped`);
    // the hash the restorer recorded at training time (tdr train restore → guidanceModelRef)
    assert.equal(g.sha256, guidanceModelRef(gfile).sha256, `${f}: trained with another ${g.file} than the shipped one (a guidance retrain needs the restorer again)`);
    recorded++;
  }
  const wide = 'restore-promptir-all-in-one-guided-demo-wide.tdrc';
  if (files.includes(wide)) assert.ok((readCheckpointMeta(path.join(dir, wide)).guidanceModel as unknown) != null, `${wide}: records no guidance model`);
  assert.ok(recorded > 0 || !files.includes(wide));
});

test('the rebuild command named for a missing restorer of the shipped pair has the legs the shipped model records (--stop-at of each, --init-from)', async () => {
  const { shippedRestoreRebuild, restoreCheckpoint } = await import('../../lib/jobs/method');
  const legs = (cmd: string) => cmd.split(' && ').map((leg) => ({ stopAt: /--stop-at (\d+)/.exec(leg)?.[1], warm: / --init-from /.test(leg) }));
  for (const guided of [false, true]) {
    const file = restoreCheckpoint('promptir', guided);
    const meta = readCheckpointMeta(file);
    const g = meta.guidanceModel as { file?: string } | null;
    assert.equal(g == null, !guided, `${file}: ${guided ? 'records no' : 'records a'} guidance model`);
    const named = shippedRestoreRebuild('promptir', g?.file, portablePath(file));
    assert.deepEqual(legs(named), legs(String(meta.rebuild)), `${file}: trained as \`${meta.rebuild}\`, but the command named for it is \`${named}\``);
  }
});

test('the default models of the commands and notebooks are shipped (tdr guide and guide-check: the words guidance, the one the Table 1 guided restorer was trained with; Table 9 and old restorers: guidance-demo)', async () => {
  const { guidanceCheckpoint, wordsGuidanceCheckpoint } = await import('../../lib/guidance/config');
  const was = process.env.TDR_GUIDANCE_CHECKPOINT;
  delete process.env.TDR_GUIDANCE_CHECKPOINT;
  try {
    for (const f of [guidanceCheckpoint(), wordsGuidanceCheckpoint()]) assert.ok(fs.existsSync(f), `${f}: a default guidance model that is not shipped`);
    assert.notEqual(wordsGuidanceCheckpoint(), guidanceCheckpoint());
    // the guidance of tdr guide and notebooks 03–05 is the one the shipped Table 1 guided restorer was trained with (notebooks 06–07)
    const wide = path.join(dir, 'restore-promptir-all-in-one-guided-demo-wide.tdrc');
    const g = readCheckpointMeta(wide).guidanceModel as { file?: string } | null;
    assert.equal(g?.file, portablePath(wordsGuidanceCheckpoint()), `${wide} was trained with ${g?.file}, the words guidance default is ${wordsGuidanceCheckpoint()}`);
  } finally {
    if (was !== undefined) process.env.TDR_GUIDANCE_CHECKPOINT = was;
  }
});
