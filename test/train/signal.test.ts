/**
 * SIGTERM stops a single-process training run at the next step with a checkpoint, even when the
 * steps never wait on anything but resolved promises (the loop yields to the event loop each step;
 * before that, an i2t run with TDR_WORKERS=1 ignored SIGTERM and Ctrl-C).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers/fixtures';

test('SIGTERM interrupts a synchronous single-worker loop: checkpoint written, loop returns interrupted', async () => {
  const dir = tmpDir('tdr-signal-');
  const script = `
    const { initBackend } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'lib', 'backend'))});
    const { train } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'lib', 'train', 'loop'))});
    const { buildMlpStage } = require(${JSON.stringify(path.join(__dirname, '..', 'helpers', 'mlp_stage'))});
    (async () => {
      await initBackend({ quiet: true });
      const stage = await buildMlpStage({ seed: 1, batch: 16 });
      let n = 0;
      const r = await train(stage, { steps: 1000000, lr: 0.01, warmup: 1, logEvery: 1, checkpointEvery: 1000000, seed: 1 },
        { runDir: ${JSON.stringify(dir)}, meta: {}, quiet: true, onLog: () => { if (++n === 20) process.stdout.write('running\\n'); } });
      process.stdout.write('interrupted=' + r.interrupted + ' step=' + r.step + '\\n');
    })();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TDR_QUIET: '1' } });
  let out = '';
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('running') && !child.killed) child.kill('SIGTERM');
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await done;
  clearTimeout(timer);
  assert.equal(code, 0, `exit ${code}; stdout: ${out}`);
  const m = /interrupted=true step=(\d+)/.exec(out);
  assert.ok(m, out);
  assert.ok(Number(m[1]) < 1000000);
  assert.ok(fs.existsSync(path.join(dir, 'checkpoint.tdrc')), 'checkpoint written on SIGTERM');
});
