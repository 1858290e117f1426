/**
 * Comments cite what a reader of this repository can open: the paper (section, equation), the
 * official code (mrluin/TextualDegRemoval file and function), a published paper, or docs/. Never a
 * design note that is not in the repository ("DESIGN §…", "REFERENCE §…", "STYLE §…"), a tracker
 * issue of this project ("issue 5", "issue #7") or a path on the machine it was written on (/work/…).
 * A GitHub issue of another project is cited by its address (github.com/<owner>/<repo>/issues/<n>).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../lib/util/fsx';

/** What a citation must not look like, with the reason printed on a hit. */
export const UNOPENABLE: Array<{ re: RegExp; why: string }> = [
  { re: /\b(?:DESIGN|REFERENCE|STYLE)(?:\.md)? ?§/, why: 'a design note that is not in the repository' },
  { re: /\bissue #?\d/i, why: "an issue number of this project's tracker" },
  { re: /(?:^|[^\w.])\/work\//, why: 'a path outside the repository' },
];

/** Every hit of `UNOPENABLE` in a text: `line: excerpt (why)`. */
export function unopenableCitations(text: string): string[] {
  const hits: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const { re, why } of UNOPENABLE) if (re.test(line)) hits.push(`${i + 1}: ${line.trim().slice(0, 120)} (${why})`);
  });
  return hits;
}

const root = projectRoot();

function files(dir: string, keep: (f: string) => boolean, out: string[] = []): string[] {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'build' && e.name !== 'node_modules') files(p, keep, out);
    } else if (keep(p)) out.push(p);
  }
  return out;
}

test('the checker flags design-note sections, tracker issues and machine paths, and passes real citations', () => {
  for (const bad of ['see DESIGN §2', '(REFERENCE §1, gap 5)', 'STYLE §7.6', 'measured for issue 5', '(issue #7 item 4)', 'Issue 3', 'in /work/shared/paper.txt']) {
    assert.equal(unopenableCitations(bad).length, 1, bad);
  }
  for (const good of [
    'paper Sec. 3.2, Eq. (2)',
    'mrluin/TextualDegRemoval scripts/train/main_train_tr_mapping.py `validation()`',
    'github.com/mrluin/TextualDegRemoval/issues/2',
    'docs/experiments.md, "What the text-to-image model needed"',
    'err.issues.slice(0, 10)',
    'lib/work/x.ts',
  ]) {
    assert.deepEqual(unopenableCitations(good), [], good);
  }
});

test('every docs/ page a lib/ comment cites exists, and so does every section it names in quotes', () => {
  const bad: string[] = [];
  let refs = 0;
  for (const f of files(path.join(root, 'lib'), (p) => p.endsWith('.ts'))) {
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/docs\/([\w-]+\.md)(?:[, §]+"([^"]+)")?/g)) {
      refs++;
      const page = path.join(root, 'docs', m[1]);
      if (!fs.existsSync(page)) bad.push(`${path.relative(root, f)}: docs/${m[1]} does not exist`);
      else if (m[2] && !fs.readFileSync(page, 'utf8').split('\n').some((l) => /^#+ /.test(l) && l.includes(m[2]))) bad.push(`${path.relative(root, f)}: docs/${m[1]} has no section "${m[2]}"`);
    }
  }
  assert.ok(refs > 0, 'no lib/ comment cites docs/');
  assert.deepEqual(bad, []);
});

test('no file in lib/, native/src, scripts/, notebooks/ or test/ cites what a reader cannot open', () => {
  const self = path.join(root, 'test', 'docs', 'citations.test.ts');
  const sources = [
    ...files(path.join(root, 'lib'), (f) => !f.endsWith('.d.ts')),
    ...files(path.join(root, 'native', 'src'), () => true),
    ...files(path.join(root, 'scripts'), () => true),
    ...files(path.join(root, 'notebooks'), (f) => f.endsWith('.ipynb')),
    ...files(path.join(root, 'test'), (f) => /\.(ts|js|py)$/.test(f) && f !== self),
  ];
  assert.ok(sources.length > 100, `expected the project's sources, found ${sources.length} files`);
  const bad = sources.flatMap((f) => unopenableCitations(fs.readFileSync(f, 'utf8')).map((h) => `${path.relative(root, f)}:${h}`));
  assert.deepEqual(bad, [], `cite the paper, the official code, a published paper or docs/ instead:\n${bad.join('\n')}`);
});
