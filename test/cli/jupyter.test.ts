/**
 * `npm run jupyter` (lib/notebooks/jupyter.ts): a signal sent to the wrapper process alone (not its
 * process group: a `kill <pid>`, a process manager, an IDE's stop button) reaches Jupyter, and the
 * wrapper exits only once Jupyter has — no notebook server is left holding the port. Jupyter is
 * stood in for by a script (TDR_JUPYTER) that records its pid and waits.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { projectRoot } from '../../lib/util/fsx';
import { tmpDir } from '../helpers/fixtures';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  test(`${sig} to the jupyter wrapper alone stops Jupyter too; the wrapper exits after it with 128 + signal`, { timeout: 60_000 }, async () => {
    const dir = tmpDir('tdr-jupyter-');
    const pidFile = path.join(dir, 'jupyter.pid');
    const fake = path.join(dir, 'jupyter');
    fs.writeFileSync(fake, `#!${process.execPath}\nrequire('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));\nsetInterval(() => {}, 1000);\n`, { mode: 0o755 });
    const wrapper = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'lib', 'notebooks', 'jupyter.js'), '--no-browser'], {
      env: { ...process.env, TDR_JUPYTER: fake },
      stdio: 'ignore',
    });
    let jupyterPid = 0;
    try {
      for (let i = 0; i < 600 && !fs.existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 50));
      jupyterPid = Number(fs.readFileSync(pidFile, 'utf8'));
      assert.ok(alive(jupyterPid), 'the stand-in Jupyter runs');
      const exited = new Promise<number | null>((resolve) => wrapper.on('exit', (code) => resolve(code)));
      wrapper.kill(sig); // the wrapper's pid only, as `kill <pid>` does
      const code = await exited;
      assert.equal(code, sig === 'SIGINT' ? 130 : 143);
      assert.ok(!alive(jupyterPid), `Jupyter (pid ${jupyterPid}) was stopped with the wrapper`);
    } finally {
      if (jupyterPid && alive(jupyterPid)) process.kill(jupyterPid, 'SIGKILL');
      if (wrapper.exitCode === null) wrapper.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
