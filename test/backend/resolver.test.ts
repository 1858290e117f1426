/**
 * The backend resolver (lib/backend/index.ts). Backend choice is per process, so the env cases
 * run `initBackend` in a child node process.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as os from 'node:os';
import * as fs from 'node:fs';
import { requestedBackend, tensorflowThreads, machineKey, readChoice, writeChoice, pickCandidate, pickGenerationCandidate, BackendChoice } from '../../lib/backend';
import { loadNative } from '../../lib/backend/native';

const LIB = path.join(__dirname, '../../lib/backend/index.js');

function child(env: Record<string, string | undefined>, opts: object = {}): { status: number | null; stdout: string; stderr: string } {
  const code = `require(${JSON.stringify(LIB)}).initBackend(${JSON.stringify(opts)})
    .then(async (i) => { const j = await require(${JSON.stringify(LIB)}).initBackend(); console.log(JSON.stringify({ i, same: i === j, intra: process.env.TF_NUM_INTRAOP_THREADS })); })
    .catch((e) => { console.error('ERR ' + e.message); process.exit(3); });`;
  // no machine record unless a test writes one (a developer's own `tdr bench --choose-backend` must not steer these)
  const noRecord = path.join(os.tmpdir(), `tdr-no-backend-choice-${process.pid}.json`);
  const r = spawnSync(process.execPath, ['-e', code], { env: { ...process.env, TDR_QUIET: undefined, TDR_THREADS: undefined, TF_NUM_INTRAOP_THREADS: undefined, TDR_BACKEND_CHOICE: noRecord, ...env }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Does tfjs-node load here (its addon built by scripts/build_tensorflow.js)? */
const TENSORFLOW_BUILT = spawnSync(process.execPath, ['-e', "require('@tensorflow/tfjs-node')"], { cwd: path.join(__dirname, '..', '..', '..'), encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } }).status === 0;

test('throws when TDR_BACKEND=bogus: names the variable and allowed values', () => {
  assert.throws(() => requestedBackend({ TDR_BACKEND: 'bogus' }), (e: Error) => e.name === 'UserError' && /TDR_BACKEND must be one of tensorflow, wasm, cpu; got 'bogus'/.test(e.message));
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

test('default order: tensorflow where tfjs-node loads, else wasm', () => {
  const r = child({ TDR_BACKEND: undefined });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.equal(out.i.name, TENSORFLOW_BUILT ? 'tensorflow' : 'wasm');
  assert.match(r.stderr, new RegExp(`^tdr: backend ${out.i.name} `, 'm'));
});

test('TDR_BACKEND=tensorflow where tfjs-node does not load: a clear error naming the fix', { skip: TENSORFLOW_BUILT && 'tfjs-node loads here' }, () => {
  const r = child({ TDR_BACKEND: 'tensorflow' });
  assert.equal(r.status, 3);
  assert.match(r.stderr, /ERR TDR_BACKEND=tensorflow, but that backend cannot start: @tensorflow\/tfjs-node-gpu: .*; @tensorflow\/tfjs-node: .*npm run build:tensorflow/);
});

test('TDR_BACKEND=tensorflow TDR_THREADS=1: one intra-op thread, set before tfjs-node loaded, one backend line', { skip: !TENSORFLOW_BUILT && 'tfjs-node does not load here (npm run build:tensorflow)' }, () => {
  const r = child({ TDR_BACKEND: 'tensorflow', TDR_THREADS: '1' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.equal(out.i.name, 'tensorflow');
  assert.equal(out.i.threads, 1);
  assert.equal(out.intra, '1');
  assert.equal(out.same, true);
  assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('tdr: backend')).length, 1);
  assert.match(r.stderr, /^tdr: backend tensorflow \(@tensorflow\/tfjs-node 4\.22\.0, TensorFlow \d+\.\d+\.\d+ C library, CPU, 1 intra-op thread(, huge pages)?\)$/m);
});

test('tensorflowThreads: the option, else TDR_THREADS, else TF_NUM_INTRAOP_THREADS, else one per core; bad values are user errors', () => {
  assert.equal(tensorflowThreads(3, { TDR_THREADS: '2', TF_NUM_INTRAOP_THREADS: '1' }), 3);
  assert.equal(tensorflowThreads(undefined, { TDR_THREADS: '2', TF_NUM_INTRAOP_THREADS: '1' }), 2);
  assert.equal(tensorflowThreads(undefined, { TDR_THREADS: '', TF_NUM_INTRAOP_THREADS: '1' }), 1);
  assert.equal(tensorflowThreads(undefined, {}), os.cpus().length);
  for (const [v, name] of [['0', 'TDR_THREADS'], ['1.5', 'TDR_THREADS'], ['two', 'TDR_THREADS']]) {
    assert.throws(() => tensorflowThreads(undefined, { [name]: v }), (e: Error) => e.name === 'UserError' && e.message === `${name} must be a positive integer, got '${v}'`);
  }
  assert.throws(() => tensorflowThreads(undefined, { TF_NUM_INTRAOP_THREADS: '-1' }), /TF_NUM_INTRAOP_THREADS must be a positive integer, got '-1'/);
  assert.throws(() => tensorflowThreads(0), /threads must be a positive integer, got '0'/);
});

test('TDR_THREADS=0: the resolver refuses it with one line naming the variable', () => {
  const r = child({ TDR_BACKEND: 'cpu', TDR_THREADS: '0' });
  assert.equal(r.status, 3);
  assert.match(r.stderr, /ERR TDR_THREADS must be a positive integer, got '0'/);
});

test('TDR_BACKEND=wasm TDR_THREADS=2: the native kernels run their GEMMs on 2 OpenBLAS threads and the line says so; without TDR_THREADS on 1', () => {
  const native = loadNative().addon != null;
  const two = child({ TDR_BACKEND: 'wasm', TDR_THREADS: '2' });
  assert.equal(two.status, 0, two.stderr);
  const i = JSON.parse(two.stdout.trim().split('\n').pop() as string).i;
  assert.equal(i.name, 'wasm');
  assert.equal(i.blasThreads, native ? 2 : undefined);
  if (native) assert.match(two.stderr, /^tdr: backend wasm \(SIMD, 1 thread, 2 OpenBLAS threads per GEMM\)$/m);
  const one = child({ TDR_BACKEND: 'wasm' });
  assert.equal(JSON.parse(one.stdout.trim().split('\n').pop() as string).i.blasThreads, native ? 1 : undefined);
  assert.match(one.stderr, /^tdr: backend wasm \(SIMD, 1 thread\)$/m);
});

test("the backend option wins over TDR_BACKEND (tdr bench --backend); a bad name is a user error", () => {
  const code = (backend: string) => `require(${JSON.stringify(LIB)}).initBackend({ quiet: true, backend: ${JSON.stringify(backend)} })
    .then((i) => console.log(i.name), (e) => { console.error('ERR ' + e.name + ' ' + e.message); process.exit(3); })`;
  const ok = spawnSync(process.execPath, ['-e', code('cpu')], { env: { ...process.env, TDR_BACKEND: 'wasm' }, encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(ok.stdout.trim(), 'cpu');
  const bad = spawnSync(process.execPath, ['-e', code('gpu')], { env: process.env, encoding: 'utf8' });
  assert.equal(bad.status, 3);
  assert.match(bad.stderr, /ERR UserError backend must be one of tensorflow, wasm, cpu; got 'gpu'/);
});

// ---- this machine's measurement (lib/backend/choice.ts, written by `tdr bench --choose-backend`)

function record(chosen: BackendChoice['chosen'], machine = machineKey()): BackendChoice {
  return {
    version: 1,
    machine,
    measuredAt: '2026-12-05T03:00:00.000Z',
    candidates: [
      { backend: 'wasm', threads: 1, t2iStepMs: 1800, promptirStepMs: 1500, score: 3300 },
      { backend: chosen.backend, threads: chosen.threads, t2iStepMs: 900, promptirStepMs: 700, score: 1600 },
    ],
    chosen,
  };
}

test('pickCandidate: the lowest sum of the two training steps; none timed is an error', () => {
  const c = record({ backend: 'tensorflow', threads: 2 }).candidates;
  assert.deepEqual(pickCandidate(c), { backend: 'tensorflow', threads: 2 });
  assert.deepEqual(pickCandidate([c[0]]), { backend: 'wasm', threads: 1 });
  assert.throws(() => pickCandidate([]), /no backend could be timed/);
});

test('readChoice: this machine\'s record is used; another machine\'s, a malformed or a missing file is a reason, never an error', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdr-choice-'));
  try {
    const file = path.join(dir, 'backend-choice.json');
    assert.match((readChoice(file) as { none: string }).none, /no measurement/);
    writeChoice(record({ backend: 'cpu', threads: 1 }), file);
    const ok = readChoice(file);
    assert.ok('choice' in ok);
    assert.deepEqual(ok.choice.chosen, { backend: 'cpu', threads: 1 });
    writeChoice(record({ backend: 'cpu', threads: 1 }, { ...machineKey(), cores: machineKey().cores + 6, cpu: 'Other CPU' }), file);
    const other = readChoice(file) as { none: string };
    assert.match(other.none, /measured on another machine \(cpu Other CPU ≠ .*, cores \d+ ≠ \d+\); ignored/);
    fs.writeFileSync(file, '{"version": 1, "chosen": {"backend": "gpu", "threads": 1}}');
    assert.match((readChoice(file) as { none: string }).none, /not a backend-choice record of this version/);
    fs.writeFileSync(file, 'not json');
    assert.match((readChoice(file) as { none: string }).none, /not JSON/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('without TDR_BACKEND the resolver follows this machine\'s record and says so; TDR_BACKEND and TDR_THREADS still win; another machine\'s record is ignored', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdr-choice-'));
  try {
    const file = path.join(dir, 'backend-choice.json');
    writeChoice(record({ backend: 'cpu', threads: 1 }), file);
    const r = child({ TDR_BACKEND: undefined, TDR_BACKEND_CHOICE: file });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    assert.equal(out.i.name, 'cpu');
    assert.equal(out.i.chosenBy, 'measured');
    assert.match(r.stderr, /^tdr: backend cpu \(pure JS, slow; measured fastest for training here on 2026-12-05 \(tdr bench --choose-backend\)\)$/m);
    // the user's TDR_BACKEND wins over the record
    const env = child({ TDR_BACKEND: 'wasm', TDR_BACKEND_CHOICE: file });
    assert.equal(JSON.parse(env.stdout.trim().split('\n').pop() as string).i.name, 'wasm');
    // a record chosen at 2 OpenBLAS threads on wasm: used unless TDR_THREADS says otherwise
    if (loadNative().addon != null) {
      writeChoice(record({ backend: 'wasm', threads: 2 }), file);
      const w2 = JSON.parse(child({ TDR_BACKEND: undefined, TDR_BACKEND_CHOICE: file }).stdout.trim().split('\n').pop() as string).i;
      assert.deepEqual([w2.name, w2.blasThreads], ['wasm', 2]);
      const w1 = JSON.parse(child({ TDR_BACKEND: undefined, TDR_BACKEND_CHOICE: file, TDR_THREADS: '1' }).stdout.trim().split('\n').pop() as string).i;
      assert.deepEqual([w1.name, w1.blasThreads], ['wasm', 1]);
    }
    // another machine's record: the default order, and the reason is kept
    writeChoice(record({ backend: 'cpu', threads: 1 }, { ...machineKey(), cpu: 'Other CPU' }), file);
    const o = child({ TDR_BACKEND: undefined, TDR_BACKEND_CHOICE: file });
    const oi = JSON.parse(o.stdout.trim().split('\n').pop() as string).i;
    assert.equal(oi.name, TENSORFLOW_BUILT ? 'tensorflow' : 'wasm');
    assert.equal(oi.chosenBy, 'default');
    assert.match(oi.choiceNote, /measured on another machine/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('generation choice: the lowest guidance-image time; the resolver uses it for purpose generate (tdr guide, tdr sample) and the training choice otherwise', async () => {
  const rec = record({ backend: 'cpu', threads: 1 });
  assert.equal(pickGenerationCandidate(rec.candidates), undefined, 'no candidate timed generation');
  rec.candidates[0].guideMs = 1900;
  rec.candidates[1].guideMs = 3300;
  assert.deepEqual(pickGenerationCandidate(rec.candidates), { backend: 'wasm', threads: 1 });
  const { formatChoice } = await import('../../lib/jobs/choose_backend');
  const table = formatChoice({ ...rec, generation: { backend: 'wasm', threads: 1 } }, '/x/choice.json');
  assert.match(table, /wasm, 1 thread .*1900 .*← generation/);
  assert.match(table, /cpu, 1 thread .*3300 .*← training/);
  assert.match(table, /tdr guide and tdr sample wasm at 1 thread/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdr-choice-'));
  try {
    const file = path.join(dir, 'backend-choice.json');
    writeChoice({ ...rec, generation: { backend: 'wasm', threads: 1 } }, file);
    const gen = child({ TDR_BACKEND: undefined, TDR_BACKEND_CHOICE: file }, { purpose: 'generate' });
    assert.equal(gen.status, 0, gen.stderr);
    assert.equal(JSON.parse(gen.stdout.trim().split('\n').pop() as string).i.name, 'wasm');
    assert.match(gen.stderr, /measured fastest for generating guidance here on 2026-12-05/);
    const train = child({ TDR_BACKEND: undefined, TDR_BACKEND_CHOICE: file }, { purpose: 'train' });
    assert.equal(JSON.parse(train.stdout.trim().split('\n').pop() as string).i.name, 'cpu');
    // a record without a generation choice: generation follows the training choice
    writeChoice(record({ backend: 'cpu', threads: 1 }), file);
    const old = child({ TDR_BACKEND: undefined, TDR_BACKEND_CHOICE: file }, { purpose: 'generate' });
    assert.equal(JSON.parse(old.stdout.trim().split('\n').pop() as string).i.name, 'cpu');
    assert.match(old.stderr, /measured fastest for training here/);
    fs.writeFileSync(file, JSON.stringify({ ...rec, generation: { backend: 'gpu', threads: 1 } }));
    assert.match((readChoice(file) as { none: string }).none, /its generation choice is not a backend and thread count/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
