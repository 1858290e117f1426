/**
 * Nothing reaches the network at run time: the CLI's commands run with every network call
 * (sockets to non-loopback hosts, DNS, fetch) blocked and recorded by test/helpers/no_network.js.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../lib/util/fsx';
import { tmpDir } from '../helpers/fixtures';

const root = projectRoot();
const cli = path.join(root, 'dist', 'lib', 'cli', 'main.js');
const blocker = path.join(root, 'test', 'helpers', 'no_network.js');
const dir = tmpDir('tdr-offline-');
const netlog = path.join(dir, 'net.log');

function run(args: string[]) {
  return spawnSync(process.execPath, ['--require', blocker, cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, TDR_NETLOG: netlog, TDR_QUIET: '1', TDR_WORKERS: '1' },
    timeout: 10 * 60_000,
  });
}

test('the blocker itself works (a fetch is refused and recorded)', () => {
  const r = spawnSync(process.execPath, ['--require', blocker, '-e', 'fetch("https://example.org").catch(e => { console.log(e.message); })'], { encoding: 'utf8', env: { ...process.env, TDR_NETLOG: netlog } });
  assert.match(r.stdout, /network access blocked/);
  assert.match(fs.readFileSync(netlog, 'utf8'), /fetch https:\/\/example\.org/);
  fs.rmSync(netlog);
});

test('degrade, metrics, report, train (ci), sample and t2i-check run with the network blocked and never try it', () => {
  const smoke = path.join(root, 'data', 'smoke', 'black-canyon.jpg');
  const out = path.join(dir, 'noisy.png');
  const steps: string[][] = [
    ['degrade', smoke, '--task', 'noise', '--sigma', '25', '--seed', '1', '--out', out],
    ['metrics', smoke, out, '--json'],
    ['report', '--limit', '1', '--max-side', '64', '--out', path.join(dir, 'report.html')],
    ['train', 't2i', '--preset', 'ci', '--runs', path.join(dir, 'runs')],
    ['sample', '--prompt', 'a photo of a kite', '--seed', '1', '--checkpoint', path.join(dir, 'runs', 'ci', 't2i-ci.tdrc'), '--out', path.join(dir, 'kite.png')],
    ['t2i-check', '--checkpoint', path.join(dir, 'runs', 'ci', 't2i-ci.tdrc'), '--seeds', '1', '--captions', '1', '--content', '1', '--photos', '1', '--json'],
  ];
  let last = '';
  for (const args of steps) {
    const r = run(args);
    assert.equal(r.status, 0, `tdr ${args.join(' ')} failed:\n${r.stderr}`);
    last = r.stdout;
  }
  // t2i-check's words reconstruction reports the PSNR of G to its own photo at 16×16 and 4×4 (WordsReconstruction)
  const rec = JSON.parse(last.trim().split('\n').pop()!).reconstruction;
  assert.ok(Number.isFinite(rec.psnrOwn16) && Number.isFinite(rec.psnrOwn4) && rec.psnrOwn4 > 0, JSON.stringify(rec));
  assert.equal(fs.existsSync(netlog) ? fs.readFileSync(netlog, 'utf8') : '', '', 'no network attempts');
});
