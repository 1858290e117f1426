/**
 * `npm run jupyter`: start Jupyter Notebook on this project with the tslab kernel registered
 * (kernelspec in outputs/jupyter, kernel started in the project root so that `import … from "tdr"`
 * resolves; see ./kernel.ts), opened on notebooks/. Extra arguments go to `jupyter notebook`.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { projectRoot } from '../util/fsx';
import { installKernelSpec } from './kernel';
import { findJupyter } from './run';

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
  const child = spawn(jupyter, args, { stdio: 'inherit', cwd: path.join(root), env: { ...process.env, JUPYTER_PATH: jupyterPath } });
  child.on('exit', (code) => process.exit(code ?? 0));
}
