/**
 * The backend resolver (lib/backend/index.ts). Backend choice is per process, so the env cases
 * run `initBackend` in a child node process.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { requestedBackend } from '../../lib/backend';

const LIB = path.join(__dirname, '../../lib/backend/index.js');

function child(env: Record<string, string | undefined>): { status: number | null; stdout: string; stderr: string } {
  const code = `require(${JSON.stringify(LIB)}).initBackend()
    .then(async (i) => { const j = await require(${JSON.stringify(LIB)}).initBackend(); console.log(JSON.stringify({ i, same: i === j })); })
    .catch((e) => { console.error('ERR ' + e.message); process.exit(3); });`;
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, TDR_QUIET: undefined, ...env }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('throws when TDR_BACKEND=bogus: names the variable and allowed values', () => {
  assert.throws(() => requestedBackend({ TDR_BACKEND: 'bogus' }), /TDR_BACKEND must be one of tensorflow, wasm, cpu; got 'bogus'/);
  const r = child({ TDR_BACKEND: 'bogus' });
  assert.equal(r.status, 3);
  assert.match(r.stderr, /ERR TDR_BACKEND must be one of tensorflow, wasm, cpu; got 'bogus'/);
});

test('TDR_BACKEND unset or empty: no request', () => {
  assert.equal(requestedBackend({}), undefined);
  assert.equal(requestedBackend({ TDR_BACKEND: '' }), undefined);
});

test('TDR_BACKEND=cpu picks cpu, reports once on stderr, repeated calls give the same info', () => {
  const r = child({ TDR_BACKEND: 'cpu' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.equal(out.i.name, 'cpu');
  assert.equal(out.same, true);
  assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('tdr: backend')).length, 1);
  assert.match(r.stderr, /^tdr: backend cpu \(pure JS, slow\)$/m);
});

test('TDR_BACKEND=wasm with TDR_QUIET=1: wasm, SIMD flag and thread count, nothing on stderr', () => {
  const r = child({ TDR_BACKEND: 'wasm', TDR_QUIET: '1' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.equal(out.i.name, 'wasm');
  assert.equal(typeof out.i.simd, 'boolean');
  assert.ok(out.i.threads >= 1);
  assert.doesNotMatch(r.stderr, /tdr: backend/);
});

test('default order: tfjs-node(-gpu) when installed, else wasm', () => {
  const r = child({ TDR_BACKEND: undefined });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  let nodeInstalled = true;
  try {
    require.resolve('@tensorflow/tfjs-node');
  } catch {
    nodeInstalled = false;
  }
  assert.equal(out.i.name, nodeInstalled ? 'tensorflow' : 'wasm');
  assert.match(r.stderr, new RegExp(`^tdr: backend ${out.i.name} `, 'm'));
});

test('TDR_BACKEND=tensorflow without tfjs-node installed: a clear error', (t) => {
  try {
    require.resolve('@tensorflow/tfjs-node');
    t.skip('tfjs-node is installed here');
    return;
  } catch {
    // expected on this machine
  }
  const r = child({ TDR_BACKEND: 'tensorflow' });
  assert.equal(r.status, 3);
  assert.match(r.stderr, /ERR TDR_BACKEND=tensorflow, but that backend cannot start: @tensorflow\/tfjs-node-gpu: /);
});
