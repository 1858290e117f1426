/**
 * `npm run notebooks [-- <notebook>…]`: execute notebooks headlessly with the tslab kernel
 * (Debian's jupyter nbconvert), write the executed copies to outputs/notebooks/<name>.ipynb and
 * HTML to outputs/notebooks/<name>.html, and fail (exit 1) if any cell errored, printing the failing
 * cell's source and its stderr (where tslab puts the TypeScript diagnostics).
 *
 * The kernel gets TDR_PRESET (default `ci`): notebooks train on the tiny `ci` preset unless the user
 * asks for another one.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../util/fsx';
import { installKernelSpec, KERNEL_NAME } from './kernel';

/** Python helper: execute with nbconvert's ExecutePreprocessor, save even on failure, print a JSON summary. */
const EXECUTE_PY = `
import json, sys, nbformat
from nbconvert.preprocessors import ExecutePreprocessor, CellExecutionError
src, out, kernel, timeout, cwd = sys.argv[1:6]
nb = nbformat.read(src, as_version=4)
ep = ExecutePreprocessor(timeout=int(timeout), kernel_name=kernel)
current = {"i": None}
_orig = ep.preprocess_cell
def _track(cell, resources, index, *a, **k):
    current["i"] = index
    return _orig(cell, resources, index, *a, **k)
ep.preprocess_cell = _track
res = {"ok": True, "failedCell": None, "message": ""}
try:
    ep.preprocess(nb, {"metadata": {"path": cwd}})
except CellExecutionError as e:
    res = {"ok": False, "failedCell": current["i"], "message": str(e).strip().splitlines()[-1] if str(e).strip() else "CellExecutionError"}
except Exception as e:
    res = {"ok": False, "failedCell": current["i"], "message": type(e).__name__ + ": " + str(e)}
nbformat.write(nb, out)
print(json.dumps(res))
`;

interface NbOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  ename?: string;
  evalue?: string;
  traceback?: string[];
}
interface NbCell {
  cell_type: string;
  source: string | string[];
  outputs?: NbOutput[];
}

const join = (s: string | string[] | undefined) => (Array.isArray(s) ? s.join('') : (s ?? ''));

/** Cells of an executed notebook that errored, with their source and stderr. */
export function failedCells(nb: { cells: NbCell[] }): Array<{ index: number; source: string; stderr: string; error: string }> {
  const out = [];
  for (let i = 0; i < nb.cells.length; i++) {
    const c = nb.cells[i];
    if (c.cell_type !== 'code') continue;
    const errors = (c.outputs ?? []).filter((o) => o.output_type === 'error');
    if (errors.length === 0) continue;
    const stderr = (c.outputs ?? []).filter((o) => o.output_type === 'stream' && o.name === 'stderr').map((o) => join(o.text)).join('');
    const error = errors.map((e) => `${e.ename}: ${e.evalue}`).join('\n');
    out.push({ index: i, source: join(c.source), stderr, error });
  }
  return out;
}

export function findJupyter(): string {
  const env = process.env.TDR_JUPYTER;
  if (env) {
    if (!fs.existsSync(env)) throw new Error(`TDR_JUPYTER=${env}: no such file`);
    return env;
  }
  for (const p of ['/usr/bin/jupyter', '/usr/local/bin/jupyter']) if (fs.existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v jupyter'], { encoding: 'utf8' });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  throw new Error(
    'jupyter not found. On Debian/Ubuntu: sudo apt-get install -y --no-install-recommends jupyter-nbconvert jupyter-notebook python3-ipykernel',
  );
}

/** The Python interpreter that runs `jupyter` (from its #! line), which has nbconvert and nbformat. */
export function jupyterPython(jupyter: string): string {
  const first = fs.readFileSync(jupyter, 'utf8').split('\n')[0];
  const m = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
  if (!m) return '/usr/bin/python3';
  return m[1].endsWith('/env') && m[2] ? m[2] : m[1];
}

/** Execute one notebook; returns true when every cell ran without error. */
export function runNotebook(nbPath: string, opts: { root?: string; timeoutS?: number; preset?: string } = {}): boolean {
  const root = opts.root ?? projectRoot();
  const jupyter = findJupyter();
  const jupyterPath = installKernelSpec(root);
  const outDir = path.join(root, 'outputs', 'notebooks');
  fs.mkdirSync(outDir, { recursive: true });
  const name = path.basename(nbPath, '.ipynb');
  const env = { ...process.env, JUPYTER_PATH: jupyterPath, TDR_PRESET: opts.preset ?? process.env.TDR_PRESET ?? 'ci' };
  const t0 = Date.now();
  process.stdout.write(`notebook ${nbPath} … `);
  const executed = path.join(outDir, `${name}.ipynb`);
  // nbconvert's ExecutePreprocessor, driven from Python so that the partially executed notebook is
  // saved even when a cell fails (tslab reports TypeScript errors in the execute reply, not as an
  // error output, so `nbconvert --allow-errors` would hide them).
  const r = spawnSync(jupyterPython(jupyter), ['-c', EXECUTE_PY, nbPath, executed, KERNEL_NAME, String(opts.timeoutS ?? 1800), root], {
    env,
    encoding: 'utf8',
    cwd: root,
  });
  let summary: { ok: boolean; failedCell: number | null; message: string } | null = null;
  try {
    summary = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    summary = null;
  }
  if (!summary || !fs.existsSync(executed)) {
    process.stdout.write('FAILED\n');
    process.stderr.write(`notebook executor exited with ${r.status}:\n${r.stdout}\n${r.stderr}\n`);
    return false;
  }
  const nb = JSON.parse(fs.readFileSync(executed, 'utf8'));
  const failed = failedCells(nb);
  if (!summary.ok && !failed.some((f) => f.index === summary!.failedCell)) {
    const c: NbCell = summary.failedCell !== null ? nb.cells[summary.failedCell] : { cell_type: 'code', source: '(unknown cell)' };
    const stderr = (c.outputs ?? []).filter((o) => o.output_type === 'stream' && o.name === 'stderr').map((o) => join(o.text)).join('');
    // a dead kernel prints its last words (e.g. an uncaught exception) on the executor's stderr
    const kernelStderr = summary.message.includes('DeadKernel') ? `\n--- kernel stderr (tail) ---\n${r.stderr.split('\n').slice(-25).join('\n')}` : '';
    failed.push({ index: summary.failedCell ?? -1, source: join(c.source), stderr: stderr + kernelStderr, error: summary.message });
  }
  spawnSync(jupyter, ['trust', executed], { env, encoding: 'utf8' });
  spawnSync(jupyter, ['nbconvert', '--to', 'html', '--output-dir', outDir, executed], { env, encoding: 'utf8' });
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (failed.length === 0) {
    process.stdout.write(`ok (${secs} s) → ${path.relative(root, executed)}\n`);
    return true;
  }
  process.stdout.write(`FAILED (${secs} s)\n`);
  for (const f of failed) {
    process.stderr.write(`\n--- ${nbPath}: cell ${f.index} failed ---\n${f.source}\n--- stderr ---\n${f.stderr}\n--- error ---\n${f.error}\n`);
  }
  return false;
}

if (require.main === module) {
  const root = projectRoot();
  const args = process.argv.slice(2);
  const list = args.length
    ? args
    : fs.readdirSync(path.join(root, 'notebooks')).filter((f) => f.endsWith('.ipynb')).sort().map((f) => path.join('notebooks', f));
  let ok = true;
  for (const nb of list) ok = runNotebook(nb, { root }) && ok;
  process.exitCode = ok ? 0 : 1;
}
