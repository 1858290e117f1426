/**
 * The optional native kernels (lib/backend/native.ts, native/): loaded where they built (always in
 * CI: .ci/run installs libopenblas-dev), each served kernel against the cpu oracle (values and
 * gradients), no tensor leak, a fallback for what they do not serve, and the whole gradient suite
 * once more with TDR_NATIVE=0 so that the pure-wasm kernels stay tested too.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { loadNative, NATIVE_KERNELS } from '../../lib/backend/native';
import { setupWasmAndOracle, values, wasmVsCpu } from './helpers';

const TOL = 1e-4;
before(setupWasmAndOracle);

test('the native kernels load where they built (required in CI) and the backend says so', async () => {
  const n = loadNative();
  if (process.env.CI) assert.ok(n.addon, `CI must build tdr-native: ${n.reason}`);
  const info = await initBackend({ quiet: true });
  assert.equal(info.detail.includes('native kernels: OpenBLAS'), n.addon !== null, info.detail);
  if (!n.addon) return;
  for (const k of NATIVE_KERNELS) assert.ok(tf.getKernel(k, 'wasm'), k);
});

type Shape4 = [number, number, number, number];
const t4 = (s: Shape4, seed: number) => tf.tensor4d(values(s, seed), s);
const grads = (f: (...xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[]) => {
  const y = f(...xs);
  const g = tf.grads((...zs: tf.Tensor[]) => tf.sum(tf.mul(f(...zs), f(...zs).add(0.5))))(xs);
  return [y, ...g];
};

const CONV: Array<{ x: Shape4; f: Shape4; s: number; p: 'same' | 'valid' | tf.backend_util.ExplicitPadding; bias?: boolean; act?: 'relu' | 'linear' | 'elu' }> = [
  { x: [2, 9, 11, 3], f: [3, 3, 3, 5], s: 1, p: 'same' },
  { x: [2, 9, 11, 3], f: [3, 3, 3, 5], s: 2, p: 'same' },
  { x: [2, 9, 11, 3], f: [3, 3, 3, 5], s: 2, p: 'valid' },
  { x: [1, 10, 9, 4], f: [5, 3, 4, 2], s: 3, p: [[0, 0], [1, 2], [2, 1], [0, 0]] },
  { x: [2, 6, 7, 4], f: [1, 1, 4, 6], s: 1, p: 'same' },
  { x: [2, 8, 8, 3], f: [3, 3, 3, 4], s: 1, p: 'same', bias: true, act: 'relu' },
  { x: [2, 8, 8, 3], f: [3, 3, 3, 4], s: 2, p: 'same', bias: true, act: 'elu' }, // not served: falls back
];

for (const c of CONV) {
  test(`conv2d x[${c.x}] f[${c.f}] stride ${c.s} pad ${typeof c.p === 'string' ? c.p : 'explicit'}${c.bias ? ` bias ${c.act}` : ''}: values and gradients match cpu, no leak`, async () => {
    const before = tf.memory().numTensors;
    const { errors } = await wasmVsCpu(() => {
      const xs = [t4(c.x, 1), t4(c.f, 2), ...(c.bias ? [tf.tensor1d(values([c.f[3]], 3))] : [])];
      const f = (x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor) =>
        c.bias ? tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: c.s, pad: c.p, bias: b, activation: c.act }) : tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.s, c.p);
      return grads(f as (...xs: tf.Tensor[]) => tf.Tensor, xs);
    });
    errors.forEach((e, i) => assert.ok(e <= TOL, `output ${i}: relative error ${e.toExponential(2)}`));
    assert.equal(tf.memory().numTensors, before, 'tensor count unchanged');
  });
}

const DW: Array<{ x: Shape4; f: Shape4; s: number; p: 'same' | 'valid'; bias?: boolean }> = [
  { x: [2, 9, 8, 6], f: [3, 3, 6, 1], s: 1, p: 'same' },
  { x: [2, 9, 8, 3], f: [3, 3, 3, 2], s: 2, p: 'same' },
  { x: [1, 7, 10, 4], f: [5, 3, 4, 1], s: 2, p: 'valid' },
  { x: [2, 8, 8, 4], f: [3, 3, 4, 1], s: 1, p: 'same', bias: true },
];
for (const c of DW) {
  test(`depthwiseConv2d x[${c.x}] f[${c.f}] stride ${c.s} pad ${c.p}${c.bias ? ' bias relu' : ''}: values and gradients match cpu`, async () => {
    const { errors } = await wasmVsCpu(() => {
      const xs = [t4(c.x, 11), t4(c.f, 12), ...(c.bias ? [tf.tensor1d(values([c.f[2] * c.f[3]], 13))] : [])];
      const f = (x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor) =>
        c.bias ? tf.fused.depthwiseConv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: c.s, pad: c.p, bias: b, activation: 'relu' }) : tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.s, c.p);
      return grads(f as (...xs: tf.Tensor[]) => tf.Tensor, xs);
    });
    errors.forEach((e, i) => assert.ok(e <= TOL, `output ${i}: relative error ${e.toExponential(2)}`));
  });
}

const MM: Array<{ a: number[]; b: number[]; ta?: boolean; tb?: boolean; bias?: boolean }> = [
  { a: [5, 7], b: [7, 3] },
  { a: [2, 3, 7, 5], b: [2, 3, 4, 7], ta: true, tb: true },
  { a: [6, 5], b: [5, 4], bias: true },
];
for (const c of MM) {
  test(`matMul a[${c.a}]${c.ta ? 'ᵀ' : ''} b[${c.b}]${c.tb ? 'ᵀ' : ''}${c.bias ? ' + bias, relu' : ''}: values and gradients match cpu`, async () => {
    const { errors } = await wasmVsCpu(() => {
      const xs = [tf.tensor(values(c.a, 4), c.a), tf.tensor(values(c.b, 5), c.b), ...(c.bias ? [tf.tensor1d(values([c.b[c.b.length - 1]], 6))] : [])];
      const f = (a: tf.Tensor, b: tf.Tensor, bias?: tf.Tensor) =>
        c.bias ? tf.fused.matMul({ a, b, bias, activation: 'relu' }) : tf.matMul(a, b, c.ta, c.tb);
      return grads(f as (...xs: tf.Tensor[]) => tf.Tensor, xs);
    });
    errors.forEach((e, i) => assert.ok(e <= TOL, `output ${i}: relative error ${e.toExponential(2)}`));
  });
}

test('matMul a[4,6,5] b[1,5,3] (b broadcast over the batch): values match cpu (tfjs has no gradient for this broadcast on any backend)', async () => {
  const { errors } = await wasmVsCpu(() => [tf.matMul(tf.tensor3d(values([4, 6, 5], 7), [4, 6, 5]), tf.tensor3d(values([1, 5, 3], 8), [1, 5, 3]))]);
  assert.ok(errors[0] <= TOL, `relative error ${errors[0].toExponential(2)}`);
});

test('two worker threads calling the native kernels at once get the bits one thread gets (concurrent sgemm)', { skip: loadNative().addon ? false : 'native kernels not built' }, async () => {
  // A single-threaded OpenBLAS without USE_LOCKING hands two concurrent sgemm calls the same packing
  // buffer: without the addon's lock this fails there (TDR_NATIVE_GEMM_LOCK=0; docs/experiments.md §1)
  const { runConcurrentGemm } = await import('../helpers/native_gemm');
  const r = await runConcurrentGemm({ workers: 2, rounds: 100 });
  assert.equal(r.mismatches, 0, `${r.mismatches} of ${r.calls} outputs differ from one thread's; sgemm ${loadNative().addon!.gemmLock()}`);
});

test('sgemm calls run concurrently only with an OpenBLAS whose concurrent calls are safe', (t) => {
  const { addon } = loadNative();
  if (!addon) return t.skip('native kernels not built here');
  const cfg = addon.config();
  const lock = addon.gemmLock();
  const forced = process.env.TDR_NATIVE_GEMM_LOCK;
  if (forced === '0' || forced === '1') return assert.match(lock, forced === '1' ? /^serialised/ : /^concurrent/);
  if (cfg.includes('SINGLE_THREADED')) assert.match(lock, cfg.includes('USE_LOCKING') ? /^concurrent/ : /^serialised/, cfg);
  else if (cfg.includes('USE_OPENMP')) assert.match(lock, /^serialised/, cfg);
  else assert.match(lock, /^concurrent \(pthreads build/, cfg);
});

test('data-parallel training of a demo-sized text encoder + UNet on native kernels: 2 workers give the 1-worker loss and gradient norm', { skip: loadNative().addon ? false : 'native kernels not built' }, async () => {
  // guards the parallel path on native kernels (with a single-threaded OpenBLAS and the sgemm lock
  // forced off it can pass: the race needs more and smaller concurrent GEMMs than these 2 steps; the
  // test above catches it)
  const { train, readLog } = await import('../../lib/train/loop');
  const { buildUnetStage } = await import('../helpers/unet_stage');
  const { tmpDir } = await import('../helpers/fixtures');
  const cfg = { steps: 2, lr: 1e-4, warmup: 1, logEvery: 1, checkpointEvery: 100, emaDecay: 0.9, seed: 3 };
  const logs: Array<ReturnType<typeof readLog>> = [];
  for (const workers of [1, 2]) {
    const st = await buildUnetStage({ seed: 1, batch: 8 });
    const dir = tmpDir();
    const factory = { module: path.join(__dirname, '..', 'helpers', 'unet_stage.js'), fn: 'buildUnetStage', args: { seed: 1, batch: 8 } };
    await train(st, cfg, { runDir: dir, meta: {}, quiet: true, parallel: workers > 1 ? { workers, factory } : undefined });
    logs.push(readLog(dir));
    st.params.dispose();
  }
  logs[0].forEach((r, i) => {
    assert.ok(Math.abs(r.l_total - logs[1][i].l_total) <= 1e-4 * Math.abs(r.l_total), `loss at step ${r.step}: ${r.l_total} vs ${logs[1][i].l_total}`);
    assert.ok(Math.abs(r.gradNorm - logs[1][i].gradNorm) <= 1e-3 * r.gradNorm, `grad norm at step ${r.step}: ${r.gradNorm} vs ${logs[1][i].gradNorm}`);
  });
});

test('the gradient suite passes with TDR_NATIVE=0 too (the pure-wasm kernels)', { skip: loadNative().addon ? false : 'native kernels not built: the suite above already ran on wasm' }, () => {
  const file = path.join(__dirname, 'gradients.test.js');
  const env: NodeJS.ProcessEnv = { ...process.env, TDR_NATIVE: '0', TDR_BACKEND: 'wasm' };
  delete env.NODE_TEST_CONTEXT; // a plain run with its own TAP output, not a subtest stream
  const r = spawnSync(process.execPath, ['--test', file], { encoding: 'utf8', env, timeout: 15 * 60_000 });
  assert.equal(r.status, 0, r.stdout.split('\n').filter((l) => l.startsWith('not ok') || l.includes('error')).slice(0, 20).join('\n'));
  assert.match(r.stdout, /# fail 0/);
});

test('the addon refuses bad calls with an error naming the function and the fault (no out-of-bounds write)', (t) => {
  const { addon } = loadNative();
  if (!addon) return t.skip('native kernels not built here');
  const f32 = (n: number) => new Float32Array(n);
  // x [1,4,4,2], filter [3,3,2,3], stride 1, pad 1 → out [1,4,4,3]
  const call = (fn: string, bufs: [Float32Array, Float32Array, Float32Array]) => () =>
    (addon as unknown as Record<string, (...a: unknown[]) => void>)[fn](bufs[0], 1, 4, 4, 2, bufs[1], 3, 3, 3, 1, 1, 1, 1, 4, 4, bufs[2]);
  // the right sizes work
  call('conv2dForward', [f32(32), f32(54), f32(48)])();
  call('depthwiseForward', [f32(32), f32(54), f32(96)])(); // depthwise out channels 2·3
  assert.throws(call('conv2dForward', [f32(32), f32(54), f32(47)]), /tdr-native conv2dForward: a buffer is too small/);
  assert.throws(call('conv2dBackpropFilter', [f32(32), f32(48), f32(53)]), /tdr-native conv2dBackpropFilter: a buffer is too small/);
  assert.throws(call('conv2dBackpropInput', [f32(47), f32(54), f32(32)]), /tdr-native conv2dBackpropInput: a buffer is too small/);
  assert.throws(call('depthwiseForward', [f32(32), f32(54), f32(48)]), /tdr-native depthwiseForward: a buffer is too small/);
  assert.throws(call('depthwiseBackpropInput', [f32(96), f32(54), f32(31)]), /tdr-native depthwiseBackpropInput: a buffer is too small/);
  assert.throws(call('depthwiseBackpropFilter', [f32(32), new Float64Array(96) as unknown as Float32Array, f32(54)]), /depthwiseBackpropFilter: Float32Array buffers expected/);
  assert.throws(() => (addon as unknown as Record<string, (...a: unknown[]) => void>).conv2dForward(f32(1)), /conv2dForward: 16 arguments expected/);
});
