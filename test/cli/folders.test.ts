/**
 * `tdr restore <folder> --out <folder>` and `tdr degrade <folder>` from the command line (a child
 * process, as a user runs it) on a folder of mixed files: images restored with their names, files that
 * are not images skipped, a corrupt image named in one line while the others go on, exit ≠ 0 at the
 * end, inputs never overwritten (the input folder as --out refused).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { initBackend } from '../../lib/backend';
import { saveCiRestorer } from '../helpers/restorers';
import { readImage } from '../../lib/data/io';
import { projectRoot } from '../../lib/util/fsx';
import { patternBytes, tmpDir, writePattern } from '../helpers/fixtures';

const dir = tmpDir('tdr-cli-folders-');
const inDir = path.join(dir, 'photos');
const ck = path.join(dir, 'plain.tdrc');
const cli = path.join(projectRoot(), 'dist', 'lib', 'cli', 'main.js');

/** sha256 of every file under a folder (recursive), by relative path. */
function snapshot(root: string, out: Record<string, string> = {}, at = root): Record<string, string> {
  for (const e of fs.readdirSync(at, { withFileTypes: true })) {
    const p = path.join(at, e.name);
    if (e.isDirectory()) snapshot(root, out, p);
    else out[path.relative(root, p)] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  }
  return out;
}

function tdr(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, TDR_QUIET: '1' } });
}

test.before(async () => {
  await initBackend({ quiet: true });
  saveCiRestorer(ck);
  fs.mkdirSync(path.join(inDir, 'sub'), { recursive: true });
  await writePattern(path.join(inDir, 'a.png'), 24, 20);
  await sharp(Buffer.from(patternBytes(30, 36)), { raw: { width: 36, height: 30, channels: 3 } }).jpeg().toFile(path.join(inDir, 'b.jpg'));
  fs.writeFileSync(path.join(inDir, 'notes.txt'), 'not an image\n');
  const png = fs.readFileSync(path.join(inDir, 'a.png'));
  fs.writeFileSync(path.join(inDir, 'c-corrupt.png'), png.subarray(0, 60)); // a PNG cut short
  await writePattern(path.join(inDir, 'sub', 'd.png'), 16, 16);
});
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('tdr restore <folder>: images restored with their names and sizes, the rest skipped, the bad file in one line, exit 2 at the end, inputs untouched', () => {
  const before = snapshot(inDir);
  const outDir = path.join(dir, 'restored');
  const r = tdr(['restore', inDir, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', ck, '--out', outDir]);
  assert.equal(r.status, 2, r.stderr);
  assert.deepEqual(fs.readdirSync(outDir).sort(), ['a.png', 'b.jpg'], 'the two good images, nothing else');
  const lines = r.stderr.trim().split('\n');
  const bad = lines.filter((l) => l.includes('c-corrupt.png'));
  assert.equal(bad.length, 1, r.stderr);
  assert.match(bad[0], /^tdr restore: .*c-corrupt\.png: /);
  assert.match(r.stderr, /skipping 2 entries that are not images \(notes\.txt, sub\)/);
  assert.match(r.stderr, /1 of 3 file\(s\) failed/);
  assert.doesNotMatch(r.stderr, /internal error/);
  // b.jpg was processed after the bad file: the others go on
  assert.match(r.stdout, /b\.jpg: 36x30/);
  assert.deepEqual(snapshot(inDir), before, 'inputs never overwritten');
  return Promise.all([readImage(path.join(outDir, 'a.png')), readImage(path.join(outDir, 'b.jpg'))]).then(([a, b]) => {
    assert.deepEqual([a.height, a.width, b.height, b.width], [24, 20, 30, 36]);
  });
});

test('tdr restore / degrade: the input folder as --out is refused before anything is written; a folder of only good files exits 0', () => {
  const before = snapshot(inDir);
  for (const args of [
    ['restore', inDir, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', ck, '--out', inDir],
    ['restore', inDir, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', ck, '--out', path.join(inDir, '..', 'photos')],
    ['degrade', inDir, '--task', 'noise', '--seed', '1', '--out', inDir],
  ]) {
    const r = tdr(args);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr.trim(), /^tdr (restore|degrade): --out .*photos is the input folder; refusing to write over the inputs/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
  assert.deepEqual(snapshot(inDir), before);
  const good = path.join(dir, 'good');
  fs.mkdirSync(good);
  fs.copyFileSync(path.join(inDir, 'a.png'), path.join(good, 'a.png'));
  fs.copyFileSync(path.join(inDir, 'b.jpg'), path.join(good, 'b.jpg'));
  const r = tdr(['degrade', good, '--task', 'rain', '--seed', '3', '--out', path.join(dir, 'degraded')]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'degraded')).sort(), ['a.png', 'b.jpg']);
});
