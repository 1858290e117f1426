/**
 * The library's layers (README, "Layout"): shared layers at the bottom, one folder per paper stage
 * above them, jobs and the command line on top. A file may import its own folder and any folder
 * BELOW its own; an import that points up (or sideways into another folder of the same level) fails
 * here with the file, the line and both layers.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../lib/util/fsx';

/** Bottom to top. `index` is lib/index.ts, the package entry that re-exports everything. */
export const LAYERS = ['util', 'backend', 'data', 'metrics', 'viz', 'models', 'train', 't2i', 'guidance', 'restore', 'jobs', 'notebooks', 'cli', 'index'] as const;

const lib = path.join(projectRoot(), 'lib');

function sources(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The layer of a file under lib/: its first folder, or 'index' for lib/index.ts. */
function layerOf(file: string): string {
  const rel = path.relative(lib, file).split(path.sep);
  return rel.length === 1 ? rel[0].replace(/\.ts$/, '') : rel[0];
}

/** Every relative module a file names: `from '…'`, `import '…'`, `import('…')`, `require('…')` (comments stripped). */
export function relativeImports(src: string): Array<{ spec: string; line: number }> {
  const code = src.replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`])\/\/[^\n]*/g, (m, p) => p + ' '.repeat(m.length - p.length));
  const re = /(?:from\s+|import\s*\(\s*|require\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]*)\1/gm;
  const out: Array<{ spec: string; line: number }> = [];
  for (const m of code.matchAll(re)) out.push({ spec: m[2], line: code.slice(0, m.index).split('\n').length });
  return out;
}

test('every lib/ folder is a known layer', () => {
  const folders = fs.readdirSync(lib, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  const unknown = folders.filter((f) => !(LAYERS as readonly string[]).includes(f));
  assert.deepEqual(unknown, [], `lib/ folders without a layer: ${unknown.join(', ')} (add them to LAYERS in test/layout/imports.test.ts and to the README's layout)`);
  const files = fs.readdirSync(lib).filter((f) => f.endsWith('.ts'));
  assert.deepEqual(files, ['index.ts'], 'lib/ holds only index.ts at its top level');
});

test('imports point downward only', () => {
  const rank = (l: string) => (LAYERS as readonly string[]).indexOf(l);
  const bad: string[] = [];
  for (const file of sources(lib)) {
    const from = layerOf(file);
    for (const { spec, line } of relativeImports(fs.readFileSync(file, 'utf8'))) {
      const target = path.resolve(path.dirname(file), spec);
      if (!target.startsWith(lib + path.sep)) continue; // package.json etc.
      const to = layerOf(fs.existsSync(target) && fs.statSync(target).isDirectory() ? path.join(target, 'index.ts') : target + '.ts');
      if (to === from) continue;
      if (rank(to) >= rank(from)) bad.push(`${path.relative(projectRoot(), file)}:${line} (${from}) imports '${spec}' (${to})`);
    }
  }
  assert.deepEqual(bad, [], `imports that point up or sideways:\n${bad.join('\n')}`);
});

test('the checker sees imports of every form and ignores comments', () => {
  const src = [
    "import { a } from '../a';",
    "import type { B } from '../b';",
    "import '../c';",
    "const d = require('../d');",
    "const e = await import('./e');",
    "// import { f } from '../f';",
    "/* from '../g' */",
    "const url = 'http://x'; // from '../h'",
  ].join('\n');
  assert.deepEqual(relativeImports(src).map((i) => i.spec), ['../a', '../b', '../c', '../d', './e']);
});

test("the package's exported names are the listed ones (notebooks import them as tdr.<name>)", () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tdr = require('../../lib/index');
  const want = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'test', 'layout', 'exports.json'), 'utf8')) as { top: string[]; restore: string[] };
  assert.deepEqual(Object.keys(tdr).sort(), want.top, 'tdr exports changed: update test/layout/exports.json only for a deliberate API change');
  assert.deepEqual(Object.keys(tdr.restore).sort(), want.restore, 'tdr.restore exports changed');
});

test('wasm kernels: one file per registered kernel in lib/backend/kernels/ (as tfjs-backend-wasm lays them out), and no other kernel files', async () => {
  const { WASM_KERNELS } = await import('../../lib/backend/kernels');
  const dir = path.join(projectRoot(), 'lib', 'backend', 'kernels');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'shared.ts').map((f) => f.replace(/\.ts$/, ''));
  assert.deepEqual([...files].sort(), [...WASM_KERNELS].sort());
});
