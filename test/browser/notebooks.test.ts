/**
 * The notebooks as a user sees them: Jupyter Notebook + the tslab kernel, driven in Debian's
 * Chromium with playwright-core (lib/notebooks/browser.ts). Skipped only when Chromium or Jupyter is
 * missing AND this is not CI (.ci/run installs both).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../lib/util/fsx';
import { runNotebookInBrowser, CHROMIUM } from '../../lib/notebooks/browser';
import { findJupyter } from '../../lib/notebooks/run';

const root = projectRoot();
let missing: string | false = false;
try {
  findJupyter();
  if (!fs.existsSync(CHROMIUM)) missing = `${CHROMIUM} not installed (apt-get install chromium)`;
} catch (e) {
  missing = (e as Error).message;
}
if (missing && process.env.CI) throw new Error(`browser test needs Jupyter and Chromium in CI: ${missing}`);

test('01_degradations.ipynb runs in the browser: images, a table and a plotly chart render, no cell fails', { skip: missing, timeout: 20 * 60_000 }, async () => {
  const r = await runNotebookInBrowser('notebooks/01_degradations.ipynb');
  assert.deepEqual(r.failed, [], `cells failed: ${JSON.stringify(r.failed)}`);
  assert.ok(r.ok);
  assert.ok(r.found.image > 0, 'an image rendered');
  assert.ok(r.found.table > 0, 'a table rendered');
  assert.ok(r.found.plotly > 0, 'a plotly chart rendered (svg.main-svg)');
  assert.ok(fs.statSync(r.screenshot).size > 10_000, `screenshot saved: ${r.screenshot}`);
});

test('a failing cell is reported by the browser run (and the cells after it did not run)', { skip: missing, timeout: 5 * 60_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(root, 'outputs', 'browser-failing-'));
  const nb = path.join(dir, 'failing.ipynb');
  const cell = (i: number, src: string) => ({ cell_type: 'code', execution_count: null, id: `c${i}`, metadata: {}, outputs: [], source: [src] });
  fs.writeFileSync(nb, JSON.stringify({
    cells: [cell(0, 'console.log("fine");'), cell(1, 'throw new Error("boom in the browser");'), cell(2, 'console.log("never");')],
    metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' } },
    nbformat: 4,
    nbformat_minor: 5,
  }));
  try {
    const r = await runNotebookInBrowser(path.relative(root, nb), { screenshot: path.join(dir, 'failing.png') });
    assert.equal(r.ok, false);
    assert.deepEqual(r.failed.map((f) => f.index), [1, 2]);
    assert.equal(r.failed[0].status, 'error');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
