import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { Params, init } from '../../lib/models/params';
import { train, Stage, readLog, CHECKPOINT_FILE, loadWeights, emaDecayAt } from '../../lib/train/loop';
import { lrAt } from '../../lib/train/schedule';
import { TrainConfigSchema } from '../../lib/train/config';
import { saveCheckpoint, loadCheckpoint, readCheckpointMeta, toFloat16, fromFloat16 } from '../../lib/util/checkpoint';
import { Rng } from '../../lib/util/rng';
import { tmpDir } from '../helpers/fixtures';

/** y = x·W_true + b_true + noise; a two-layer MLP fits it. Batches depend only on the step's rng. */
function makeStage(seed = 1): Stage<{ x: tf.Tensor2D; y: tf.Tensor2D }> & { params: Params } {
  const params = new Params();
  const rng = new Rng(seed);
  params.add('l1.w', [4, 8], init.heUniform(rng, 4));
  params.add('l1.b', [8], init.zeros());
  params.add('l2.w', [8, 2], init.heUniform(rng, 8));
  params.add('l2.b', [2], init.zeros());
  params.add('frozen.w', [2], init.ones());
  params.freeze(['frozen']);
  return {
    params,
    getBatch(_step, r) {
      const xs = new Float32Array(16 * 4).map(() => r.normal());
      const ys = new Float32Array(16 * 2);
      for (let i = 0; i < 16; i++) {
        ys[i * 2] = xs[i * 4] - 2 * xs[i * 4 + 1] + 0.5;
        ys[i * 2 + 1] = xs[i * 4 + 2] * xs[i * 4 + 3];
      }
      return { x: tf.tensor2d(xs, [16, 4]), y: tf.tensor2d(ys, [16, 2]) };
    },
    loss(b, _step, r) {
      const drop = r.random() < 0.5 ? 1 : 0.9; // in-loss randomness must come from the step rng
      const h = tf.relu(tf.add(tf.matMul(b.x, params.get('l1.w')), params.get('l1.b')));
      const yHat = tf.mul(tf.add(tf.matMul(tf.mul(h, drop), params.get('l2.w')), params.get('l2.b')), params.get('frozen.w'));
      const l1 = tf.mean(tf.abs(tf.sub(yHat, b.y))) as tf.Scalar;
      return { total: l1, parts: { l_l1: l1 } };
    },
    disposeBatch(b) {
      tf.dispose([b.x, b.y]);
    },
  };
}

const cfg = { steps: 8, lr: 0.01, warmup: 2, checkpointEvery: 3, logEvery: 1, emaDecay: 0.9, seed: 7 };

test('before: backend', async () => {
  await initBackend({ quiet: true });
});

test('lrAt: warm-up is linear, cosine ends at lr·minLrRatio, constant stays', () => {
  const s = { lr: 1, warmup: 4, steps: 14, schedule: 'cosine' as const, minLrRatio: 0.1 };
  assert.deepEqual([0, 1, 2, 3].map((t) => lrAt(t, s)), [0.25, 0.5, 0.75, 1]);
  assert.equal(lrAt(4, s), 1);
  assert.ok(Math.abs(lrAt(9, s) - 0.55) < 1e-12); // half way: 0.1 + 0.5·(1+cos(π/2))·0.9
  assert.ok(Math.abs(lrAt(14, s) - 0.1) < 1e-12);
  assert.equal(lrAt(100, { ...s, schedule: 'constant' }), 1);
});

test('train: the loss goes down and the frozen parameter does not move', async () => {
  const stage = makeStage();
  const dir = tmpDir();
  const r = await train(stage, { ...cfg, steps: 60, lr: 0.02 }, { runDir: dir, meta: { model: 'mlp' }, quiet: true });
  assert.equal(r.step, 60);
  const log = readLog(dir);
  const first = log.slice(0, 5).reduce((a, b) => a + b.l_total, 0) / 5;
  const last = log.slice(-5).reduce((a, b) => a + b.l_total, 0) / 5;
  assert.ok(last < 0.7 * first, `loss fell from ${first} to ${last}`);
  assert.deepEqual(Array.from(stage.params.get('frozen.w').dataSync()), [1, 1]);
  assert.ok('l_l1' in log[0]);
  stage.params.dispose();
});

test('exact resume: 3 steps + resume to 8 equals 8 uninterrupted steps (log and weights)', async () => {
  const a = makeStage();
  const dirA = tmpDir();
  await train(a, cfg, { runDir: dirA, meta: {}, quiet: true });
  const b = makeStage();
  const dirB = tmpDir();
  const r1 = await train(b, cfg, { runDir: dirB, meta: {}, quiet: true, maxStepsThisCall: 3 });
  assert.equal(r1.step, 3);
  assert.equal(r1.interrupted, true);
  b.params.dispose();
  const b2 = makeStage(999); // different init: the checkpoint must overwrite it
  const r2 = await train(b2, cfg, { runDir: dirB, meta: {}, quiet: true });
  assert.equal(r2.resumedFrom, 3);
  assert.deepEqual(readLog(dirB).map((r) => r.l_total), readLog(dirA).map((r) => r.l_total));
  for (const n of a.params.names()) assert.deepEqual(Array.from(b2.params.get(n).dataSync()), Array.from(a.params.get(n).dataSync()), n);
  a.params.dispose();
  b2.params.dispose();
});

test('stopAt: a snapshot of the longer schedule — stops there done, with the same steps as the full run; a run past it is refused', async () => {
  const full = makeStage();
  const dirFull = tmpDir();
  await train(full, cfg, { runDir: dirFull, meta: {}, quiet: true });
  const snap = makeStage();
  const dir = tmpDir();
  const r = await train(snap, cfg, { runDir: dir, meta: {}, quiet: true, stopAt: 5 });
  assert.equal(r.step, 5);
  assert.equal(r.interrupted, false);
  // the learning rate followed the 8-step schedule, so the first 5 logged steps equal the full run's
  assert.deepEqual(readLog(dir).map((x) => [x.lr, x.l_total]), readLog(dirFull).slice(0, 5).map((x) => [x.lr, x.l_total]));
  // again with the same stopAt: nothing to do, still done
  const again = await train(snap, cfg, { runDir: dir, meta: {}, quiet: true, stopAt: 5 });
  assert.equal(again.step, 5);
  assert.equal(again.interrupted, false);
  await assert.rejects(train(snap, cfg, { runDir: dir, meta: {}, quiet: true, stopAt: 4 }), /checkpoint\.tdrc: this run is at step 5, past the step to stop at \(4\); train into another --runs folder/);
  full.params.dispose();
  snap.params.dispose();
});

test('warm start (init): a new run begins at the given step with the given weights, its LR ramps up from there, and a resume keeps the ramp', async () => {
  const a = makeStage();
  await train(a, cfg, { runDir: tmpDir(), meta: {}, quiet: true, maxStepsThisCall: 4 });
  const weights = new Map([...a.params.entries()].map(([n, v]) => [n, { shape: [...v.shape], data: v.dataSync() as Float32Array }]));
  // an LR ramp of 1e9 steps: the first step moves nothing measurable, so the run holds a's weights
  const still = makeStage(999);
  const rs = await train(still, cfg, { runDir: tmpDir(), meta: {}, quiet: true, maxStepsThisCall: 1, init: { params: weights, step: 4, source: 'a', rampSteps: 1e9 } });
  assert.deepEqual([rs.resumedFrom, rs.step], [4, 5]);
  for (const n of a.params.names()) {
    const d = Math.max(...Array.from(still.params.get(n).dataSync()).map((x, i) => Math.abs(x - weights.get(n)!.data[i])));
    assert.ok(d < 1e-6, `${n}: moved ${d} from the init weights`);
  }
  still.params.dispose();
  // ramp over 4 steps: LR ×1/4 at the init step, ×2/4 at the next — also after a resume that passes no init
  const b = makeStage(999);
  const dir = tmpDir();
  await train(b, cfg, { runDir: dir, meta: {}, quiet: true, maxStepsThisCall: 1, init: { params: weights, step: 4, source: 'a', rampSteps: 4 } });
  const r = await train(makeStage(3), cfg, { runDir: dir, meta: {}, quiet: true, maxStepsThisCall: 1 });
  assert.deepEqual([r.resumedFrom, r.step], [5, 6]);
  const log = readLog(dir);
  assert.deepEqual(log.map((x) => x.step), [4, 5]);
  const sched = TrainConfigSchema.parse(cfg);
  assert.deepEqual(log.map((x) => +x.lr.toPrecision(9)), [+(lrAt(4, sched) / 4).toPrecision(9), +(lrAt(5, sched) / 2).toPrecision(9)]);
  assert.equal(readCheckpointMeta(path.join(dir, CHECKPOINT_FILE)).warmStart !== undefined, true);
  await assert.rejects(train(makeStage(), cfg, { runDir: tmpDir(), meta: {}, quiet: true, init: { params: weights, step: 8, source: 'a.tdrc' } }), /a\.tdrc: a warm start at step 8 is outside the schedule \(0 to 7\)/);
  a.params.dispose();
  b.params.dispose();
});

test('resume refuses a run started with another configuration, naming the field; more steps is fine', async () => {
  const dir = tmpDir();
  const config = { text: { contextLength: 32, width: 16 }, unetTrain: { steps: 8, lr: 0.01, logEvery: 1 }, sample: { steps: 50 } };
  const s1 = makeStage();
  await train(s1, cfg, { runDir: dir, meta: { config }, quiet: true, maxStepsThisCall: 3 });
  s1.params.dispose();
  const s2 = makeStage();
  const changed = { ...config, text: { ...config.text, contextLength: 48 } };
  await assert.rejects(train(s2, cfg, { runDir: dir, meta: { config: changed }, quiet: true }), (e: Error) => {
    assert.match(e.message, /checkpoint\.tdrc: this run was started with another configuration \(text\.contextLength: 32 → 48\); resume it with its own configuration, or train into another --runs folder/);
    return true;
  });
  // bookkeeping may change: more steps, other log interval, other sampling settings
  const extended = { ...config, unetTrain: { ...config.unetTrain, steps: 20, logEvery: 5 }, sample: { steps: 10 } };
  const r = await train(s2, { ...cfg, steps: 10 }, { runDir: dir, meta: { config: extended }, quiet: true });
  assert.equal(r.resumedFrom, 3);
  assert.equal(r.step, 10);
  s2.params.dispose();
  // an explicit resumeKey narrows the check (the autoencoder stage ignores the text settings)
  const dir2 = tmpDir();
  const s3 = makeStage();
  await train(s3, cfg, { runDir: dir2, meta: { config }, resumeKey: { ae: 1 }, quiet: true, maxStepsThisCall: 2 });
  const r3 = await train(s3, cfg, { runDir: dir2, meta: { config: changed }, resumeKey: { ae: 1 }, quiet: true });
  assert.equal(r3.resumedFrom, 2);
  s3.params.dispose();
});

test('a training step leaks no tensors', async () => {
  const stage = makeStage();
  const dir = tmpDir();
  await train(stage, { ...cfg, steps: 2 }, { runDir: dir, meta: {}, quiet: true });
  const before = tf.memory().numTensors;
  await train(stage, { ...cfg, steps: 6 }, { runDir: dir, meta: {}, quiet: true });
  assert.equal(tf.memory().numTensors, before);
  stage.params.dispose();
});

test('checkpoint round-trip float32 exact, float16 within half precision; EMA weights loadable', async () => {
  const stage = makeStage();
  const dir = tmpDir();
  await train(stage, { ...cfg, steps: 4 }, { runDir: dir, meta: { note: 'x' }, quiet: true });
  const { meta, tensors } = loadCheckpoint(path.join(dir, CHECKPOINT_FILE));
  assert.equal(meta.step, 4);
  assert.equal(meta.note, 'x');
  assert.deepEqual(readCheckpointMeta(path.join(dir, CHECKPOINT_FILE)), meta, 'the header-only reader gives the same meta');
  assert.deepEqual(Array.from(tensors.get('param.l1.w')!.data), Array.from(stage.params.get('l1.w').dataSync()));
  assert.ok(tensors.has('adam.m.l1.w') && tensors.has('ema.l1.w'));
  const f16 = path.join(dir, 'half.tdrc');
  saveCheckpoint(f16, {}, new Map([['w', { shape: [3], data: new Float32Array([1 / 3, -65504, 1e-6]) }]]), { float16: true });
  const back = loadCheckpoint(f16).tensors.get('w')!.data;
  assert.ok(Math.abs(back[0] - 1 / 3) < 1e-3 && back[1] === -65504 && Math.abs(back[2] - 1e-6) < 1e-7);
  const fresh = makeStage(5);
  loadWeights(path.join(dir, CHECKPOINT_FILE), fresh.params, { useEma: true });
  assert.deepEqual(Array.from(fresh.params.get('l1.w').dataSync()), Array.from(tensors.get('ema.l1.w')!.data));
  stage.params.dispose();
  fresh.params.dispose();
});

test('float16 conversion: exact for representable values, round-to-nearest-even, inf/NaN', () => {
  const src = new Float32Array([0, -0, 1, -2, 0.5, 65504, 70000, 2 ** -24, 1 + 2 ** -11, 1 + 3 * 2 ** -11, NaN, Infinity]);
  const back = fromFloat16(toFloat16(src));
  assert.deepEqual(Array.from(back.slice(0, 6)), [0, -0, 1, -2, 0.5, 65504]);
  assert.equal(back[6], Infinity);
  assert.equal(back[7], 2 ** -24);
  assert.equal(back[8], 1); // tie → even
  assert.equal(back[9], 1 + 4 * 2 ** -11); // tie → even (up)
  assert.ok(Number.isNaN(back[10]));
  assert.equal(back[11], Infinity);
  // every half: → float32 → half is the identity (NaNs stay NaN), and the values ascend with the bits
  const all = new Uint16Array(65536).map((_, i) => i);
  const f = fromFloat16(all);
  const again = toFloat16(f);
  for (let h = 0; h < 65536; h++) {
    if (Number.isNaN(f[h])) assert.ok((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0, `half ${h} gave NaN`);
    else assert.equal(again[h], h, `half ${h.toString(16)} → ${f[h]} → ${again[h].toString(16)}`);
  }
  for (let h = 1; h < 0x7c00; h++) assert.ok(f[h] > f[h - 1], `half ${h} ascends`);
});

test('errors name the file and the parameter: wrong shape, not a checkpoint, truncated', async () => {
  const dir = tmpDir();
  const bad = path.join(dir, 'bad.tdrc');
  saveCheckpoint(bad, {}, new Map([['l1.w', { shape: [4, 9], data: new Float32Array(36) }]]));
  const stage = makeStage();
  assert.throws(() => loadWeights(bad, stage.params), (e: Error) => e.message.includes(bad) && e.message.includes("'l1.w'") && e.message.includes('[4,9]') && e.message.includes('[4,8]'));
  const txt = path.join(dir, 'x.tdrc');
  fs.writeFileSync(txt, 'hello');
  assert.throws(() => loadCheckpoint(txt), /x\.tdrc: not a tdr checkpoint/);
  assert.throws(() => readCheckpointMeta(txt), /x\.tdrc: not a tdr checkpoint/);
  const full = fs.readFileSync(bad);
  fs.writeFileSync(bad, full.subarray(0, full.length - 10));
  assert.throws(() => loadCheckpoint(bad), /bad\.tdrc: truncated checkpoint/);
  assert.throws(() => loadCheckpoint(path.join(dir, 'none.tdrc')), /none\.tdrc: no such checkpoint file/);
  assert.throws(() => readCheckpointMeta(path.join(dir, 'none.tdrc')), /none\.tdrc: no such checkpoint file/);
  const head = fs.readFileSync(bad).subarray(0, 20); // magic + length + the start of the header
  fs.writeFileSync(bad, head);
  assert.throws(() => readCheckpointMeta(bad), /bad\.tdrc: truncated checkpoint \(header/);
  stage.params.dispose();
});

test('EMA warm-up: decay (1+t)/(10+t) capped at emaDecay; off keeps the constant', () => {
  assert.equal(emaDecayAt(0, { emaDecay: 0.999, emaWarmup: true }), 0.1);
  assert.equal(emaDecayAt(90, { emaDecay: 0.999, emaWarmup: true }), 0.91);
  assert.equal(emaDecayAt(100000, { emaDecay: 0.999, emaWarmup: true }), 0.999);
  assert.equal(emaDecayAt(0, { emaDecay: 0.999, emaWarmup: false }), 0.999);
});

test('validate: every K steps with the EMA weights (swapped back after), val.jsonl written, best.tdrc keeps the best value; a resumed run keeps earlier lines', async () => {
  const { readValLog, VAL_LOG_FILE, BEST_FILE } = await import('../../lib/train/loop');
  const dir = tmpDir();
  const stage = makeStage(3);
  const seen: Array<{ step: number; w: number; raw: number }> = [];
  // the "metric" rises then falls (the best is step 4); step 5 is the last step of the first call
  const metric: Record<number, number> = { 2: 2, 4: 4, 5: 3, 6: 1, 8: 0 };
  const validate = {
    every: 2,
    best: { key: 'score', mode: 'max' as const },
    async run(step: number) {
      seen.push({ step, w: stage.params.get('l1.w').dataSync()[0], raw: NaN });
      return { score: metric[step] };
    },
  };
  const r = await train(stage, { ...cfg, steps: 5 }, { runDir: dir, meta: { config: { m: 1 } }, quiet: true, validate });
  assert.equal(r.step, 5);
  assert.deepEqual(seen.map((s) => s.step), [2, 4, 5], 'every 2 steps and at the last one');
  // the parameters were swapped back: after training they are the raw weights, not the EMA ones
  const ck = loadCheckpoint(path.join(dir, CHECKPOINT_FILE));
  const ema = ck.tensors.get('ema.l1.w')!.data[0];
  const raw = ck.tensors.get('param.l1.w')!.data[0];
  assert.notEqual(ema, raw);
  assert.equal(stage.params.get('l1.w').dataSync()[0], raw);
  // resume to 8: validation at 6 and 8 (the last step); earlier lines kept
  const r2 = await train(stage, { ...cfg, steps: 8 }, { runDir: dir, meta: { config: { m: 1 } }, quiet: true, validate });
  assert.equal(r2.step, 8);
  assert.deepEqual(readValLog(dir).map((x) => [x.step, x.score]), [[2, 2], [4, 4], [5, 3], [6, 1], [8, 0]]);
  const best = loadCheckpoint(path.join(dir, BEST_FILE));
  assert.equal(best.meta.step, 4);
  assert.deepEqual(best.meta.best, { key: 'score', value: 4 });
  assert.ok(best.tensors.has('param.l1.w') && !best.tensors.has('ema.l1.w'));
  assert.ok(fs.existsSync(path.join(dir, VAL_LOG_FILE)));
});
