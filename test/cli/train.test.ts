import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { projectRoot } from '../../lib/util/fsx';
import { PRESETS } from '../../lib/t2i/presets';
import { tmpDir } from '../helpers/fixtures';

const cli = path.join(projectRoot(), 'dist', 'lib', 'cli', 'main.js');
const dir = tmpDir('tdr-cli-train-');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, TDR_QUIET: '1' } });

function config(name: string, value: unknown): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, typeof value === 'string' ? value : JSON.stringify(value));
  return f;
}

const cases: Array<[string, string[], RegExp]> = [
  ['unknown stage', ['train', 'everything'], /stage must be one of ae, t2i, i2t, clean, restore, got 'everything'/],
  ['unknown preset', ['train', 'ae', '--preset', 'huge'], /--preset: .*(ci|demo|paper)/],
  ['missing config file', ['train', 'ae', '--config', path.join(dir, 'nope.json')], /nope\.json: no such file/],
  ['config that is not JSON', ['train', 'ae', '--config', config('bad.json', '{steps: 3')], /bad\.json: not valid JSON/],
  ['negative steps', ['train', 'ae', '--config', config('neg.json', { ...PRESETS.ci, aeTrain: { ...PRESETS.ci.aeTrain, steps: -5 } })], /neg\.json: aeTrain\.steps: /],
  ['NaN-like learning rate', ['train', 'ae', '--config', config('nan.json', { ...PRESETS.ci, aeTrain: { ...PRESETS.ci.aeTrain, lr: 'NaN' } })], /nan\.json: aeTrain\.lr: /],
  ['misspelt key', ['train', 'ae', '--config', config('typo.json', { ...PRESETS.ci, imagesize: 32 })], /typo\.json: .*imagesize/],
  ['--preset and --config', ['train', 'ae', '--preset', 'ci', '--config', config('ok.json', PRESETS.ci)], /give --preset or --config, not both/],
  ['--stop-at on another stage', ['train', 'ae', '--preset', 'ci', '--stop-at', '3'], /--stop-at is an option of 'tdr train t2i', not of 'ae'/],
  ['--stop-at past the schedule', ['train', 't2i', '--preset', 'ci', '--stop-at', '100000'], /--stop-at 100000: past the end of the schedule \(unetTrain\.steps \d+\)/],
  ['--stop-at that is no step', ['train', 't2i', '--preset', 'ci', '--stop-at', '2.5'], /--stop-at: /],
];

for (const [what, args, msg] of cases) {
  test(`tdr train: ${what} → exit 2, one line naming it, no run folder`, () => {
    const runs = path.join(dir, `runs-${what.replace(/\W+/g, '_')}`);
    const r = run(...args, '--runs', runs);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, msg);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
    assert.equal(fs.existsSync(runs), false, 'nothing was trained');
  });
}

test('tdr sample: a checkpoint of another kind / a text file → exit 2 naming it, no image', () => {
  const out = path.join(dir, 'x.png');
  const txt = config('not-a-ckpt.tdrc', 'hello');
  const r = run('sample', '--prompt', 'a photo of a kite', '--seed', '1', '--checkpoint', txt, '--out', out);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /not-a-ckpt\.tdrc: not a tdr checkpoint/);
  assert.equal(fs.existsSync(out), false);
});

test('tdr train t2i --config FILE: the model goes to <runs>/<preset>/t2i-<preset>.tdrc with its loss log beside it and a rebuild command naming the config', async () => {
  const { readCheckpointMeta } = await import('../../lib/util/checkpoint');
  const f = config('t2i-ci-x.json', { ...PRESETS.ci, preset: 'ci-x', taskWeights: { haze: 2 } });
  const runs = path.join(dir, 'runs-config');
  const r = run('train', 't2i', '--config', f, '--runs', runs);
  assert.equal(r.status, 0, r.stderr);
  const out = path.join(runs, 'ci-x', 't2i-ci-x.tdrc');
  const meta = readCheckpointMeta(out);
  assert.equal(meta.rebuild, `tdr train t2i --config ${f}`);
  assert.equal((meta.config as { taskWeights: { haze: number } }).taskWeights.haze, 2);
  const recs = fs.readFileSync(out.replace(/\.tdrc$/, '.log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual([...new Set(recs.map((x) => x.stage))], ['ae', 't2i']);
  assert.equal(recs.filter((x) => x.stage === 't2i').length, PRESETS.ci.unetTrain.steps);
  // a snapshot of the schedule, on that model's autoencoder: the UNet stage stops at step 2 of its schedule
  const snap = path.join(runs, 'snap.tdrc');
  const s2 = run('train', 't2i', '--config', f, '--runs', path.join(dir, 'runs-stop-at'), '--ae-from', out, '--stop-at', '2', '--out', snap);
  assert.equal(s2.status, 0, s2.stderr);
  const m2 = readCheckpointMeta(snap);
  assert.equal(m2.rebuild, `tdr train t2i --config ${f} --ae-from ${out} --stop-at 2`);
  assert.equal(m2.steps, 2);
  assert.equal(m2.scheduleSteps, PRESETS.ci.unetTrain.steps);
});
