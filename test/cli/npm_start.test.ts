/**
 * The README's main command, as written: `npm start` (= `tdr report`). Run through npm with a small
 * photo count so that it is quick; arguments after `--` reach the report command.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../lib/util/fsx';
import { tmpDir } from '../helpers/fixtures';

test('npm start runs the main job (tdr report) and writes the HTML report', () => {
  const out = path.join(tmpDir('tdr-start-'), 'report.html');
  const r = spawnSync('npm', ['start', '--silent', '--', '--limit', '1', '--max-side', '64', '--method-photos', '0', '--out', out], {
    cwd: projectRoot(),
    encoding: 'utf8',
    env: { ...process.env, TDR_QUIET: '1' },
    timeout: 10 * 60_000,
  });
  assert.equal(r.status, 0, `npm start exited ${r.status}\n${r.stderr}`);
  assert.match(r.stdout, /\| noise /);
  assert.ok(fs.existsSync(out), out);
  assert.match(fs.readFileSync(out, 'utf8'), /<h1>tdr report<\/h1>/);
});
