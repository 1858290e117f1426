/**
 * Checkpoints saved on one backend load on another with equal outputs (within float tolerance):
 * the ci text-to-image model (autoencoder, text encoder, UNet; DDIM 4 steps with CFG) and the ci
 * guided PromptIR restorer, both directions. This process runs the backend under test (the
 * resolver's choice); a child process (test/helpers/cross_backend.ts) runs the other one: wasm
 * when this is tensorflow, else tensorflow where it loads, else the pure-JS cpu backend.
 */
import { before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { backendUnderTest, resolvedBackendSync } from '../helpers/backend';
import { CrossOutputs, runModels, saveModels } from '../helpers/cross_backend';
import { tmpDir } from '../helpers/fixtures';

const CHILD = path.join(__dirname, '..', 'helpers', 'cross_backend.js');
/** generated images in [0,1]: max |a − b| */
const T2I_TOL = 1e-4;
/** restorer output: max |a − b| / max |b| */
const RESTORER_TOL = 1e-5;

let under = '';
let other = '';

before(async () => {
  process.env.TDR_QUIET = '1';
  under = await backendUnderTest();
  other = under !== 'wasm' ? 'wasm' : resolvedBackendSync({ ...process.env, TDR_BACKEND: undefined }) === 'tensorflow' ? 'tensorflow' : 'cpu';
});

function child(mode: 'save' | 'load', dir: string): CrossOutputs {
  const r = spawnSync(process.execPath, [CHILD, mode, dir], { encoding: 'utf8', env: { ...process.env, TDR_BACKEND: other, TDR_QUIET: '1', TF_CPP_MIN_LOG_LEVEL: '3' }, maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `child on ${other}: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string) as CrossOutputs;
  assert.equal(out.backend, other);
  return out;
}

function maxAbs(a: number[], b: number[]): { d: number; s: number } {
  assert.equal(a.length, b.length);
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return { d, s };
}

function compare(saved: CrossOutputs, loaded: CrossOutputs, what: string): void {
  const t = maxAbs(loaded.t2i, saved.t2i);
  const r = maxAbs(loaded.restorer, saved.restorer);
  process.stdout.write(`# ${what}: t2i images max |Δ| ${t.d.toExponential(2)}; restorer max |Δ|/max ${(r.d / r.s).toExponential(2)}\n`);
  assert.ok(t.d <= T2I_TOL, `${what}: t2i images differ by up to ${t.d} (tolerance ${T2I_TOL})`);
  assert.ok(r.s > 0 && r.d <= RESTORER_TOL * r.s, `${what}: restorer outputs differ by up to ${r.d}, max |y| ${r.s} (tolerance ${RESTORER_TOL} relative)`);
}

test('saved on the backend under test, loaded on the other: equal outputs', async () => {
  const dir = tmpDir();
  saveModels(dir);
  const here = await runModels(dir);
  assert.equal(here.backend, under);
  compare(here, child('load', dir), `${under} → ${other}`);
});

test('saved on the other backend, loaded on the backend under test: equal outputs', async () => {
  const dir = tmpDir();
  const there = child('save', dir);
  compare(there, await runModels(dir), `${other} → ${under}`);
});

test('the comparison can fail: a model saved with other weights gives other outputs', async () => {
  const a = tmpDir();
  saveModels(a);
  const ref = await runModels(a);
  // the same models with one more perturbation of the restorer: its output must move beyond the tolerance
  const b = tmpDir();
  saveModels(b, { extraSeed: 99 });
  const moved = await runModels(b);
  const r = maxAbs(moved.restorer, ref.restorer);
  assert.ok(r.d > RESTORER_TOL * r.s, `perturbed restorer moved only ${r.d}`);
  const t = maxAbs(moved.t2i, ref.t2i);
  assert.ok(t.d > T2I_TOL, `perturbed t2i moved only ${t.d}`);
});
