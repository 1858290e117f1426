import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { projectRoot } from '../../lib/util/fsx';

const cli = path.join(projectRoot(), 'dist', 'lib', 'cli', 'main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, TDR_QUIET: '1' } });

test('tdr --help lists every command and the exit codes', () => {
  const r = run('--help');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /usage: tdr <command>/);
  assert.match(r.stdout, /exit codes: 0 ok/);
  for (const name of ['degrade', 'metrics', 'bench']) assert.match(r.stdout, new RegExp(`\\n  ${name} `), `tdr --help lists ${name}`);
});

test('tdr with no command prints help and exits 2', () => {
  const r = run();
  assert.equal(r.status, 2);
  assert.match(r.stdout, /usage:/);
});

test('tdr <unknown> names it in one line, exit 2, no stack trace', () => {
  const r = run('frobnicate');
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /unknown command 'frobnicate'/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
});

for (const name of ['degrade', 'metrics', 'bench']) {
  test(`tdr ${name} --help prints its usage`, () => {
    const r = run(name, '--help');
    assert.equal(r.status, 0);
    assert.match(r.stdout, new RegExp(`tdr ${name}`));
  });
}

test('an unknown option is one line naming it, exit 2', () => {
  const r = run('metrics', '--no-such-option', 'a.png', 'b.png');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--no-such-option/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('a required option left out is named as required, a word where a number belongs is shown as given (one line, exit 2)', () => {
  const none = run('sample');
  assert.equal(none.status, 2);
  assert.equal(none.stderr.trim(), "tdr sample: --prompt, --seed, --out are required; see 'tdr sample --help'");
  const both = run('sample', '--prompt', 'a photo of a cat', '--seed', 'abc');
  assert.equal(both.status, 2);
  assert.equal(both.stderr.trim(), "tdr sample: --out is required; --seed: expected a number, got 'abc'; see 'tdr sample --help'");
  const word = run('eval', '--table', '1', '--checkpoint', 'a.tdrc', '--out-dir', 'o', '--limit', 'ten');
  assert.equal(word.status, 2);
  assert.match(word.stderr, /^tdr eval: --limit: expected a number, got 'ten'\n$/);
});
