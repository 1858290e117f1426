/**
 * `npm run jupyter`: start Jupyter Notebook on this project with the tslab kernel registered
 * (kernelspec in outputs/jupyter, kernel started in the project root so that `import … from "tdr"`
 * resolves; see ./kernel.ts), opened on notebooks/. Extra arguments go to `jupyter notebook`.
 *
 * The wrapper forwards SIGINT, SIGTERM and SIGHUP to Jupyter and exits only once Jupyter has exited
 * (with its exit code), so stopping the wrapper alone (kill, a process manager, an IDE's stop button)
 * never leaves a notebook server holding the port. `TDR_JUPYTER` names the jupyter executable.
 */
import { ChildProcess, SpawnOptions, spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { projectRoot } from '../util/fsx';
import { installKernelSpec } from './kernel';
import { findJupyter } from './run';

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Spawn `cmd args` with the terminal, forward SIGINT/SIGTERM/SIGHUP received by this process to it,
 * and call `onExit` with its exit code (128 + signal number when a signal ended it) once it exited.
 */
export function spawnForwardingSignals(cmd: string, args: string[], opts: SpawnOptions, onExit: (code: number) => void): ChildProcess {
  const child = spawn(cmd, args, { stdio: 'inherit', ...opts });
  const handlers = FORWARDED.map((sig) => {
    const h = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  const done = (code: number) => {
    for (const [sig, h] of handlers) process.off(sig, h);
    onExit(code);
  };
  child.on('exit', (code, signal) => done(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 0)));
  child.on('error', (e) => {
    process.stderr.write(`${cmd}: ${e.message}\n`);
    done(127);
  });
  return child;
}

if (require.main === module) {
  const root = projectRoot();
  let jupyter: string;
  try {
    jupyter = findJupyter();
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\nOther Linux: python3 -m pip install notebook; macOS: brew install jupyterlab (or pip install notebook)\n`);
    process.exit(2);
  }
  const jupyterPath = installKernelSpec(root);
  const args = ['notebook', `--notebook-dir=${root}`, ...(process.getuid?.() === 0 ? ['--allow-root'] : []), ...process.argv.slice(2)];
  process.stdout.write(`JUPYTER_PATH=${jupyterPath} ${jupyter} ${args.join(' ')}\nopen notebooks/ in the browser tab; the kernel is "TypeScript (tdr, tslab)"\n`);
  spawnForwardingSignals(jupyter, args, { cwd: path.join(root), env: { ...process.env, JUPYTER_PATH: jupyterPath } }, (code) => process.exit(code));
}
