import test from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { initBackend } from '../../lib/backend';
import { train, readLog } from '../../lib/train/loop';
import { shards, defaultWorkers } from '../../lib/train/parallel';
import { buildMlpStage } from '../helpers/mlp_stage';
import { tmpDir } from '../helpers/fixtures';

const factoryModule = path.join(__dirname, '..', 'helpers', 'mlp_stage.js');
const cfg = { steps: 12, lr: 0.01, warmup: 2, logEvery: 1, checkpointEvery: 5, emaDecay: 0.9, seed: 3 };

test('before: backend', async () => {
  await initBackend({ quiet: true });
});

test('shards split a batch evenly and contiguously', () => {
  assert.deepEqual(shards(16, 2), [[0, 8], [8, 16]]);
  assert.deepEqual(shards(7, 3), [[0, 3], [3, 5], [5, 7]]);
  assert.deepEqual(shards(1, 2), [[0, 1]]);
});

test('defaultWorkers: TDR_WORKERS wins, wasm uses every core, other backends 1; bad values are named', () => {
  assert.equal(defaultWorkers('wasm', 2, {}), 2);
  assert.equal(defaultWorkers('tensorflow', 8, {}), 1);
  assert.equal(defaultWorkers('wasm', 2, { TDR_WORKERS: '1' }), 1);
  assert.throws(() => defaultWorkers('wasm', 2, { TDR_WORKERS: 'two' }), /TDR_WORKERS must be a positive integer, got 'two'/);
});

test('2 workers give the same loss curve and weights as 1 worker with the same global batch', async () => {
  const one = await buildMlpStage({ seed: 1, batch: 16 });
  const dirOne = tmpDir();
  await train(one, cfg, { runDir: dirOne, meta: {}, quiet: true });
  const two = await buildMlpStage({ seed: 1, batch: 16 });
  const dirTwo = tmpDir();
  await train(two, cfg, { runDir: dirTwo, meta: {}, quiet: true, parallel: { workers: 2, factory: { module: factoryModule, fn: 'buildMlpStage', args: { seed: 1, batch: 16 } } } });
  const a = readLog(dirOne);
  const b = readLog(dirTwo);
  assert.equal(b.length, a.length);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i].l_total - b[i].l_total) <= 1e-5 * Math.max(1, Math.abs(a[i].l_total)), `step ${a[i].step}: ${a[i].l_total} vs ${b[i].l_total}`);
    assert.ok(Math.abs(a[i].gradNorm - b[i].gradNorm) <= 1e-4 * Math.max(1, a[i].gradNorm), `grad norm at step ${a[i].step}`);
  }
  assert.ok(a[a.length - 1].l_total < a[0].l_total, 'it learns');
  for (const n of one.params.names()) {
    const x = one.params.get(n).dataSync();
    const y = two.params.get(n).dataSync();
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) < 1e-4, `${n}[${i}]: ${x[i]} vs ${y[i]}`);
  }
  one.params.dispose();
  two.params.dispose();
});

test('more workers than samples: a worker without a shard adds nothing (3 workers, batch 2 = 1 worker)', async () => {
  const one = await buildMlpStage({ seed: 1, batch: 2 });
  const dirOne = tmpDir();
  await train(one, { ...cfg, steps: 4 }, { runDir: dirOne, meta: {}, quiet: true });
  const three = await buildMlpStage({ seed: 1, batch: 2 });
  const dirThree = tmpDir();
  await train(three, { ...cfg, steps: 4 }, { runDir: dirThree, meta: {}, quiet: true, parallel: { workers: 3, factory: { module: factoryModule, fn: 'buildMlpStage', args: { seed: 1, batch: 2 } } } });
  const a = readLog(dirOne);
  const b = readLog(dirThree);
  assert.equal(b.length, a.length);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i].l_total - b[i].l_total) <= 1e-5 * Math.max(1, Math.abs(a[i].l_total)), `step ${a[i].step}: ${a[i].l_total} vs ${b[i].l_total}`);
    assert.ok(Math.abs(a[i].gradNorm - b[i].gradNorm) <= 1e-4 * Math.max(1, a[i].gradNorm), `grad norm at step ${a[i].step}: ${a[i].gradNorm} vs ${b[i].gradNorm}`);
  }
  one.params.dispose();
  three.params.dispose();
});

test('a parallel run resumes like a single one', async () => {
  const dir = tmpDir();
  const parallel = { workers: 2, factory: { module: factoryModule, fn: 'buildMlpStage', args: { seed: 1, batch: 16 } } };
  const s1 = await buildMlpStage({ seed: 1, batch: 16 });
  const r1 = await train(s1, cfg, { runDir: dir, meta: {}, quiet: true, parallel, maxStepsThisCall: 5 });
  assert.equal(r1.step, 5);
  s1.params.dispose();
  const s2 = await buildMlpStage({ seed: 9, batch: 16 });
  const r2 = await train(s2, cfg, { runDir: dir, meta: {}, quiet: true, parallel });
  assert.equal(r2.resumedFrom, 5);
  assert.equal(readLog(dir).length, cfg.steps);
  s2.params.dispose();
});
