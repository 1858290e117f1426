/**
 * Killing training with SIGKILL and resuming reproduces the loss curve of an uninterrupted run
 * with the same seed (checkpoints are atomic; batches depend only on (seed, step)).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../lib/util/fsx';
import { PRESETS } from '../../lib/t2i/presets';
import { readLog, CHECKPOINT_FILE } from '../../lib/train/loop';
import { tmpDir } from '../helpers/fixtures';

const root = projectRoot();
const cli = path.join(root, 'dist', 'lib', 'cli', 'main.js');
const dir = tmpDir('tdr-sigkill-');
const config = path.join(dir, 'ae.json');
// the ci preset with a longer AE run that checkpoints every step
fs.writeFileSync(config, JSON.stringify({ ...PRESETS.ci, preset: 'sigkill', aeTrain: { ...PRESETS.ci.aeTrain, steps: 24, checkpointEvery: 1, logEvery: 1 } }));
const env = { ...process.env, TDR_QUIET: '1', TDR_WORKERS: '1' };

test('SIGKILL mid-run, then resume: the same loss curve as an uninterrupted run', { timeout: 5 * 60_000 }, async () => {
  const straight = path.join(dir, 'straight');
  const r0 = spawnSync(process.execPath, [cli, 'train', 'ae', '--config', config, '--runs', straight], { encoding: 'utf8', env });
  assert.equal(r0.status, 0, r0.stderr);
  const ref = readLog(path.join(straight, 'sigkill', 'ae')).map((r) => r.l_total);
  assert.equal(ref.length, 24);

  const killed = path.join(dir, 'killed');
  const runDir = path.join(killed, 'sigkill', 'ae');
  const child = spawn(process.execPath, [cli, 'train', 'ae', '--config', config, '--runs', killed], { env, stdio: 'ignore' });
  // wait until a few steps are checkpointed, then kill without warning
  const t0 = Date.now();
  while (Date.now() - t0 < 120_000) {
    await new Promise((r) => setTimeout(r, 50));
    if (fs.existsSync(path.join(runDir, CHECKPOINT_FILE)) && readLog(runDir).length >= 6) break;
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const before = readLog(runDir).length;
  assert.ok(before >= 6 && before < 24, `killed after ${before} logged steps`);

  const r1 = spawnSync(process.execPath, [cli, 'train', 'ae', '--config', config, '--runs', killed], { encoding: 'utf8', env });
  assert.equal(r1.status, 0, r1.stderr);
  assert.deepEqual(readLog(runDir).map((r) => r.l_total), ref);
});
