/**
 * Restorer training with the shared loop (ci preset, 2 training photos): one training step leaks no
 * tensors, exact resume (3 steps at once = 2 + 1 after a restart), save/load of a trained model and
 * the refusal of a checkpoint of another backbone or shape. The matcher freeze through the loop is
 * tested in guided.test.ts (GuidedRestorer.lrScale, which restoreStage passes on unchanged).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { restorePreset, RestoreConfig, restoreRunName } from '../../lib/restore/config';
import { shippedCheckpoint } from '../../lib/util/paths';
import { restoreCheckpoint } from '../../lib/jobs/method';
import { guidanceModelRef } from '../../lib/jobs/sources';
import { buildRestorer, restoreStage, trainRestorer, saveRestorer, loadRestorer, l1Loss, GUIDANCE_CACHE_FILE, guidanceModelMismatch } from '../../lib/restore/train';
import { RestoreBatch, makeRestoreData, taskSpecs, buildGuidanceCache, tryLoadGuidanceCache } from '../../lib/restore/data';
import { cleanOracleGuidance, noGuidance, GuidanceSource } from '../../lib/restore/source';
import { readCheckpointMeta } from '../../lib/util/checkpoint';
import { loadPhotos } from '../../lib/data/patches';
import { stepRng } from '../../lib/train/loop';
import { Params } from '../../lib/models/params';
import { tmpDir } from '../helpers/fixtures';
import { UserError } from '../../lib/util/errors';

const dir = tmpDir('tdr-restore-train-');
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

function ci(guidance: boolean, backbone: 'promptir' | 'nafnet' | 'restormer' = 'nafnet'): RestoreConfig {
  return restorePreset('ci', { backbone, guidance, tasks: 'all-in-one' });
}

test('setup backend', async () => {
  await initBackend({ quiet: true });
});

test('presets ci/demo/paper parse for every backbone; paper keeps the official options', () => {
  for (const preset of ['ci', 'demo', 'paper'])
    for (const b of ['promptir', 'nafnet', 'restormer'] as const) restorePreset(preset, { backbone: b, guidance: true, tasks: 'all-in-one' });
  const p = restorePreset('paper', { backbone: 'promptir', guidance: true, tasks: 'all-in-one' });
  assert.equal(p.patchSize, 384);
  assert.equal(p.refLr, 1e-4);
  assert.equal(p.train.lr, 2e-4);
  assert.equal(p.paramFixIterations, 20000);
  assert.throws(() => restorePreset('huge', { backbone: 'nafnet', guidance: true, tasks: 'noise' }), /unknown preset 'huge'; presets: ci, demo, paper/);
  assert.throws(() => restorePreset('ci', { backbone: 'unet' as never, guidance: true, tasks: 'noise' }), /unknown backbone 'unet'/);
});

test('l1Loss is Eq. (5): mean |ŷ − y|', () => {
  const a = tf.tensor4d([0, 1, 2, 3, 4, 5], [1, 1, 2, 3]);
  const b = tf.tensor4d([1, 1, 1, 1, 1, 1], [1, 1, 2, 3]);
  const l = l1Loss(a, b);
  assert.ok(Math.abs(l.dataSync()[0] - (1 + 0 + 1 + 2 + 3 + 4) / 6) < 1e-6);
  tf.dispose([a, b, l]);
});

for (const backbone of ['nafnet', 'promptir'] as const) {
  test(`${backbone} guided ci: one training step (batch → loss → grads) leaks no tensors; lrScale freezes masa at step 0`, async () => {
    const cfg = ci(true, backbone);
    const photos = await loadPhotos('train', cfg.photoShortSide, 2);
    const specs = taskSpecs(cfg.tasks);
    const cache = await buildGuidanceCache(photos, specs, cleanOracleGuidance(), cfg.patchSize, undefined, { quiet: true });
    const { params, net } = buildRestorer(cfg);
    const stage = restoreStage(cfg, params, net, makeRestoreData(photos, specs, cfg.patchSize, cache));
    const vars = params.trainable().map(([, v]) => v);
    const step = () => {
      const b = stage.getBatch(0, stepRng(0, 0, 'batch')) as RestoreBatch;
      assert.deepEqual(b.g!.shape, [cfg.train.batch, cfg.patchSize, cfg.patchSize, 3]);
      const { value, grads } = tf.variableGrads(() => stage.loss(b, 0, stepRng(0, 0, 'loss')).total, vars);
      tf.dispose([value, ...Object.values(grads)]);
      stage.disposeBatch!(b);
    };
    step(); // warm-up (kernels, caches)
    const before = tf.memory().numTensors;
    step();
    assert.equal(tf.memory().numTensors, before, 'a training step leaks no tensors');
    assert.equal(stage.lrScale!('restorer.masa.enc.conv0.w', 0), 0, 'matcher frozen during paramFixIterations');
    assert.equal(stage.lrScale!('restorer.masa.enc.conv0.w', cfg.paramFixIterations), cfg.refLr / cfg.train.lr);
    assert.equal(stage.lrScale!('restorer.net.intro.w', 0), 1);
    // matcherEncoderLr: the shared encoder alone at its own LR (0 = random init for good); fusion keeps refLr
    const frozenEnc = restoreStage({ ...cfg, matcherEncoderLr: 0 }, params, net, makeRestoreData(photos, specs, cfg.patchSize, cache));
    const fuse = params.names().find((n) => n.startsWith('restorer.masa.fuse'))!;
    assert.ok(fuse, 'the guided model has fusion parameters');
    assert.equal(frozenEnc.lrScale!('restorer.masa.enc.conv0.w', cfg.paramFixIterations + 5), 0);
    assert.equal(frozenEnc.lrScale!(fuse, cfg.paramFixIterations + 5), cfg.refLr / cfg.train.lr);
    assert.equal(frozenEnc.lrScale!(fuse, 0), 0, 'the freeze still applies to the fusion');
    const slowEnc = restoreStage({ ...cfg, matcherEncoderLr: cfg.train.lr / 4 }, params, net, makeRestoreData(photos, specs, cfg.patchSize, cache));
    assert.equal(slowEnc.lrScale!('restorer.masa.enc.conv0.w', cfg.paramFixIterations), 0.25);
    assert.equal(restoreRunName({ ...cfg, matcherEncoderLr: 0 }), `restore-${backbone}-all-in-one-guided-ci-enclr0`);
    // a source other than the paper's text guidance gets its own run (never resumes another source's run)
    assert.equal(restoreRunName(cfg, 'text'), `restore-${backbone}-all-in-one-guided-ci`);
    assert.equal(restoreRunName(cfg, 'clean-oracle'), `restore-${backbone}-all-in-one-guided-ci-clean-oracle`);
    assert.equal(restoreRunName({ ...cfg, model: { ...cfg.model, guidance: false } }, 'none'), `restore-${backbone}-all-in-one-plain-ci`);
    // the notebooks' checkpoint lookup names the file that `tdr train restore … --preset demo [--guidance S] --out data/checkpoints/<run>.tdrc` writes
    const demo = restorePreset('demo', { backbone, guidance: true, tasks: 'all-in-one' });
    const saved = { ...process.env };
    delete process.env.TDR_RESTORE_GUIDED_CHECKPOINT;
    delete process.env.TDR_RESTORE_PLAIN_CHECKPOINT;
    try {
      // the text-guided and unguided pair is that of data/configs/restore-demo-wide.json; the clean-oracle stand-in the demo preset's
      const wide = { ...demo, preset: 'demo-wide' };
      assert.equal(restoreCheckpoint(backbone, true, 'text'), shippedCheckpoint(restoreRunName(wide, 'text')));
      assert.equal(restoreCheckpoint(backbone, true, 'clean-oracle'), shippedCheckpoint(restoreRunName(demo, 'clean-oracle')));
      assert.equal(restoreCheckpoint(backbone, false), shippedCheckpoint(restoreRunName({ ...wide, model: { ...wide.model, guidance: false } }, 'none')));
      process.env.TDR_RESTORE_GUIDED_CHECKPOINT = '/x/mine.tdrc';
      assert.equal(restoreCheckpoint(backbone, true), '/x/mine.tdrc');
      assert.equal(restoreCheckpoint(backbone, true, 'clean-oracle'), shippedCheckpoint(restoreRunName(demo, 'clean-oracle')), 'the variable overrides the text-guided restorer only');
      assert.throws(() => restoreCheckpoint(backbone, false, 'clean-oracle'), /unguided restorer has no guidance source/);
    } finally {
      process.env = saved;
    }
    params.dispose();
  });
}

test('exact resume: 3 steps in one call = 2 steps, restart, 1 step (guided, clean-oracle stand-in); model save/load', async () => {
  const cfg = ci(true);
  const oracle = cleanOracleGuidance();
  const a = await trainRestorer(cfg, path.join(dir, 'a'), { guidance: oracle, quiet: true, photoLimit: 2 });
  assert.equal(a.result.step, 3);
  assert.ok(fs.existsSync(path.join(dir, 'a', GUIDANCE_CACHE_FILE)));
  const b1 = await trainRestorer(cfg, path.join(dir, 'b'), { guidance: oracle, quiet: true, photoLimit: 2, maxStepsThisCall: 2 });
  assert.equal(b1.result.interrupted, true);
  b1.params.dispose();
  // resuming with another guidance source is refused before the guidance cache is touched
  const cacheBefore = fs.readFileSync(path.join(dir, 'b', GUIDANCE_CACHE_FILE));
  const grey = { name: 'grey', async get(d: { height: number; width: number }) { return { height: d.height, width: d.width, data: new Float32Array(d.height * d.width * 3).fill(0.5) }; } };
  await assert.rejects(
    trainRestorer(cfg, path.join(dir, 'b'), { guidance: grey, quiet: true, photoLimit: 2 }),
    (e: Error) => e.name === 'CheckpointError' && /checkpoint\.tdrc: this run was trained with guidance 'clean-oracle', not 'grey'/.test(e.message),
  );
  assert.ok(fs.readFileSync(path.join(dir, 'b', GUIDANCE_CACHE_FILE)).equals(cacheBefore), 'the guidance cache is left as it was');
  const b = await trainRestorer(cfg, path.join(dir, 'b'), { guidance: oracle, quiet: true, photoLimit: 2 });
  assert.equal(b.result.resumedFrom, 2);
  const sa = a.params.snapshot();
  for (const [n, v] of b.params.snapshot()) assert.deepEqual(v.data, sa.get(n)!.data, `parameter ${n} after resume`);
  // the trained model round-trips (float32 here, to compare exactly)
  const file = path.join(dir, 'model.tdrc');
  saveRestorer(file, a.params, cfg, { guidance: a.guidance }, { float16: false });
  const l = loadRestorer(file, { backbone: 'nafnet', guidance: true });
  for (const [n, v] of l.params.snapshot()) assert.deepEqual(v.data, sa.get(n)!.data, n);
  assert.equal(l.meta.guidance, 'clean-oracle');
  // a training run's checkpoint loads too
  loadRestorer(path.join(dir, 'a', 'checkpoint.tdrc')).params.dispose();
  l.params.dispose();
  a.params.dispose();
  b.params.dispose();
});

test('a guided run records its guidance model; a run of another model is not resumed, and a guidance cache of another model is rebuilt', async () => {
  const cfg = ci(true);
  const [shaA, shaB] = ['a'.repeat(64), 'b'.repeat(64)];
  // the same source name, two trained models (e.g. the text guidance before and after retraining the T2I)
  const flat = (sha: string, v: number): GuidanceSource => ({
    name: 'flat',
    model: { file: 'data/checkpoints/g.tdrc', sha256: sha },
    async get(d) {
      return { height: d.height, width: d.width, data: new Float32Array(d.height * d.width * 3).fill(v) };
    },
  });
  const runA = path.join(dir, 'model-a');
  const a = await trainRestorer(cfg, runA, { guidance: flat(shaA, 0.25), quiet: true, photoLimit: 2, maxStepsThisCall: 1 });
  a.params.dispose();
  assert.deepEqual(a.guidanceModel, { file: 'data/checkpoints/g.tdrc', sha256: shaA });
  assert.deepEqual(readCheckpointMeta(path.join(runA, 'checkpoint.tdrc')).guidanceModel, a.guidanceModel);
  await assert.rejects(
    trainRestorer(cfg, runA, { guidance: flat(shaB, 0.75), quiet: true, photoLimit: 2 }),
    (e: Error) => e.name === 'CheckpointError' && /checkpoint\.tdrc: this run was trained with the guidance of data\/checkpoints\/g\.tdrc \(sha256 aaaaaaaaaaaa…\), not of data\/checkpoints\/g\.tdrc \(bbbbbbbbbbbb…\)/.test(e.message),
  );
  const cacheA = path.join(runA, GUIDANCE_CACHE_FILE);
  assert.ok(tryLoadGuidanceCache(cacheA, 'flat', cfg.patchSize, shaA));
  assert.equal(tryLoadGuidanceCache(cacheA, 'flat', cfg.patchSize, shaB), null);
  assert.equal(tryLoadGuidanceCache(cacheA, 'flat', cfg.patchSize, null), null);
  // a new run that finds model A's cache in its folder rebuilds it with model B
  const runB = path.join(dir, 'model-b');
  fs.mkdirSync(runB, { recursive: true });
  fs.copyFileSync(cacheA, path.join(runB, GUIDANCE_CACHE_FILE));
  const b = await trainRestorer(cfg, runB, { guidance: flat(shaB, 0.75), quiet: true, photoLimit: 2, maxStepsThisCall: 1 });
  b.params.dispose();
  const cacheB = tryLoadGuidanceCache(path.join(runB, GUIDANCE_CACHE_FILE), 'flat', cfg.patchSize, shaB);
  assert.ok(cacheB && cacheB.size > 0);
  for (const g of cacheB.values()) assert.ok(g.data.every((x) => x === 0.75));
  // using the restorer with the other model's G is allowed but said
  const metaA = readCheckpointMeta(path.join(runA, 'checkpoint.tdrc'));
  assert.match(guidanceModelMismatch('r.tdrc', metaA, flat(shaB, 0)) ?? '', /^note: r\.tdrc was trained with the guidance of data\/checkpoints\/g\.tdrc \(sha256 aaaaaaaaaaaa…\) but gets G from data\/checkpoints\/g\.tdrc \(bbbbbbbbbbbb…\)/);
  assert.equal(guidanceModelMismatch('r.tdrc', metaA, flat(shaA, 0)), null);
  assert.equal(guidanceModelMismatch('r.tdrc', metaA, undefined), null, 'G given as an image: nothing to compare');
  // another source than the training one (e.g. a clean-oracle restorer fed the text guidance) is said
  assert.match(guidanceModelMismatch('r.tdrc', metaA, cleanOracleGuidance()) ?? '', /^note: r\.tdrc was trained with the guidance source 'flat' but gets G from 'clean-oracle'/);
  assert.match(
    guidanceModelMismatch('r.tdrc', { guidance: 'clean-oracle', guidanceModel: null }, { name: 'text', model: { file: 'data/checkpoints/guidance-demo.tdrc', sha256: shaB } }) ?? '',
    /^note: r\.tdrc was trained with the guidance source 'clean-oracle' but gets G from 'text' \(data\/checkpoints\/guidance-demo\.tdrc\)/,
  );
  // a restorer saved before models were recorded: which model it was trained with is unknown, and said
  assert.match(guidanceModelMismatch('r.tdrc', { guidance: 'flat' }, flat(shaB, 0)) ?? '', /^note: r\.tdrc does not record which guidance model it was trained with; it gets G from data\/checkpoints\/g\.tdrc/);
  assert.match(guidanceModelMismatch('r.tdrc', {}, { model: { file: 'g.tdrc', sha256: shaB } }) ?? '', /does not record which guidance model/);
});

test('the shipped guided restorers get the note with shipped text guidance other than their own (another model, no record, or another source)', () => {
  let compared = 0;
  // every shipped guidance model against every shipped guided restorer (by listing, so that a renamed model is not skipped)
  const dir = path.dirname(shippedCheckpoint('guidance-demo'));
  const shipped = (re: RegExp) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => re.test(f)).map((f) => f.replace(/\.tdrc$/, '')) : []);
  for (const g of shipped(/^guidance-.*\.tdrc$/)) {
    const model = guidanceModelRef(shippedCheckpoint(g));
    for (const name of shipped(/^restore-.*-guided-.*\.tdrc$/)) {
      const file = shippedCheckpoint(name);
      const meta = readCheckpointMeta(file);
      const note = guidanceModelMismatch(file, meta, { name: 'text', model });
      const recorded = meta.guidanceModel as { sha256?: string } | null | undefined;
      if (meta.guidance === 'text' && recorded?.sha256 === model.sha256) assert.equal(note, null);
      else assert.match(note ?? '', /^note: /, `${name} with ${g}: ${JSON.stringify({ guidance: meta.guidance, guidanceModel: meta.guidanceModel })}`);
      compared++;
    }
  }
  assert.ok(compared > 0 || !fs.existsSync(shippedCheckpoint('guidance-demo')), 'no shipped guided restorer was compared');
});

test('loadRestorer refuses another backbone, another guidance setting, and another shape (naming file and parameter)', async () => {
  const cfg = ci(false);
  const { params } = buildRestorer(cfg);
  const file = path.join(dir, 'plain.tdrc');
  saveRestorer(file, params, cfg);
  params.dispose();
  assert.throws(() => loadRestorer(file, { backbone: 'promptir' }), (e: Error) => e.message.includes(file) && /a nafnet checkpoint, but backbone promptir was asked for/.test(e.message));
  assert.throws(() => loadRestorer(file, { guidance: true }), /an unguided checkpoint, but a guided model was asked for/);
  // same config label, but a weight of another shape
  const p2 = new Params();
  const wide = { ...cfg, model: { ...cfg.model, backbone: { ...cfg.model.backbone, width: 6 } as typeof cfg.model.backbone } };
  buildRestorer(wide, p2);
  const bad = path.join(dir, 'bad.tdrc');
  saveRestorer(bad, p2, cfg);
  p2.dispose();
  assert.throws(() => loadRestorer(bad), (e: Error) => e.message.startsWith(bad) && /parameter 'restorer\.net\.[\w.]+' has shape \[/.test(e.message) && e instanceof UserError);
  await assert.rejects(trainRestorer(ci(true), path.join(dir, 'x'), { guidance: noGuidance }), /needs a guidance source/);
  await assert.rejects(trainRestorer(ci(false), path.join(dir, 'y'), { guidance: cleanOracleGuidance() }), /unguided .* but a guidance source 'clean-oracle' was given/);
});

test('multi-scale crops, task weights and a held-out validation set: patches come from every scale, a task weighted 0 never appears, validation PSNR is logged and the best checkpoint is shipped', async () => {
  const { parseRestoreConfig } = await import('../../lib/restore/config');
  const { restorePhotos, restoreData } = await import('../../lib/restore/train');
  const { sampleRestore } = await import('../../lib/restore/data');
  const { readValLog, BEST_FILE } = await import('../../lib/train/loop');
  const { Rng } = await import('../../lib/util/rng');
  const base = ci(false);
  const cfg = parseRestoreConfig({ ...base, cropScales: [base.photoShortSide, 48], taskWeights: { noise15: 0, noise25: 0, haze: 3 }, validation: { holdout: 2, every: 2, size: 32 }, train: { ...base.train, steps: 4, checkpointEvery: 2 } }, 'scales.json');
  const ph = await restorePhotos(cfg, 6);
  assert.deepEqual([ph.photos.length, ph.holdout.length, ph.moreScales.length], [4, 2, 1]);
  assert.ok(!ph.photos.some((p) => ph.holdout.some((h) => h.entry.id === p.entry.id)), 'held-out photos are not trained on');
  const data = restoreData(cfg, ph);
  assert.deepEqual([data.moreScales?.length, data.taskWeights, data.guidanceLowpass, data.guidanceColorJitter], [1, [0, 0, 1, 1, 3], undefined, undefined]); // noise15, noise25, noise50, rain, haze: an unnamed task weighs 1
  assert.deepEqual(taskSpecs(cfg.tasks).map((t) => t.name), ['noise15', 'noise25', 'noise50', 'rain', 'haze']);
  // the config's G augmentations reach the sampler (guided configs only draw them; here: handed over as given)
  const cj = { hue: 10, saturation: 0.2, gain: 0.1, gamma: 0.2 };
  const aug = restoreData(parseRestoreConfig({ ...base, guidanceLowpass: [1, 2], guidanceColorJitter: cj }, 'aug.json'), ph);
  assert.deepEqual([aug.guidanceLowpass, aug.guidanceColorJitter], [[1, 2], cj]);
  assert.throws(() => parseRestoreConfig({ ...base, guidanceColorJitter: { ...cj, hue: 200 } }, 'cj.json'), /cj\.json: guidanceColorJitter\.hue/);
  const rng = new Rng(5);
  const tasks = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const s = sampleRestore(data, rng);
    tasks.set(s.task, (tasks.get(s.task) ?? 0) + 1);
  }
  assert.ok(!tasks.has('noise15') && !tasks.has('noise25'), 'weight 0: never drawn');
  assert.ok((tasks.get('haze') ?? 0) > 2 * (tasks.get('rain') ?? 0), `haze ×3: ${JSON.stringify([...tasks])}`);
  assert.throws(() => parseRestoreConfig({ ...base, taskWeights: { fog: 1 } }, 'w.json'), /w\.json: taskWeights\.fog: 'fog' is not a task of 'all-in-one'/);
  assert.throws(() => parseRestoreConfig({ ...base, patchSize: 24, cropScales: [20] }, 's.json'), /s\.json: cropScales\.0: cropScales\[0\] = 20 must be ≥ patchSize 24/);
  assert.throws(() => parseRestoreConfig({ ...base, guidanceLowpass: [1, 3] }, 'g.json'), /g\.json: guidanceLowpass\.1: guidanceLowpass\[1\] = 3 must divide patchSize 16/);
  const run = path.join(dir, 'val-run');
  const r = await trainRestorer(cfg, run, { quiet: true, photoLimit: 6 });
  const val = readValLog(run);
  assert.deepEqual(val.map((v) => v.step), [2, 4]);
  assert.ok(val.every((v) => Number.isFinite(v.v_psnr) && Number.isFinite(v.v_haze) && Number.isFinite(v.v_rain)));
  const best = readCheckpointMeta(path.join(run, BEST_FILE));
  const bestStep = val.reduce((a, v) => (v.v_psnr > a.v_psnr ? v : a)).step;
  assert.equal(best.step, bestStep, 'best.tdrc holds the best validation step');
  r.params.dispose();
  // --stop-at: a fresh run stops at step 2 (validated there) and gives its best; the 4-step run gives the same
  // model when its best is not later than 2, else refuses; a step it never validated at is refused
  const snap = await trainRestorer(cfg, path.join(dir, 'val-stop'), { quiet: true, photoLimit: 6, stopAt: 2 });
  assert.deepEqual([snap.result.step, snap.bestStep, readValLog(path.join(dir, 'val-stop')).map((v) => v.step)], [2, 2, [2]]);
  const weights = (p: Params) => [...p.entries()].map(([n, v]) => [n, Array.from(v.dataSync())] as const);
  if (bestStep <= 2) {
    const past = await trainRestorer(cfg, run, { quiet: true, photoLimit: 6, stopAt: 2 });
    assert.deepEqual([past.result.step, past.bestStep], [2, 2]);
    assert.deepEqual(weights(past.params), weights(snap.params), 'the run past step 2 gives the model of a run stopped at 2');
    past.params.dispose();
  } else await assert.rejects(trainRestorer(cfg, run, { quiet: true, photoLimit: 6, stopAt: 2 }), /past --stop-at 2, and its best validation checkpoint is from step 4/);
  snap.params.dispose();
  await assert.rejects(trainRestorer(cfg, run, { quiet: true, photoLimit: 6, stopAt: 3 }), /past --stop-at 3.*\(no validation at step 3\)/);
  await assert.rejects(trainRestorer(cfg, run, { quiet: true, photoLimit: 6, stopAt: 5 }), /stop at step 5: expected a step of the schedule, 1 to 4/);
});

test('the ci preset is a plumbing run of seconds: guidance for 2 photos × the tasks, 4 DDIM steps each (not 190 pairs at full steps)', async () => {
  const cfg = ci(true);
  const requests: Array<number | undefined> = [];
  const counting: GuidanceSource = {
    name: 'counting',
    async get(d, _key, req) {
      requests.push(req?.steps);
      return { height: d.height, width: d.width, data: new Float32Array(d.height * d.width * 3).fill(0.5) };
    },
  };
  // no photoLimit option: the preset's own limit applies, as with `tdr train restore --preset ci`
  const r = await trainRestorer(cfg, path.join(dir, 'ci-count'), { guidance: counting, quiet: true });
  r.params.dispose();
  assert.equal(requests.length, 2 * taskSpecs(cfg.tasks).length, `${requests.length} guidance generations`);
  assert.ok(requests.every((s) => s === 4), `steps requested: ${[...new Set(requests)]}`);
  assert.equal(r.result.step, cfg.train.steps);
});

test('--init-from: a warm-started run begins at the trained model\'s step with its weights, records the file, resumes only with it, and refuses a model of another configuration', async () => {
  const { restorerInit } = await import('../../lib/restore/train');
  const base = ci(false);
  const cfg: RestoreConfig = { ...base, train: { ...base.train, steps: 6 } };
  const a = await trainRestorer(cfg, path.join(dir, 'init-a'), { quiet: true, photoLimit: 2, maxStepsThisCall: 2 });
  const file = path.join(dir, 'init-a.tdrc');
  saveRestorer(file, a.params, cfg, { steps: 2, scheduleSteps: 6, guidance: 'none', guidanceModel: null, rebuild: 'tdr train restore … --stop-at 2' });
  a.params.dispose();
  const run = path.join(dir, 'init-b');
  const b = await trainRestorer(cfg, run, { quiet: true, photoLimit: 2, maxStepsThisCall: 1, initFrom: file });
  assert.deepEqual([b.result.resumedFrom, b.result.step, b.initFrom?.step, b.initFrom?.rebuild], [2, 3, 2, 'tdr train restore … --stop-at 2']);
  assert.match(b.initFrom!.sha256, /^[0-9a-f]{64}$/);
  b.params.dispose();
  await assert.rejects(trainRestorer(cfg, run, { quiet: true, photoLimit: 2 }), /checkpoint\.tdrc: this run was warm-started from .*init-a\.tdrc \(sha256 [0-9a-f]{12}…\), and --init-from is not given/);
  const c = await trainRestorer(cfg, run, { quiet: true, photoLimit: 2, initFrom: file });
  assert.deepEqual([c.result.resumedFrom, c.result.step], [3, 6]);
  c.params.dispose();
  const other: RestoreConfig = { ...cfg, patchSize: cfg.patchSize * 2 };
  assert.throws(() => restorerInit(file, other, null), /--init-from .*init-a\.tdrc: trained with another configuration \(differs in patchSize\)/);
  assert.throws(() => restorerInit(path.join(dir, 'none.tdrc'), cfg, null), /--init-from .*none\.tdrc: no such file/);
  assert.throws(() => restorerInit(file, cfg, { file: 'g.tdrc', sha256: 'ab'.repeat(32) }), /trained with the guidance of no guidance model, not of g\.tdrc/);
});
