/**
 * The README stays a short, current page for users: about 150 lines; every `tdr` command, notebook and
 * lib/ folder listed; the layers in the order test/layout/imports.test.ts enforces; links to docs/; and
 * any measured number it quotes is recorded in docs/experiments.md (with its command and commit).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../lib/util/fsx';
import { COMMANDS } from '../../lib/cli/commands';

const root = projectRoot();
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

/** Decimal numbers of a text (versions such as 1.0.22 are not numbers). */
export function decimals(text: string): string[] {
  return [...text.matchAll(/(?<![\w.])\d+\.\d+(?![\w.])/g)].map((m) => m[0]);
}

test('decimals: finds measured values, skips versions', () => {
  assert.deepEqual(decimals('+0.20 ± 0.34 dB, haze 0.60; tslab 1.0.22, σ 15/25/50, 2.8 MB.'), ['0.20', '0.34', '0.60', '2.8']);
});

test('README: at most about 150 lines, links to docs/notation.md and docs/experiments.md', () => {
  const lines = readme.split('\n').length;
  assert.ok(lines <= 170, `README has ${lines} lines; move detail to docs/`);
  for (const d of ['docs/notation.md', 'docs/experiments.md']) {
    assert.ok(readme.includes(`](${d})`), `README does not link ${d}`);
    assert.ok(fs.existsSync(path.join(root, d)), `${d} is missing`);
  }
});

test("README's command table lists every tdr command", () => {
  const missing = COMMANDS.map((c) => c.name).filter((n) => !readme.includes(`| \`tdr ${n}`));
  assert.deepEqual(missing, [], 'add a row to the README command table');
});

test("README's notebook table lists every notebook", () => {
  const nbs = fs.readdirSync(path.join(root, 'notebooks')).filter((f) => f.endsWith('.ipynb'));
  assert.ok(nbs.length >= 9);
  assert.deepEqual(nbs.filter((f) => !readme.includes(`| \`${f}\``)), []);
});

test("README's layout lists every lib/ folder, bottom to top as test/layout/imports.test.ts orders them", () => {
  const src = fs.readFileSync(path.join(root, 'test', 'layout', 'imports.test.ts'), 'utf8');
  const layers = JSON.parse((/export const LAYERS = (\[[^\]]*\])/.exec(src)?.[1] ?? '[]').replace(/'/g, '"')) as string[];
  const folders = layers.filter((l) => l !== 'index');
  assert.deepEqual(folders.filter((f) => !fs.existsSync(path.join(root, 'lib', f))), [], 'LAYERS names folders that do not exist');
  const listed = [...readme.matchAll(/^lib\/(\w+)\s/gm)].map((m) => m[1]);
  assert.deepEqual(listed, folders);
});

test('every decimal number in the README is recorded in docs/experiments.md', () => {
  const experiments = fs.readFileSync(path.join(root, 'docs', 'experiments.md'), 'utf8');
  const recorded = new Set(decimals(experiments));
  const unrecorded = decimals(readme).filter((n) => !recorded.has(n));
  assert.deepEqual(unrecorded, [], 'quote measurements only from docs/experiments.md (with their command and commit)');
});
