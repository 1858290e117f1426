/**
 * The project's Jupyter kernelspec for tslab (github.com/yunabe/tslab/issues/63): tslab ignores tsconfig.json and uses the
 * kernel's working directory as rootDir, so the kernel is started in the project root; notebooks
 * import the library by the package's name (`import { … } from "tdr"`; node_modules/tdr links to the
 * project, made by `npm install`).
 *
 * The spec is written to <root>/outputs/jupyter/kernels/tslab/kernel.json; point Jupyter at it with
 * JUPYTER_PATH=<root>/outputs/jupyter (done by `npm run jupyter` and `npm run notebooks`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot, writeFileAtomic } from '../util/fsx';
import { withHugePages } from '../backend/hugepages';

export const KERNEL_NAME = 'tslab';

/**
 * Make `node_modules/tdr` a link to the project, so that `import … from "tdr"` resolves (types and
 * runtime) from any notebook. `npm install` makes it (postinstall) but npm may prune it later.
 */
export function ensureSelfLink(root = projectRoot()): void {
  const link = path.join(root, 'node_modules', 'tdr');
  try {
    fs.lstatSync(link);
    return;
  } catch {
    fs.symlinkSync('..', link, 'dir');
  }
}

/** Write the kernelspec (and the package self-link); returns the JUPYTER_PATH directory to use. */
export function installKernelSpec(root = projectRoot()): string {
  ensureSelfLink(root);
  const tslabBin = path.join(root, 'node_modules', '.bin', 'tslab');
  if (!fs.existsSync(tslabBin)) throw new Error(`${tslabBin}: missing; run 'npm ci' in ${root} first`);
  const jupyterPath = path.join(root, 'outputs', 'jupyter');
  const spec = {
    // cd to the project root first, so that rootDir = project root and relative paths match the CLI
    argv: ['/bin/sh', '-c', `cd "${root}" && exec "${tslabBin}" kernel --config-path "$0"`, '{connection_file}'],
    display_name: 'TypeScript (tdr, tslab)',
    language: 'typescript',
    // huge pages for the tensorflow backend's tensors, as the `tdr` command has them (lib/backend/hugepages.ts)
    env: { TDR_QUIET: '0', GLIBC_TUNABLES: withHugePages(process.env).GLIBC_TUNABLES! },
  };
  writeFileAtomic(path.join(jupyterPath, 'kernels', KERNEL_NAME, 'kernel.json'), JSON.stringify(spec, null, 2) + '\n');
  return jupyterPath;
}
