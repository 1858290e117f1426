/**
 * docs/notation.md cannot rot: every numbered equation of the paper (Eqs. (1)–(5), Sec. 3.1–3.3) is
 * mapped to exactly one function, that function exists in the named file (as an exported function or
 * a method of an exported class) and the file cites the equation; every identifier of the symbol
 * table appears in the file named beside it.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../lib/util/fsx';

const root = projectRoot();
const doc = fs.readFileSync(path.join(root, 'docs', 'notation.md'), 'utf8');

/** The paper's numbered equations: (1) L_LDM, (2) M_i2t, (3) M_clean, (4) fusion, (5) ℓ1. */
const PAPER_EQUATIONS = [1, 2, 3, 4, 5];

/** The table rows (cells, trimmed) of the section under `## <heading>`. */
export function tableRows(markdown: string, heading: string): string[][] {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start < 0) return [];
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  return section
    .split('\n')
    .filter((l) => l.startsWith('|') && !/^\|[-| ]+\|$/.test(l))
    .slice(1) // header
    .map((l) => l.slice(1, -1).split(' | ').map((c) => c.trim()));
}

/** The `backticked` names of a cell. */
function codeNames(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
}

/** The doc comment right above a line (the empty string if there is none). */
function docAbove(text: string, index: number): string {
  const before = text.slice(0, index).trimEnd();
  if (!before.endsWith('*/')) return '';
  return before.slice(before.lastIndexOf('/**'));
}

/** The doc comments of an exported function or class `owner` and, if given, of its `method`. */
export function docComments(text: string, owner: string, method?: string): string[] {
  const decl = new RegExp(`^export (?:abstract )?(?:class|(?:async )?function) ${owner}\\b`, 'm').exec(text);
  if (!decl) return [];
  const docs = [docAbove(text, decl.index)];
  if (method) {
    const m = new RegExp(`^[ \\t]+(?:async )?${method}[<(]`, 'm').exec(text.slice(decl.index));
    if (m) docs.push(docAbove(text, decl.index + m.index));
  }
  return docs;
}

/** Problems of one equation row [eq, paper, `function`, `file`]: the function must exist in the compiled module, and its (or its class's) doc comment must cite the equation. */
export function equationRowProblems(row: string[]): string[] {
  const [eq, , fnCell, fileCell] = row;
  const [fn] = codeNames(fnCell ?? '');
  const [file] = codeNames(fileCell ?? '');
  if (!fn || !file) return [`Eq. ${eq}: no \`function\` and \`file\` in the row`];
  const src = path.join(root, file);
  if (!fs.existsSync(src)) return [`Eq. ${eq}: ${file} does not exist`];
  const problems: string[] = [];
  const n = /\((\d+)\)/.exec(eq)?.[1];
  const [owner, method] = fn.split('.');
  const docs = docComments(fs.readFileSync(src, 'utf8'), owner, method);
  if (!n || !docs.some((d) => new RegExp(`Eq\\. ?\\(${n}\\)`).test(d))) problems.push(`Eq. ${eq}: the doc comment of ${fn} in ${file} does not cite Eq. (${n})`);
  // the compiled module beside this test: dist/test/docs → dist/lib/…
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(path.join(__dirname, '..', '..', file.replace(/\.ts$/, ''))) as Record<string, unknown>;
  const value = mod[owner];
  const proto = typeof value === 'function' ? (value.prototype as Record<string, unknown> | undefined) : undefined;
  const ok = method ? typeof proto?.[method] === 'function' : typeof value === 'function';
  if (!ok) problems.push(`Eq. ${eq}: ${file} exports no ${method ? `class ${owner} with a method ${method}` : `function ${fn}`}`);
  return problems;
}

test('the checker flags a missing function, a missing method and an uncited equation', () => {
  assert.deepEqual(equationRowProblems(['(5)', 'ℓ1', '`l1Loss`', '`lib/restore/train.ts`']), []);
  assert.match(equationRowProblems(['(5)', 'ℓ1', '`l2Loss`', '`lib/restore/train.ts`']).join(), /exports no function l2Loss/);
  assert.match(equationRowProblems(['(3)', "E'", '`CleanMapper.forward`', '`lib/guidance/m_clean.ts`']).join(), /no class CleanMapper with a method forward/);
  assert.match(equationRowProblems(['(4)', 'F', '`l1Loss`', '`lib/restore/train.ts`']).join(), /doc comment of l1Loss .* does not cite Eq\. \(4\)/);
  assert.match(equationRowProblems(['(1)', 'L', '`x`', '`lib/nowhere.ts`']).join(), /does not exist/);
});

test('docs/notation.md maps every numbered equation of the paper to ONE existing function that cites it', () => {
  const rows = tableRows(doc, 'Equations');
  const numbers = rows.map((r) => Number(/\((\d+)\)/.exec(r[0])?.[1]));
  assert.deepEqual(numbers, PAPER_EQUATIONS, 'one row per equation, in order');
  for (const r of rows) assert.equal(codeNames(r[2]).length, 1, `Eq. ${r[0]}: name exactly one function`);
  assert.deepEqual(rows.flatMap(equationRowProblems), []);
});

test('every identifier of the symbol table appears in the file named beside it', () => {
  const rows = tableRows(doc, 'Symbols');
  assert.ok(rows.length >= 25, `symbol table has ${rows.length} rows`);
  const bad: string[] = [];
  for (const [symbol, , ids, fileCell] of rows) {
    const [file] = codeNames(fileCell);
    const src = file && path.join(root, file);
    if (!src || !fs.existsSync(src)) {
      bad.push(`${symbol}: file ${fileCell} does not exist`);
      continue;
    }
    const text = fs.readFileSync(src, 'utf8');
    for (const id of codeNames(ids)) {
      for (const part of id.split('.')) if (!new RegExp(`\\b${part}\\b`).test(text)) bad.push(`${symbol}: ${file} has no ${part} (of \`${id}\`)`);
    }
  }
  assert.deepEqual(bad, []);
});

test('the training stages and deviations sections exist (lib/ comments point to them)', () => {
  assert.ok(tableRows(doc, 'Training stages').length >= 5);
  assert.match(doc, /\n## What deviates from the paper and why\n/);
});
