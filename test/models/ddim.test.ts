/**
 * DDIM scheduler: schedule values, timestep grids, one step computed by hand (η = 0 and η = 1),
 * a full η = 0 loop with the true noise as oracle, errors. Run on the backend under test and on cpu.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { backendUnderTest } from '../helpers/backend';
import { DDIMScheduler, betaSchedule, alphasCumprod } from '../../lib/models/ddim';
import { Rng } from '../../lib/util/rng';

const BACKENDS = ['under test', 'cpu'];
const use = async (backend: string): Promise<boolean> => tf.setBackend(backend === 'under test' ? await backendUnderTest() : backend);

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `${what}[${i}]: got ${got[i]}, want ${want[i]} (tol ${tol})`);
  }
}

test('setup backend', async () => {
  await initBackend({ quiet: true });
});

test('scaled_linear schedule (SD): β and ᾱ pinned', () => {
  const s = new DDIMScheduler();
  assert.equal(s.betas.length, 1000);
  assert.ok(Math.abs(s.betas[0] - 0.00085) < 1e-12);
  assert.ok(Math.abs(s.betas[999] - 0.012) < 1e-12);
  // β_1 = (√0.00085 + (√0.012 − √0.00085)/999)²
  const b1 = (Math.sqrt(0.00085) + (Math.sqrt(0.012) - Math.sqrt(0.00085)) / 999) ** 2;
  assert.ok(Math.abs(s.betas[1] - b1) < 1e-15);
  assert.ok(Math.abs(s.alphasCumprod[0] - 0.99915) < 1e-12);
  assert.ok(Math.abs(s.alphasCumprod[1] - 0.99915 * (1 - b1)) < 1e-12);
  // values of diffusers' SD scheduler (float64 here; float32 there agrees to ~1e-7)
  close([s.alphasCumprod[401], s.alphasCumprod[501], s.alphasCumprod[999]], [0.4228815243, 0.2749990669, 0.0046600985], 1e-9, 'ᾱ');
});

test('linear and cosine schedules', () => {
  const lin = betaSchedule('linear', 1000, 1e-4, 0.02);
  assert.ok(Math.abs(lin[0] - 1e-4) < 1e-15 && Math.abs(lin[999] - 0.02) < 1e-15);
  assert.ok(Math.abs(lin[500] - (1e-4 + (0.02 - 1e-4) * (500 / 999))) < 1e-15);
  const cos = betaSchedule('cosine', 1000, 0, 0);
  const ab = (u: number) => Math.cos(((u + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  assert.ok(Math.abs(cos[0] - (1 - ab(1 / 1000) / ab(0))) < 1e-15);
  assert.equal(cos[999], 0.999, 'cosine β is capped at 0.999');
  const ac = alphasCumprod(cos);
  for (let i = 1; i < 1000; i++) assert.ok(ac[i] < ac[i - 1], 'ᾱ decreasing');
});

test('getVariance matches diffusers test_scheduler_ddim (linear 1e-4 → 0.02)', () => {
  const s = new DDIMScheduler({ betaSchedule: 'linear', betaStart: 0.0001, betaEnd: 0.02 });
  assert.equal(s.getVariance(0, 0), 0);
  assert.ok(Math.abs(s.getVariance(420, 400) - 0.14771) < 1e-5);
  assert.ok(Math.abs(s.getVariance(980, 960) - 0.3246) < 1e-5);
  assert.ok(Math.abs(s.getVariance(487, 486) - 0.00979) < 1e-5);
  assert.ok(Math.abs(s.getVariance(999, 998) - 0.02) < 1e-5);
});

test("timesteps: 'leading' with stepsOffset 1 (SD), n = 10 and 50; 'trailing' n = 10", () => {
  const s = new DDIMScheduler();
  s.setTimesteps(10);
  assert.deepEqual(s.timesteps, [901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
  s.setTimesteps(50);
  assert.equal(s.timesteps.length, 50);
  assert.deepEqual(s.timesteps.slice(0, 3), [981, 961, 941]);
  assert.deepEqual(s.timesteps.slice(-3), [41, 21, 1]);
  assert.deepEqual(s.timesteps, Array.from({ length: 50 }, (_, k) => (49 - k) * 20 + 1));
  const tr = new DDIMScheduler({ timestepSpacing: 'trailing' });
  tr.setTimesteps(10);
  assert.deepEqual(tr.timesteps, [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]);
});

for (const backend of BACKENDS) {
  test(`${backend}: step by hand, x=[1,3] t=501 → 401 (n=10), eta=0 and eta=1`, async () => {
    await use(backend);
    const s = new DDIMScheduler();
    s.setTimesteps(10);
    const x = [0.5, -1.0, 2.0];
    const eps = [0.1, 0.2, -0.3];
    const z = [0.7, -0.4, 0.05];
    const aT = s.alphasCumprod[501];
    const aP = s.alphasCumprod[401];
    // predicted x0 = (x − √(1−ᾱ_t)·ε) / √ᾱ_t
    const x0 = x.map((xi, i) => (xi - Math.sqrt(1 - aT) * eps[i]) / Math.sqrt(aT));
    // η = 0: x_prev = √ᾱ_prev·x0 + √(1−ᾱ_prev)·ε
    const prev0 = x0.map((v, i) => Math.sqrt(aP) * v + Math.sqrt(1 - aP) * eps[i]);
    // η = 1: σ² = (1−ᾱ_prev)/(1−ᾱ_t)·(1−ᾱ_t/ᾱ_prev); x_prev = √ᾱ_prev·x0 + √(1−ᾱ_prev−σ²)·ε + σ·z
    const var1 = ((1 - aP) / (1 - aT)) * (1 - aT / aP);
    const prev1 = x0.map((v, i) => Math.sqrt(aP) * v + Math.sqrt(1 - aP - var1) * eps[i] + Math.sqrt(var1) * z[i]);
    // the same numbers as literals, so that a change of the schedule fails here too
    close(x0, [0.7910949988, -2.2316668302, 4.3009644522], 1e-8, 'x0 literal');
    close([var1], [0.2783712374], 1e-8, 'σ² literal');

    const before = tf.memory().numTensors;
    const [xt, et, zt] = [tf.tensor2d([x]), tf.tensor2d([eps]), tf.tensor2d([z])];
    const r0 = s.step(et, 501, xt);
    const r1 = s.step(et, 501, xt, { eta: 1, noise: zt });
    close(r0.predX0.dataSync(), x0, 1e-5, 'predX0');
    close(r0.prevSample.dataSync(), prev0, 1e-5, 'prevSample η=0');
    close(r1.prevSample.dataSync(), prev1, 1e-5, 'prevSample η=1');
    close(r1.predX0.dataSync(), x0, 1e-5, 'predX0 η=1');
    tf.dispose([xt, et, zt, r0.prevSample, r0.predX0, r1.prevSample, r1.predX0]);
    assert.equal(tf.memory().numTensors, before, 'step leaks no tensors');
  });

  test(`${backend}: last step t=1 uses ᾱ_0 (setAlphaToOne false) or 1 (true)`, async () => {
    await use(backend);
    for (const setAlphaToOne of [false, true]) {
      const s = new DDIMScheduler({ setAlphaToOne });
      s.setTimesteps(10);
      assert.equal(s.prevTimestep(1), -99);
      const aT = s.alphasCumprod[1];
      const aP = setAlphaToOne ? 1 : s.alphasCumprod[0];
      const x0 = (0.3 - Math.sqrt(1 - aT) * 0.2) / Math.sqrt(aT);
      const want = Math.sqrt(aP) * x0 + Math.sqrt(1 - aP) * 0.2;
      const r = s.step(tf.tensor1d([0.2]), 1, tf.tensor1d([0.3]));
      close(r.prevSample.dataSync(), [want], 1e-6, `prevSample setAlphaToOne=${setAlphaToOne}`);
      tf.dispose([r.prevSample, r.predX0]);
    }
  });

  test(`${backend}: addNoise x0=[2,2,2,1] per-sample t=[10,900] is √ᾱ·x0 + √(1−ᾱ)·ε`, async () => {
    await use(backend);
    const s = new DDIMScheduler();
    const x0 = Array.from({ length: 8 }, (_, i) => i / 4 - 1);
    const eps = Array.from({ length: 8 }, (_, i) => Math.sin(i));
    const want = x0.map((v, i) => {
      const a = s.alphasCumprod[i < 4 ? 10 : 900];
      return Math.sqrt(a) * v + Math.sqrt(1 - a) * eps[i];
    });
    const xt = s.addNoise(tf.tensor4d(x0, [2, 2, 2, 1]), tf.tensor4d(eps, [2, 2, 2, 1]), [10, 900]);
    assert.deepEqual(xt.shape, [2, 2, 2, 1]);
    close(xt.dataSync(), want, 1e-6, 'x_t');
    tf.dispose(xt);
  });

  test(`${backend}: full eta=0 loop, 50 steps, oracle eps of a known x0=[1,4,4,2] recovers x0`, async () => {
    await use(backend);
    const rng = new Rng(7);
    const shape = [1, 4, 4, 2];
    const x0v = Array.from({ length: 32 }, () => rng.uniform(-1, 1));
    const epsv = Array.from({ length: 32 }, () => rng.normal());
    for (const setAlphaToOne of [false, true]) {
      const s = new DDIMScheduler({ setAlphaToOne });
      s.setTimesteps(50);
      const x0 = tf.tensor(x0v, shape);
      const eps = tf.tensor(epsv, shape);
      let x = s.addNoise(x0, eps, s.timesteps[0]);
      let predX0: tf.Tensor | undefined;
      for (const t of s.timesteps) {
        const r = s.step(eps, t, x);
        tf.dispose([x, predX0]);
        x = r.prevSample;
        predX0 = r.predX0;
      }
      close(predX0!.dataSync(), x0v, 1e-4, 'final predX0');
      // last step lands on ᾱ_final: √ᾱ·x0 + √(1−ᾱ)·ε (= x0 exactly when setAlphaToOne)
      const a = s.finalAlphaCumprod;
      close(x.dataSync(), x0v.map((v, i) => Math.sqrt(a) * v + Math.sqrt(1 - a) * epsv[i]), 1e-4, 'final sample');
      if (setAlphaToOne) close(x.dataSync(), x0v, 1e-4, 'final sample = x0');
      tf.dispose([x0, eps, x, predX0!]);
    }
  });
}

test('throws when step is called before setTimesteps', () => {
  const s = new DDIMScheduler();
  const x = tf.zeros([1, 2]);
  assert.throws(() => s.step(x, 10, x), /call setTimesteps\(numSteps\) first/);
  x.dispose();
});

test('throws when setTimesteps(n) asks for more than numTrainSteps, naming both', () => {
  const s = new DDIMScheduler();
  assert.throws(() => s.setTimesteps(1001), /numSteps \(1001\).*numTrainSteps \(1000\)/);
  assert.throws(() => s.setTimesteps(0), /positive integer, got 0/);
});

test('throws when eps and x shapes differ, when eta > 0 has no noise, when t is out of range', () => {
  const s = new DDIMScheduler();
  s.setTimesteps(10);
  const a = tf.zeros([1, 2]);
  const b = tf.zeros([1, 3]);
  assert.throws(() => s.step(a, 501, b), /eps \[1,2\] and x \[1,3\] must have equal shapes/);
  assert.throws(() => s.step(a, 501, a, { eta: 1 }), /needs opts.noise/);
  assert.throws(() => s.step(a, 1000, a), /integer in \[0, 1000\), got 1000/);
  assert.throws(() => s.addNoise(a, b, 3), /x0 \[1,2\] and eps \[1,3\]/);
  assert.throws(() => s.addNoise(a, a, [1, 2]), /t has 2 timesteps, x0 \[1,2\] has batch 1/);
  tf.dispose([a, b]);
});

test('throws when the config has an unknown key', () => {
  assert.throws(() => new DDIMScheduler({ betaSchedul: 'linear' } as never), /betaSchedul/);
});
