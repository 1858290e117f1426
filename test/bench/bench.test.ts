/**
 * lib/jobs/bench_unet.ts: one untimed-for-assertion run (steps=1, warmup=0): result fields and a flat
 * tensor count. Not a timing test: only that the times are positive numbers.
 */
import { loadNative } from '../../lib/backend/native';
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { runBench, unetForwardGflop } from '../../lib/jobs/bench_unet';
import { benchPromptIRStep, benchT2IStep } from '../../lib/jobs/bench_train';
import { benchCommand, formatBench, formatClassicalBench } from '../../lib/cli/commands/bench';
import { benchClassical } from '../../lib/restore/classical/bench';
import { runPeerBench } from '../../lib/jobs/peer';
import { formatRestoreBench, parseRestoreBenchSizes, runRestoreBench } from '../../lib/jobs/bench_restore';
import { UserError } from '../../lib/util/errors';
import { GuidanceModel, t2iWeightsHash } from '../../lib/guidance/model';
import { tinyT2I, tinyGuidanceConfig } from '../guidance/helpers';
import { tmpDir } from '../helpers/fixtures';
import * as path from 'node:path';
import * as fs from 'node:fs';

process.env.TDR_QUIET = '1';

test('reference U-Net forward is 9.42 GFLOP at batch 8, 64x64', () => {
  assert.ok(Math.abs(unetForwardGflop() - 9.42) < 0.01, String(unetForwardGflop()));
});

test('runBench steps=1 warmup=0: fields, finite loss, tensor count flat', async () => {
  await initBackend({ quiet: true });
  const before = tf.memory().numTensors;
  const r = await runBench({ steps: 1, warmup: 0 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(r.tensorsAfter, r.tensorsBefore);
  assert.equal(r.tensorsPerStepDrift, 0);
  assert.equal(r.backend, tf.getBackend());
  assert.ok(r.threads >= 1);
  assert.equal(r.kernels, r.backend !== 'wasm' ? 'backend' : loadNative().addon ? 'native' : 'wasm');
  assert.equal(r.batch, 8);
  assert.equal(r.size, 64);
  assert.equal(r.steps, 1);
  assert.equal(r.unetStepsMs.length, 1);
  assert.ok(r.unetStepMs > 0 && Number.isFinite(r.unetStepMs));
  assert.ok(Number.isFinite(r.finalLoss) && r.finalLoss > 0);
  assert.ok(r.peakRssMiB > 0);
  assert.ok(r.conv != null && r.conv.forwardMs > 0 && r.conv.backpropFilterMs > 0 && r.conv.backpropInputMs > 0);
  assert.deepEqual(r.conv.x, [8, 64, 64, 64]);
  const table = formatBench(r);
  assert.match(table, /U-Net train step\s+\d/);
  assert.doesNotThrow(() => JSON.parse(JSON.stringify(r)));
});

test('benchT2IStep (ci preset, steps=2 warmup=0) and benchPromptIRStep (batch 1, reps 1): fields, finite loss, tensor count flat', async () => {
  await initBackend({ quiet: true });
  const before = tf.memory().numTensors;
  const t = await benchT2IStep({ preset: 'ci', steps: 2, warmup: 0 });
  assert.equal(tf.memory().numTensors, before);
  assert.equal(t.preset, 'ci');
  assert.equal(t.batch, 4);
  assert.deepEqual(t.latent, [16, 16, 4]);
  assert.equal(t.stepsMs.length, 2);
  assert.ok(t.stepMs > 0 && Number.isFinite(t.finalLoss) && t.finalLoss > 0 && t.trainableParams > 0);
  const p = await benchPromptIRStep({ batch: 1, reps: 1 });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(p.map((r) => r.guidance), [false, true]);
  for (const r of p) assert.ok(r.stepMs > 0 && r.forwardMs > 0 && r.params > 0 && r.batch === 1 && r.size === 64);
  assert.ok(p[1].params > p[0].params, 'the guided restorer has the matcher on top');
  const table = formatBench({ ...(await runBench({ steps: 1, warmup: 0, micro: false })), t2i: t, promptir: p });
  assert.match(table, /T2I train step \(ci\)\s+\d/);
  assert.match(table, /PromptIR train step, guided\s+\d/);
});

test('bench command: --sample must be a .tdrc file or none', async () => {
  await assert.rejects(benchCommand.run(['--sample', 'x.png']), (e: Error) => e.name === 'UserError' && /--sample/.test(e.message));
});

test('throws when steps < 1', async () => {
  await assert.rejects(runBench({ steps: 0 }), /runBench: steps must be an integer ≥ 1, got 0/);
});

test('bench command: --steps 0 and stray arguments are user errors', async () => {
  await assert.rejects(benchCommand.run(['--steps', '0']), (e: Error) => e.name === 'UserError' && /--steps/.test(e.message));
  await assert.rejects(benchCommand.run(['extra']), (e: Error) => e.name === 'UserError' && /unexpected argument 'extra'/.test(e.message));
});

test('classical bench at 32 px, one run: both methods, positive times, formatted rows; --classical with --peer is a user error', async () => {
  const rows = benchClassical({ sizes: [32], reps: 1 });
  assert.deepEqual(rows.map((r) => `${r.method} ${r.size}`), ['DCP + GF 32', 'NLM 32']);
  for (const r of rows) assert.ok(r.ms > 0 && r.runs.length === 1 && r.ms === r.runs[0] && r.cpuMs >= 0);
  assert.match(formatClassicalBench(rows), /^DCP \+ GF 32x32 +\d+\.\d ms CPU, \d+\.\d ms wall, median per image/);
  await assert.rejects(benchCommand.run(['--classical', '--peer']), (e: Error) => e.name === 'UserError' && /--classical times the classical references only/.test(e.message));
});

test('bench command: --backend must name a backend, --threads a positive integer, --python needs --peer', async () => {
  await assert.rejects(benchCommand.run(['--backend', 'gpu']), (e: Error) => e.name === 'UserError' && /--backend/.test(e.message));
  await assert.rejects(benchCommand.run(['--threads', '0']), (e: Error) => e.name === 'UserError' && /--threads/.test(e.message));
  await assert.rejects(benchCommand.run(['--python', '/usr/bin/python3']), (e: Error) => e.name === 'UserError' && /--python names the interpreters of --peer; add --peer/.test(e.message));
  await assert.rejects(benchCommand.run(['--rounds', '3']), (e: Error) => e.name === 'UserError' && /--rounds is the number of --peer rounds; add --peer/.test(e.message));
});

test('--peer --rounds 3: tdr and the peer alternate, each round has its own ratio, the reported ratio is the median round', async () => {
  await initBackend({ quiet: true });
  // a stand-in interpreter that answers as the PyTorch peer does, 100, 300, then 200 ms per step
  const dir = tmpDir('tdr-bench-rounds-');
  const count = path.join(dir, 'n');
  const fake = path.join(dir, 'fakepy');
  fs.writeFileSync(fake, `#!/bin/sh\nn=$(cat ${count} 2>/dev/null || echo 0); echo $((n+1)) > ${count}\nms=$(echo "100 300 200" | cut -d' ' -f$((n+1)))\necho '{"framework":"pytorch 0.0","torchVersion":"0.0","python":"fake","threads":1,"unetStepMs":'$ms',"stepsMs":['$ms'],"stepCpuMs":1}'\n`, { mode: 0o755 });
  const run = async (args: string[]) => {
    const out: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((c: string | Uint8Array) => (out.push(typeof c === 'string' ? c : ''), true)) as typeof process.stdout.write;
    try {
      assert.equal(await benchCommand.run(['--peer', '--python', fake, ...args, '--steps', '1', '--warmup', '0', '--sample', 'none', '--json']), 0);
    } finally {
      process.stdout.write = write;
    }
    return JSON.parse(out.find((l) => l.startsWith('{"backend"'))!);
  };
  const [p] = (await run(['--rounds', '3'])).peers;
  assert.deepEqual(p.rounds.map((q: { peerMs: number }) => q.peerMs), [100, 300, 200]);
  for (const q of p.rounds) assert.ok(q.tdrMs > 0 && Math.abs(q.ratio - q.tdrMs / q.peerMs) < 1e-9);
  const sorted = p.rounds.map((q: { ratio: number }) => q.ratio).sort((a: number, b: number) => a - b);
  assert.equal(p.ratio, sorted[1]);
  assert.equal(p.unetStepMs, p.rounds.find((q: { ratio: number }) => q.ratio === p.ratio).peerMs);
  // without --rounds: one round, no per-round list, the ratio of tdr's step to the peer's (the fake's 4th answer is empty: reset it)
  fs.rmSync(count);
  const one = await run([]);
  assert.equal(one.peers.length, 1);
  assert.equal(one.peers[0].rounds, undefined);
  assert.equal(one.peers[0].unetStepMs, 100);
  assert.ok(Math.abs(one.peers[0].ratio - one.unetStepMs / 100) < 1e-9);
});

/** A Python with PyTorch here (Debian's python3-torch), or null. */
const TORCH_PYTHON = ['/usr/bin/python3'].find((py) => spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0) ?? null;

test('PyTorch peer, 1 step: reports the PyTorch version and interpreter it ran', { skip: TORCH_PYTHON == null && 'no python3-torch here' }, () => {
  const p = runPeerBench({ threads: 1, steps: 1, warmup: 0, python: TORCH_PYTHON as string });
  const version = spawnSync(TORCH_PYTHON as string, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim();
  assert.equal(p.torchVersion, version);
  assert.equal(p.framework, `pytorch ${version}`);
  assert.equal(p.threads, 1);
  assert.ok(p.python.length > 0 && p.unetStepMs > 0 && p.stepsMs.length === 1 && p.stepCpuMs > 0);
});

test('PyTorch peer: an interpreter that does not exist is a user error naming it', () => {
  assert.throws(() => runPeerBench({ threads: 1, steps: 1, warmup: 0, python: '/nonexistent/python3' }), (e: Error) => e.name === 'UserError' && /^\/nonexistent\/python3: cannot run it/.test(e.message));
});

test('restore bench at 64×48, unguided, one child process: fields, tile plan, peak RSS, formatted row; --sizes validated; restore-only options need --restore', async () => {
  const rows = await runRestoreBench({ sizes: [['64x48', 64, 48]], guided: [false] });
  assert.equal(rows.length, 1);
  const r = rows[0];
  assert.deepEqual([r.label, r.width, r.height, r.guided, r.tiles, r.passes], ['64x48', 64, 48, false, 1, 1]);
  assert.ok(Math.abs(r.megapixels - 64 * 48 / 1e6) < 1e-12);
  for (const k of ['decodeS', 'restoreS', 'encodeS', 'totalS', 'cpuS', 'peakRssMiB', 'predictedTileMiB'] as const) assert.ok(Number.isFinite(r[k]) && r[k] > 0, `${k}: ${r[k]}`);
  assert.ok(r.totalS >= r.restoreS && r.peakRssMiB > 50, 'a node process with the wasm backend');
  assert.ok(Number.isInteger(r.minorFaults) && r.minorFaults > 0, `minor page faults: ${r.minorFaults}`);
  assert.match(r.backend, /\S/);
  const table = formatRestoreBench(rows);
  assert.match(table, /targets: 512² guided ≤ 5 s, 12 Mpx ≤ 2048 MiB peak RSS/);
  assert.match(table, /^64x48 \(64x48\) +PromptIR +1 \(48x64\) +– +\d+\.\d +\d+\.\d +\d+\.\d +\d+ +\d+$/m);
  assert.deepEqual(parseRestoreBenchSizes('512, 12mp,640x480'), [['512²', 512, 512], ['12 Mpx', 4000, 3000], ['640x480', 640, 480]]);
  for (const bad of ['5x5', '4mp', '640*480', '']) assert.throws(() => parseRestoreBenchSizes(bad), (e: Error) => e instanceof UserError && /^--sizes: '.*' is not 512, 1024, 3mp, 12mp or WxH/.test(e.message));
  await assert.rejects(benchCommand.run(['--sizes', '512']), (e: Error) => e instanceof UserError && /--sizes applies to --restore only/.test(e.message));
  await assert.rejects(benchCommand.run(['--restore', '--peer']), (e: Error) => e instanceof UserError && /--restore times tdr restore only/.test(e.message));
  await assert.rejects(benchCommand.run(['--restore', '--sizes', '3x3']), (e: Error) => e instanceof UserError && /--sizes: '3x3'/.test(e.message));
});

test('tdr bench --guide FILE: loading, first image and per-image times of one guidance image, as JSON and as rows; bad uses refused', async () => {
  await initBackend({ quiet: true });
  const dir = tmpDir('tdr-bench-guide-');
  const t2iFile = path.join(dir, 't2i.tdrc');
  const gFile = path.join(dir, 'guidance.tdrc');
  const t2i = tinyT2I();
  t2i.save(t2iFile);
  const g = new GuidanceModel(tinyGuidanceConfig(), t2i, { path: t2iFile, sha256: t2iWeightsHash(t2i) });
  g.trainedStages = ['i2t', 'clean'];
  g.save(gFile);
  g.dispose();
  t2i.dispose();
  const out: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((c: string | Uint8Array) => (out.push(typeof c === 'string' ? c : ''), true)) as typeof process.stdout.write;
  try {
    assert.equal(await benchCommand.run(['--guide', gFile, '--steps', '2', '--json']), 0);
    assert.equal(await benchCommand.run(['--guide', gFile, '--steps', '1']), 0);
  } finally {
    process.stdout.write = write;
  }
  // (the test runner writes its own records to stdout meanwhile: keep the command's lines)
  const json = out.find((l) => l.startsWith('{"backend"'));
  const rows = out.find((l) => l.includes('per image after'));
  assert.ok(json && rows, out.filter((l) => typeof l === 'string' && /^[\x20-\x7e]/.test(l)).join(''));
  const j = JSON.parse(json).guide;
  assert.equal(j.checkpoint, gFile);
  assert.equal(j.guidesMs.length, 2);
  for (const k of ['loadMs', 'firstMs', 'guideMs']) assert.ok(j[k] > 0 && Number.isFinite(j[k]), `${k} ${j[k]}`);
  assert.equal(j.targetMs, 2000);
  assert.equal(j.steps, tinyGuidanceConfig().sample.steps);
  assert.match(rows, /per image after\s+\d+\.\d s median of 1 \(target ≤ 2 s\)/);
  // one DDIM step with and without the sampling memo: the memo runs fewer kernels
  assert.ok(j.step.memoMs > 0 && j.step.plainMs > 0 && j.step.pairs === 10, JSON.stringify(j.step));
  assert.ok(j.step.memoKernels < j.step.plainKernels, JSON.stringify(j.step));
  assert.match(rows, /one DDIM step\s+\d+ ms, \d+ kernels \(without the sampling memo: \d+ ms, \d+ kernels; median of 10 alternating pairs\)/);
  for (const [args, msg] of [
    [['--guide', path.join(dir, 'none.tdrc')], /--guide \S+none\.tdrc: no such checkpoint/],
    [['--guide', gFile, '--restore'], /--guide times the guidance of one image only; drop --restore/],
    [['--guide', 'x.png'], /--guide: expected a guidance checkpoint/],
  ] as Array<[string[], RegExp]>) {
    await assert.rejects(benchCommand.run(args), (e: Error) => e instanceof UserError && msg.test(e.message));
  }
});
