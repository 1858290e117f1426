/**
 * Executes every notebook in notebooks/ with the real tslab kernel under Debian's Jupyter
 * (the `ci` preset), and fails on any cell error, printing the failing cell's stderr.
 * Skipped only when Jupyter is absent AND this is not CI (CI installs it: .ci/run).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../lib/util/fsx';
import { findJupyter, runNotebook, failedCells } from '../../lib/notebooks/run';

const root = projectRoot();
let jupyter: string | null = null;
try {
  jupyter = findJupyter();
} catch (e) {
  if (process.env.CI) throw e;
}

const notebooks = fs.readdirSync(path.join(root, 'notebooks')).filter((f) => f.endsWith('.ipynb')).sort();

test('notebooks are committed clean: no outputs, no execution counts', () => {
  assert.ok(notebooks.length > 0, 'there are notebooks');
  for (const f of notebooks) {
    const nb = JSON.parse(fs.readFileSync(path.join(root, 'notebooks', f), 'utf8'));
    for (const c of nb.cells) {
      if (c.cell_type !== 'code') continue;
      assert.deepEqual(c.outputs, [], `${f}: a code cell has outputs`);
      assert.equal(c.execution_count, null, `${f}: a code cell has an execution count`);
    }
    assert.equal(nb.metadata.kernelspec.name, 'tslab', `${f}: kernel is tslab`);
  }
});

test('notebook code is typed: no `as any` or `: any` escapes (a missing type belongs in the library)', () => {
  const bad: string[] = [];
  for (const f of notebooks) {
    const nb = JSON.parse(fs.readFileSync(path.join(root, 'notebooks', f), 'utf8'));
    (nb.cells as Array<{ cell_type: string; source: string[] }>).forEach((c, i) => {
      if (c.cell_type !== 'code') return;
      for (const line of c.source.join('').split('\n')) if (/\bas any\b|:\s*any\b|<any>|any\[\]/.test(line)) bad.push(`${f} cell ${i}: ${line.trim()}`);
    });
  }
  assert.deepEqual(bad, []);
});

test('failedCells finds error outputs', () => {
  const nb = { cells: [{ cell_type: 'code', source: 'x', outputs: [{ output_type: 'error', ename: 'E', evalue: 'boom' }] }] };
  assert.equal(failedCells(nb)[0].error, 'E: boom');
});

for (const f of notebooks) {
  test(`notebook ${f} executes without error (tslab, TDR_PRESET=ci)`, { skip: jupyter ? false : 'jupyter not installed (apt-get install jupyter-nbconvert jupyter-notebook python3-ipykernel)', timeout: 30 * 60_000 }, () => {
    const ok = runNotebook(path.join('notebooks', f), { root, preset: 'ci' });
    assert.ok(ok, `${f} failed: see the failing cell's stderr above`);
    const executed = JSON.parse(fs.readFileSync(path.join(root, 'outputs', 'notebooks', f), 'utf8'));
    const kinds = new Set<string>();
    for (const c of executed.cells) for (const o of c.outputs ?? []) for (const k of Object.keys(o.data ?? {})) kinds.add(k);
    assert.ok(kinds.size > 0, `${f} produced display outputs`);
  });
}

function tinyNotebook(source: string): object {
  return {
    cells: [{ cell_type: 'code', execution_count: null, id: 'c0', metadata: {}, outputs: [], source: [source] }],
    metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' } },
    nbformat: 4,
    nbformat_minor: 5,
  };
}

for (const [what, source] of [
  ['a TypeScript type error', 'const x: number = "not a number";'],
  ['a runtime exception', 'throw new Error("boom in cell");'],
] as const) {
  test(`runNotebook reports ${what} as a failure`, { skip: jupyter ? false : 'jupyter not installed', timeout: 120_000 }, () => {
    const dir = fs.mkdtempSync(path.join(root, 'outputs', 'failing-'));
    const nb = path.join(dir, `failing_${what.replace(/\W+/g, '_')}.ipynb`);
    fs.writeFileSync(nb, JSON.stringify(tinyNotebook(source)));
    try {
      assert.equal(runNotebook(nb, { root }), false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
