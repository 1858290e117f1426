/**
 * The whole method from the command line, as a user runs it (`npm start` = `tdr report`), on
 * checkpoints trained here with the ci presets: T2I → M_i2t → M_clean → restorers with and without
 * guidance → `tdr report` with its whole-method part. The network is blocked throughout.
 * Also: a missing checkpoint skips part 2 with a message naming the file and the command.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { readCheckpointMeta } from '../../lib/util/checkpoint';
import { initBackend } from '../../lib/backend';
import { loadRestorer, saveRestorer } from '../../lib/restore/train';
import { methodCheckpoints, shippedRestoreRebuild, SHIPPED_RESTORE_LEGS } from '../../lib/jobs/method';
import { projectRoot } from '../../lib/util/fsx';
import { tmpDir } from '../helpers/fixtures';

const root = projectRoot();
const cli = path.join(root, 'dist', 'lib', 'cli', 'main.js');
const blocker = path.join(root, 'test', 'helpers', 'no_network.js');
const dir = tmpDir('tdr-method-');
const runs = path.join(dir, 'runs');

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--require', blocker, cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, TDR_NETLOG: path.join(dir, 'net.log'), TDR_QUIET: '1', TDR_WORKERS: '1', TDR_GUIDANCE_CACHE: path.join(dir, 'gcache'), ...env },
    timeout: 10 * 60_000,
  });
  assert.equal(r.status, 0, `tdr ${args.join(' ')} exited ${r.status}\n${r.stderr}`);
  return r;
}

const guidance = path.join(runs, 'ci', 'guidance-ci.tdrc');
const guided = path.join(runs, 'restore-promptir-all-in-one-guided-ci', 'restore-promptir-all-in-one-guided-ci.tdrc');
const plain = path.join(runs, 'restore-promptir-all-in-one-plain-ci', 'restore-promptir-all-in-one-plain-ci.tdrc');

test('ci checkpoints of every stage, then tdr report runs degrade → guidance → restoration with and without guidance → metrics', () => {
  run(['train', 't2i', '--preset', 'ci', '--runs', runs]);
  run(['train', 'i2t', '--preset', 'ci', '--runs', runs]);
  run(['train', 'clean', '--preset', 'ci', '--runs', runs]);
  run(['train', 'restore', '--backbone', 'promptir', '--preset', 'ci', '--runs', runs, '--guidance-checkpoint', guidance]);
  run(['train', 'restore', '--backbone', 'promptir', '--no-guidance', '--preset', 'ci', '--runs', runs]);
  for (const f of [guidance, guided, plain]) assert.ok(fs.existsSync(f), f);
  // the guided restorer names the guidance model it was trained with (file and sha256 of its bytes)
  const gm = readCheckpointMeta(guided).guidanceModel as { file: string; sha256: string };
  assert.equal(gm.sha256, createHash('sha256').update(fs.readFileSync(guidance)).digest('hex'));
  assert.equal(path.resolve(gm.file), path.resolve(guidance));
  assert.equal(readCheckpointMeta(guided).rebuild, `tdr train restore --backbone promptir --tasks all-in-one --preset ci --guidance-checkpoint ${guidance}`);
  assert.equal(readCheckpointMeta(plain).guidanceModel, null);
  // each trained model ships with its loss log beside it
  const t2iCi = path.join(runs, 'ci', 't2i-ci.tdrc');
  for (const f of [t2iCi, guidance, guided, plain]) {
    const log = f.replace(/\.tdrc$/, '.log.jsonl');
    const recs = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(recs.length >= 3 && recs.every((r) => Number.isFinite(r.l_total)), log);
  }

  const html = path.join(dir, 'report.html');
  const r = run(['report', '--limit', '1', '--max-side', '64', '--method-photos', '2', '--guidance-checkpoint', guidance, '--guided-checkpoint', guided, '--plain-checkpoint', plain, '--out', html], { TDR_GUIDANCE_CACHE: path.join(dir, 'gcache-report') });
  // part 2's table: one row per task with finite numbers
  for (const task of ['noise25', 'rain', 'haze']) {
    // (part 1's degradation table has rows starting with the same task names: read after part 2's caption)
    const part2 = r.stdout.slice(r.stdout.indexOf('Restoration with and without guidance'));
    const line = part2.split('\n').find((l) => l.startsWith(`| ${task} `));
    assert.ok(line, `a table row for ${task} in\n${r.stdout}`);
    const nums = line.split('|').slice(3, -1).map((c) => Number(c.trim()));
    assert.equal(nums.length, 8, line); // images, PSNR input/unguided/guided, gain, guided with another photo's G, SSIM unguided/guided
    assert.ok(nums.every(Number.isFinite), line);
    assert.equal(nums[0], 2, line);
  }
  assert.match(r.stdout, /gain \(dB\) \| PSNR guided, another photo's G \|/);
  // comparison rows: the classical references on the same inputs (none for rain)
  const part3 = r.stdout.slice(r.stdout.indexOf('Classical references (no learned weights)'));
  assert.match(part3.split('\n').find((l) => l.startsWith('| haze ')) ?? '', /^\| haze \| DCP \+ GF \| \d+\.\d\d \| \d\.\d{4} \| -?\d+\.\d\d \| -?\d+\.\d\d \|$/);
  assert.match(part3.split('\n').find((l) => l.startsWith('| noise25 ')) ?? '', /^\| noise25 \| NLM \| \d+\.\d\d \|/);
  assert.match(part3.split('\n').find((l) => l.startsWith('| rain ')) ?? '', /^\| rain \| — \| — \| — \| — \| — \|$/);
  assert.match(part3, /He, Sun, Tang/);
  const page = fs.readFileSync(html, 'utf8');
  assert.match(page, /<h2>The whole method<\/h2>/);
  assert.match(page, /G\(E'_txt\)/);
  // 2 photos × 3 tasks × 6 images (X, G(E_txt), G(E'_txt), unguided, guided, Y) + the degradation gallery
  assert.ok((page.match(/<img /g) ?? []).length >= 36, 'images of the whole method');
  assert.equal(fs.readdirSync(path.join(dir, 'gcache-report')).filter((f) => f.endsWith('.png')).length, 12, 'G(E_txt) and G(E\'_txt) cached for 6 inputs (the control generates none)');
  assert.ok(!fs.existsSync(path.join(dir, 'net.log')) || fs.readFileSync(path.join(dir, 'net.log'), 'utf8') === '', 'no network access');
  assert.doesNotMatch(r.stderr, /was trained with the guidance of/, 'the guided restorer was trained with this guidance model');
});

test('tdr restore and tdr eval take G from the guidance model the restorer was trained with, unless told otherwise', () => {
  const x = path.join(dir, 'x.png');
  run(['degrade', path.join(root, 'data', 'smoke', 'black-canyon.jpg'), '--task', 'noise', '--sigma', '25', '--seed', '1', '--out', x]);
  // no TDR_GUIDANCE_CHECKPOINT: the default would be the shipped guidance-demo.tdrc, another model
  const env = { TDR_GUIDANCE_CHECKPOINT: '' };
  const own = run(['restore', x, '--backbone', 'promptir', '--checkpoint', guided, '--tile', '64', '--out', path.join(dir, 'r-own.png')], env);
  assert.doesNotMatch(own.stderr, /note:/, own.stderr);
  const other = path.join(root, 'data', 'checkpoints', 'guidance-demo.tdrc');
  const told = run(['restore', x, '--backbone', 'promptir', '--checkpoint', guided, '--tile', '64', '--guidance-checkpoint', other, '--out', path.join(dir, 'r-other.png')], env);
  assert.match(told.stderr, /note: .* was trained with the guidance of .*guidance-ci\.tdrc .* but gets G from data\/checkpoints\/guidance-demo\.tdrc/);
  const ev = run(['eval', '--checkpoint', plain, '--checkpoint', guided, '--out-dir', path.join(dir, 'eval-own'), '--limit', '1', '--no-classical'], env);
  assert.doesNotMatch(ev.stderr, /note:/, ev.stderr);
  // npm start (tdr report) picks it the same way
  const was = process.env.TDR_GUIDANCE_CHECKPOINT;
  delete process.env.TDR_GUIDANCE_CHECKPOINT;
  try {
    assert.equal(path.resolve(methodCheckpoints({ guidedCheckpoint: guided, plainCheckpoint: plain }).files.guidance), path.resolve(guidance));
  } finally {
    if (was !== undefined) process.env.TDR_GUIDANCE_CHECKPOINT = was;
  }
});

test('tdr report says so when the guided restorer was trained with another guidance model than the one making G', async () => {
  await initBackend({ quiet: true });
  const r = loadRestorer(guided, { guidance: true });
  const other = path.join(dir, 'guided-other.tdrc');
  saveRestorer(other, r.params, r.cfg, { ...r.meta, guidanceModel: { file: 'data/checkpoints/old-guidance.tdrc', sha256: 'c'.repeat(64) } });
  r.params.dispose();
  const html = path.join(dir, 'report-other.html');
  const out = run(['report', '--limit', '1', '--max-side', '64', '--method-photos', '1', '--guidance-checkpoint', guidance, '--guided-checkpoint', other, '--plain-checkpoint', plain, '--out', html], { TDR_GUIDANCE_CACHE: path.join(dir, 'gcache-report') });
  assert.match(out.stderr, /note: .*guided-other\.tdrc was trained with the guidance of data\/checkpoints\/old-guidance\.tdrc \(sha256 cccccccccccc…\) but gets G from .*guidance-ci\.tdrc/);
  assert.match(fs.readFileSync(html, 'utf8'), /<b>Note:<\/b> .*guided-other\.tdrc was trained with the guidance of data\/checkpoints\/old-guidance\.tdrc/);
});

test('tdr guide-check measures the ci guidance model: word distances for every task, guidance statistics, task accuracy', () => {
  const r = run(['guide-check', '--checkpoint', guidance, '--photos', '2', '--steps', '2', '--tasks', 'noise,haze', '--json']);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.words.map((w: { task: string }) => w.task), ['noise', 'rain', 'haze', 'motion', 'defocus']);
  for (const w of j.words) {
    assert.ok(w.before > 0 && w.after > 0 && Math.abs(w.ratio - w.after / w.before) < 1e-9, JSON.stringify(w));
    assert.equal(w.photos, 2);
  }
  assert.deepEqual(j.guidance.map((g: { task: string; statistic: string }) => [g.task, g.statistic]), [['noise', 'hfEnergy'], ['haze', 'darkChannel']]);
  for (const g of j.guidance) assert.ok([g.clean, g.input, g.raw, g.restored, g.cleanGuidance, g.ratio].every(Number.isFinite) && g.photos === 2, JSON.stringify(g));
  // degradation raises each statistic of the input over the clean photo
  for (const g of j.guidance) assert.ok(g.input > g.clean, JSON.stringify(g));
  assert.ok(j.taskAccuracy.raw >= 0 && j.taskAccuracy.raw <= 1 && j.taskAccuracy.restored >= 0 && j.taskAccuracy.restored <= 1);
  assert.equal(j.chance, 0.5);
  assert.equal(j.content.photos, 2);
  for (const k of ['raw', 'restored']) assert.ok(j.content[k].meanRank >= 1 && j.content[k].meanRank <= 2 && j.content[k].top1 >= 0 && j.content[k].top1 <= 1, JSON.stringify(j.content));
  // a task's degraded inputs do not depend on which other tasks are measured
  const hazeOnly = JSON.parse(run(['guide-check', '--checkpoint', guidance, '--photos', '2', '--steps', '2', '--tasks', 'haze', '--json']).stdout);
  assert.equal(hazeOnly.guidance[0].input, j.guidance[1].input);
  assert.equal(hazeOnly.guidance[0].raw, j.guidance[1].raw);
  // --split train measures the training photos instead (other photos: other clean and degraded statistics)
  assert.equal(j.split, 'val');
  const train = JSON.parse(run(['guide-check', '--checkpoint', guidance, '--photos', '2', '--steps', '2', '--tasks', 'haze', '--split', 'train', '--json']).stdout);
  assert.equal(train.split, 'train');
  assert.equal(train.photos, 2);
  assert.notEqual(train.guidance[0].clean, hazeOnly.guidance[0].clean);
  const badSplit = spawnSync(process.execPath, [cli, 'guide-check', '--split', 'smoke'], { encoding: 'utf8' });
  assert.equal(badSplit.status, 2);
  assert.match(badSplit.stderr, /--split/);
  const bad = spawnSync(process.execPath, [cli, 'guide-check', '--tasks', 'noise,fog'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--tasks/);
});

test('tdr guide-check --haze-probe: ridge probes from the words and from the pixels to the haze numbers, measured on validation crops', () => {
  const j = JSON.parse(run(['guide-check', '--checkpoint', guidance, '--haze-probe', '--photos', '3', '--json']).stdout).hazeProbe;
  assert.deepEqual([j.photos, j.crops], [{ train: 38, val: 3 }, { train: 38 * 6 * 4, val: 3 * 8 }]);
  assert.deepEqual(j.probes.map((p: { features: string; kernel: string }) => `${p.features}/${p.kernel}`), ['words/linear', 'words/rbf', 'pixels/linear', 'pixels/rbf']);
  assert.equal(j.probes[2].dims, 304);
  for (const p of j.probes) {
    const grid = p.kernel === 'linear' ? [0.1, 0.3, 1, 3, 10, 30, 100] : [0.001, 0.01, 0.1, 1, 10];
    assert.ok(p.r2.beta <= 1 && p.r2.A <= 1 && p.cvR2.beta <= 1 && p.cvR2.A <= 1 && Number.isFinite(p.thumb4) && grid.includes(p.lambda), JSON.stringify(p));
    assert.equal(p.width === undefined, p.kernel === 'linear', JSON.stringify(p));
  }
  assert.equal(j.cleanWords, undefined, "the ci text-to-image model has no words' layout map to read stage 2 by");
  assert.ok(j.thumb4.priorMean > j.thumb4.input, 'undoing an average haze shows the scene more truly than the hazy crop');
  const text = run(['guide-check', '--checkpoint', guidance, '--haze-probe', '--photos', '3']).stdout;
  assert.match(text, /\| the words E_txt\(X\) \| \d+ \| Gaussian kernel, width [\d.]+ \|/);
  const bad = spawnSync(process.execPath, [cli, 'guide-check', '--checkpoint', guidance, '--haze-probe', '--split', 'train'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--haze-probe .* --split does not apply/);
  // the shipped words guidance (the default checkpoint) on the first 4 training photos, 3 crops each: its
  // text-to-image model has a layout map, so stage 2 is also read out on the words' maps
  const args = ['guide-check', '--haze-probe', '--photos', '3', '--train-photos', '4', '--crops-per-photo', '3'];
  const few = JSON.parse(run([...args, '--json']).stdout).hazeProbe;
  assert.deepEqual([few.photos, few.crops], [{ train: 4, val: 3 }, { train: 4 * 3 * 4, val: 3 * 8 }], 'the first 4 training photos, 3 crops each, 4 hazes a crop');
  const m = few.cleanWords.map4;
  assert.deepEqual(Object.keys(m), ['input', 'mClean', 'kernelRidge', 'clean', 'colourPath']);
  assert.ok(m.colourPath.clean > m.mClean && m.colourPath.read > m.input, `the colour path carries the map's colours: ${JSON.stringify(m)}`);
  assert.equal(few.cleanWords.width, few.probes[1].width, 'the kernel ridge of the clean words uses the width chosen for β and A');
  assert.ok(m.clean > m.input + 5 && m.mClean > m.input + 3 && m.kernelRidge > m.input, `the clean words' map is truer than the hazy words', and both read-outs move towards it: ${JSON.stringify(m)}`);
  assert.match(run(args).stdout, /stage 2 as a read-out: .* kernel ridge .* the clean crop's own words E_txt\(Y\) [\d.]+ dB\nthe hazy words with only the mapper's linear colour path .* [\d.]+ dB$/m);
  const stray = spawnSync(process.execPath, [cli, 'guide-check', '--checkpoint', guidance, '--train-photos', '4'], { encoding: 'utf8' });
  assert.equal(stray.status, 2);
  assert.match(stray.stderr, /--train-photos sets the training crops of --haze-probe/);
});

test('tdr report with a missing restorer checkpoint: part 2 is skipped, naming the file and the command that builds it', () => {
  const html = path.join(dir, 'report2.html');
  const missing = path.join(dir, 'nope', 'restore-guided.tdrc');
  const r = run(['report', '--limit', '1', '--max-side', '64', '--guidance-checkpoint', guidance, '--guided-checkpoint', missing, '--plain-checkpoint', plain, '--out', html]);
  assert.match(r.stdout, /whole method skipped/);
  // the shipped pair's rebuild command, with this guidance model and this output
  const build = shippedRestoreRebuild('promptir', guidance, missing);
  assert.ok(r.stdout.includes(`restore-guided.tdrc is missing (build it: ${build})`), r.stdout);
  // its legs: each to its step, every one after the first on from the model of the one before
  const legs = build.split(' && ');
  assert.equal(legs.length, SHIPPED_RESTORE_LEGS.guided.length, build);
  legs.forEach((leg, i) => {
    assert.ok(leg.startsWith(`npx tdr train restore --backbone promptir --config data/configs/restore-demo-wide.json --guidance-checkpoint ${guidance} `) && leg.endsWith(` --out ${missing}`), leg);
    assert.ok(leg.includes(`${i > 0 ? ` --init-from ${missing}` : ''} --stop-at ${SHIPPED_RESTORE_LEGS.guided[i]} `), leg);
  });
  assert.match(fs.readFileSync(html, 'utf8'), /Skipped: a checkpoint is missing/);
});

test('tdr report refuses a bad option value naming it', () => {
  const r = spawnSync(process.execPath, [cli, 'report', '--backbone', 'unet'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /backbone/);
});
