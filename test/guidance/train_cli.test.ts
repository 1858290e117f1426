import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { trainGuidanceCommandRun, stageOneRebuild } from '../../lib/cli/commands/guide';
import { GuidanceModel } from '../../lib/guidance/model';
import { GUIDANCE_PRESETS } from '../../lib/guidance/config';
import { FEATURE_CACHE_FILE, featureCache } from '../../lib/guidance/train_i2t';
import { cleanStage, cleanStageForWorker } from '../../lib/guidance/train_clean';
import { stepRng } from '../../lib/train/loop';
import { readCheckpointMeta } from '../../lib/util/checkpoint';
import { tmpDir } from '../helpers/fixtures';
import { tinyT2I, tinyGuidanceConfig } from './helpers';
import { UserError } from '../../lib/util/errors';

test('before: backend', async () => {
  await initBackend({ quiet: true });
});

async function quietly<T>(f: () => Promise<T>): Promise<T> {
  const e = process.stderr.write; // progress bars; stdout is left alone (the test reporter writes there)
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    return await f();
  } finally {
    process.stderr.write = e;
  }
}

test('tdr train i2t|clean --preset ci: stage 1 then stage 2 write <runs>/ci/{i2t,clean} and one guidance checkpoint that names its T2I', async () => {
  const runs = tmpDir();
  const t2iFile = path.join(runs, 't2i.tdrc');
  const t2i = tinyT2I();
  t2i.save(t2iFile, { float16: true });
  t2i.dispose();
  const prev = process.env.TDR_WORKERS;
  process.env.TDR_WORKERS = '1';
  try {
    await assert.rejects(trainGuidanceCommandRun('clean', ['--preset', 'ci', '--runs', runs, '--t2i', t2iFile]), /no stage-1 checkpoint; run 'tdr train i2t --preset ci' first/);
    assert.equal(await quietly(() => trainGuidanceCommandRun('i2t', ['--preset', 'ci', '--runs', runs, '--t2i', t2iFile, '--max-steps', '1'])), 0);
    assert.ok(!fs.existsSync(path.join(runs, 'ci', 'guidance-ci.tdrc')), 'no model file before the stage is complete');
    await assert.rejects(trainGuidanceCommandRun('clean', ['--preset', 'ci', '--runs', runs, '--t2i', t2iFile]), /stage 1 stopped at step 1\/4/);
    assert.equal(await quietly(() => trainGuidanceCommandRun('i2t', ['i2t', '--preset', 'ci', '--runs', runs, '--t2i', t2iFile])), 0);
    const out = path.join(runs, 'ci', 'guidance-ci.tdrc');
    assert.deepEqual(GuidanceModel.readHeader(out).trainedStages, ['i2t']);
    assert.equal(await quietly(() => trainGuidanceCommandRun('clean', ['--preset', 'ci', '--runs', runs, '--t2i', t2iFile])), 0);
    const h = GuidanceModel.readHeader(out);
    assert.deepEqual(h.trainedStages, ['i2t', 'clean']);
    assert.equal(path.resolve(h.t2i.path), path.resolve(t2iFile));
    for (const f of ['i2t/checkpoint.tdrc', 'i2t/features.tdrc', 'clean/checkpoint.tdrc', 'clean/log.jsonl']) assert.ok(fs.existsSync(path.join(runs, 'ci', f)), f);
  } finally {
    if (prev === undefined) delete process.env.TDR_WORKERS;
    else process.env.TDR_WORKERS = prev;
  }
  // Table 9: another N trains in its own folder and names its checkpoint after N
  process.env.TDR_WORKERS = '1';
  try {
    assert.equal(await quietly(() => trainGuidanceCommandRun('i2t', ['--preset', 'ci', '--runs', runs, '--t2i', t2iFile, '--words', '7'])), 0);
    assert.equal(await quietly(() => trainGuidanceCommandRun('clean', ['--preset', 'ci', '--runs', runs, '--t2i', t2iFile, '--words', '7'])), 0);
    const out7 = path.join(runs, 'ci-n7', 'guidance-ci-n7.tdrc');
    const h7 = GuidanceModel.readHeader(out7);
    assert.equal(h7.cfg.mapper.numWords, 7);
    assert.deepEqual(h7.trainedStages, ['i2t', 'clean']);
    assert.equal(GuidanceModel.readHeader(path.join(runs, 'ci', 'guidance-ci.tdrc')).cfg.mapper.numWords, 5, 'the default-N model is untouched');

    // another M_clean variant on a trained stage 1 (--from a guidance checkpoint): the mixer ablation
    const base = path.join(runs, 'ci', 'guidance-ci.tdrc');
    const mixCfg = path.join(runs, 'mixer.json');
    fs.writeFileSync(mixCfg, JSON.stringify({ ...GUIDANCE_PRESETS.ci, preset: 'ci-mixer', clean: { type: 'mixer', hidden: 16, layers: 1, heads: 2, residual: true } }));
    await assert.rejects(trainGuidanceCommandRun('i2t', ['--config', mixCfg, '--runs', runs, '--t2i', t2iFile, '--from', base]), /--from applies to stage 2 only/);
    await assert.rejects(trainGuidanceCommandRun('clean', ['--config', mixCfg, '--runs', runs, '--t2i', t2iFile, '--from', path.join(runs, 'none.tdrc')]), /none\.tdrc: no such checkpoint \(--from\)/);
    const otherT2I = path.join(runs, 't2i-other.tdrc');
    const o = tinyT2I({ seed: 99 });
    o.save(otherT2I, { float16: true });
    o.dispose();
    await assert.rejects(
      quietly(() => trainGuidanceCommandRun('clean', ['--config', mixCfg, '--runs', path.join(runs, 'other'), '--t2i', otherT2I, '--from', base])),
      /guidance-ci\.tdrc: its M_i2t was trained on the text-to-image model/,
    );
    // a stage 1 of another N cannot feed this config: a checkpoint error (user-facing, one line) naming the parameter
    const n7 = path.join(runs, 'ci-n7', 'i2t', 'checkpoint.tdrc');
    await assert.rejects(
      quietly(() => trainGuidanceCommandRun('clean', ['--config', mixCfg, '--runs', path.join(runs, 'from-n7'), '--t2i', t2iFile, '--from', n7])),
      (e: Error) => e instanceof UserError && /checkpoint\.tdrc: parameter 'mi2t\.[^']+' has shape/.test(e.message),
    );
    assert.equal(await quietly(() => trainGuidanceCommandRun('clean', ['--config', mixCfg, '--runs', runs, '--t2i', t2iFile, '--from', base])), 0);
    const mix = GuidanceModel.readHeader(path.join(runs, 'ci-mixer', 'guidance-ci-mixer.tdrc'));
    assert.equal(mix.cfg.clean.type, 'mixer');
    assert.deepEqual(mix.trainedStages, ['i2t', 'clean']);
    assert.match(String(mix.meta.rebuild), /^tdr train clean --config \S+mixer\.json --t2i \S+\.tdrc --from \S+guidance-ci\.tdrc$/);
    const b = GuidanceModel.readHeader(base).tensors;
    for (const [n, v] of b) if (n.startsWith('mi2t.') || n.startsWith('kv.')) assert.deepEqual(mix.tensors.get(n)!.data, v.data, `${n} comes from --from`);
    assert.ok([...mix.tensors.keys()].some((n) => n.startsWith('mclean.block0.')));
    // --from a stage-1 RUN checkpoint: the recorded rebuild starts with the command that trained that run
    const runCk = path.join(runs, 'ci', 'i2t', 'checkpoint.tdrc');
    assert.equal(readCheckpointMeta(runCk).rebuild, `tdr train i2t --preset ci --t2i ${t2iFile}`);
    assert.equal(await quietly(() => trainGuidanceCommandRun('clean', ['--config', mixCfg, '--runs', path.join(runs, 'from-run'), '--t2i', t2iFile, '--from', runCk])), 0);
    const fromRun = GuidanceModel.readHeader(path.join(runs, 'from-run', 'ci-mixer', 'guidance-ci-mixer.tdrc'));
    assert.equal(fromRun.meta.rebuild, `tdr train i2t --preset ci --t2i ${t2iFile} --runs ${runs} && tdr train clean --config ${mixCfg} --t2i ${t2iFile} --from ${runCk}`);
    // a copy of that checkpoint elsewhere: the chain cannot be named, the stage-2 command alone
    const copy = path.join(runs, 'stage1-copy.tdrc');
    fs.copyFileSync(runCk, copy);
    assert.equal(stageOneRebuild(copy), '');
    assert.equal(stageOneRebuild(base), '', 'a guidance checkpoint: its own rebuild is not a stage-1 run');
  } finally {
    delete process.env.TDR_WORKERS;
  }
  await assert.rejects(trainGuidanceCommandRun('i2t', ['--preset', 'ci', '--words', '50']), /--words/);
  await assert.rejects(trainGuidanceCommandRun('i2t', ['--preset', 'huge']), /--preset/);
  await assert.rejects(trainGuidanceCommandRun('i2t', ['--preset', 'ci', '--runs', runs, '--t2i', path.join(runs, 'none.tdrc')]), /none\.tdrc: no text-to-image checkpoint; train it with 'tdr train t2i --preset ci'/);
});

test('data-parallel factory: a worker replica of stage 2 gives the same loss as the main stage for the same batch', async () => {
  const t2i = tinyT2I();
  const cfg = tinyGuidanceConfig();
  const dir = tmpDir();
  const t2iFile = path.join(dir, 't2i.tdrc');
  t2i.save(t2iFile);
  const cacheFile = path.join(dir, FEATURE_CACHE_FILE);
  const cache = await featureCache(cfg, t2i, cacheFile, { quiet: true });
  const g = new GuidanceModel(cfg, t2i);
  for (const [n, v] of g.params.entries()) if (n.startsWith('mi2t.') && n.endsWith('out.w')) tf.tidy(() => v.assign(tf.mul(v, 1.5))); // "trained" stage-1 weights
  const i2tFile = path.join(dir, 'g.tdrc');
  g.save(i2tFile);
  const main = cleanStage(g, t2i, cfg, cache);
  const worker = await cleanStageForWorker({ config: cfg, t2iFile, cacheFile, i2tFile });
  const losses: number[] = [];
  for (const st of [main, worker]) {
    const batch = await st.getBatch(2, stepRng(0, 2, 'batch'));
    losses.push(tf.tidy(() => st.loss(batch, 2, stepRng(0, 2, 'loss')).total.dataSync()[0]));
    st.disposeBatch!(batch);
  }
  assert.equal(losses[0], losses[1]);
  g.dispose();
  worker.params.dispose();
  t2i.dispose();
});
