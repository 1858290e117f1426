/**
 * `tdr restore`, `tdr eval` and `tdr train restore` (trainRestoreCommandRun), run in-process.
 * Bad inputs → exit 2 with one line naming the problem, and no output file; good runs with tiny
 * (untrained, ci-preset) checkpoints.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT } from '../../lib/cli/command';
import { UserError } from '../../lib/util/errors';
import { restoreCommand, trainRestoreCommandRun } from '../../lib/cli/commands/restore';
import { evalCommand } from '../../lib/cli/commands/eval';
import { makeImage } from '../../lib/data/image';
import { readImage, writeImage, ImageError } from '../../lib/data/io';
import { initBackend } from '../../lib/backend';
import { RESTORE_PRESETS } from '../../lib/restore/config';
import { readCheckpointMeta } from '../../lib/util/checkpoint';
import { saveCiRestorer } from '../helpers/restorers';
import { tmpDir } from '../helpers/fixtures';

/** exit code + message as main.ts would produce them (user-facing errors → 2, one line). */
async function run(fn: () => Promise<number>): Promise<{ code: number; error?: string }> {
  const orig = process.stdout.write.bind(process.stdout);
  (process.stdout as unknown as { write: (c: unknown, ...r: unknown[]) => boolean }).write = (c: unknown, ...r: unknown[]) =>
    typeof c === 'string' ? true : (orig as (c: unknown, ...r: unknown[]) => boolean)(c, ...r);
  try {
    return { code: await fn() };
  } catch (e) {
    const userFacing = e instanceof UserError;
    return { code: userFacing ? EXIT.usage : EXIT.internal, error: (e as Error).message };
  } finally {
    process.stdout.write = orig;
  }
}

const dir = tmpDir('tdr-cli-restore-');
// the 'text' guidance source must find no checkpoint here, whether or not one is shipped
process.env.TDR_GUIDANCE_CHECKPOINT = path.join(dir, 'absent', 'guidance-demo.tdrc');
const input = path.join(dir, 'in.png');
const textPng = path.join(dir, 'text.png');
const plainCk = path.join(dir, 'plain.tdrc');
const guidedCk = path.join(dir, 'guided.tdrc');
test.before(async () => {
  await initBackend({ quiet: true });
  const h = 24, w = 20;
  const d = new Float32Array(h * w * 3);
  for (let i = 0; i < d.length; i++) d[i] = ((i * 37) % 200) / 255 + 0.1;
  await writeImage(input, makeImage(h, w, d));
  fs.writeFileSync(textPng, 'this is not a png\n');
  saveCiRestorer(plainCk);
  saveCiRestorer(guidedCk, true);
});
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

const bad: Array<[string, string[], RegExp]> = [
  ['missing input file', ['nope.png', '--backbone', 'nafnet', '--no-guidance', '--checkpoint', plainCk], /nope\.png: no such file/],
  ['a text file named .png', [textPng, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', plainCk], /text\.png: not a readable image/],
  ['bad backbone', [input, '--backbone', 'unet', '--no-guidance', '--checkpoint', plainCk], /--backbone: .*promptir.*nafnet.*restormer/i],
  ['missing checkpoint', [input, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', path.join(dir, 'none.tdrc')], /none\.tdrc: no such checkpoint/],
  ['checkpoint of another backbone', [input, '--backbone', 'promptir', '--no-guidance', '--checkpoint', plainCk], /plain\.tdrc: a nafnet checkpoint, but backbone promptir was asked for/],
  ['guided checkpoint with --no-guidance', [input, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', guidedCk], /guided\.tdrc: a guided checkpoint, but an unguided model was asked for/],
  ['bad output extension', [input, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', plainCk, '--out', path.join(dir, 'out.gif')], /unsupported output extension '\.gif'/],
  ['clean-oracle has no clean image here', [input, '--backbone', 'nafnet', '--guidance', 'clean-oracle', '--checkpoint', guidedCk], /needs the clean image/],
  ['clean-thumb-8 has no clean image here', [input, '--backbone', 'nafnet', '--guidance', 'clean-thumb-8', '--checkpoint', guidedCk], /guidance source 'clean-thumb-8' needs the clean image/],
  ['no guidance checkpoint for the text source', [input, '--backbone', 'nafnet', '--checkpoint', guidedCk], /guidance-demo\.tdrc: no guidance checkpoint/],
  ['a tile budget above what the backend holds', [input, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', plainCk, '--tile-budget', '100000'], /tile budget 100000 MiB is above what the \w+ backend can hold \(\d+ MiB\)/],
];
for (const [what, args, msg] of bad) {
  test(`restore: ${what} → exit 2, one line, no output file`, async () => {
    const out = path.join(dir, `bad-${what.replace(/\W+/g, '_')}.png`);
    const argv = args.includes('--out') ? args : [...args, '--out', out];
    const r = await run(() => restoreCommand.run(argv));
    assert.equal(r.code, EXIT.usage, r.error);
    assert.match(r.error!, msg);
    assert.equal(r.error!.split('\n').length, 1, 'one line');
    assert.ok(!fs.existsSync(out) && !fs.existsSync(path.join(dir, 'out.gif')), 'no output file');
  });
}

test('restore: unguided and guided (--guidance-image) runs write an image of the input size', async () => {
  const out = path.join(dir, 'plain.png');
  assert.deepEqual(await run(() => restoreCommand.run([input, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', plainCk, '--out', out])), { code: 0 });
  const img = await readImage(out);
  assert.deepEqual([img.height, img.width], [24, 20]);
  const out2 = path.join(dir, 'guided.png');
  assert.deepEqual(await run(() => restoreCommand.run([input, '--backbone', 'nafnet', '--guidance-image', input, '--checkpoint', guidedCk, '--out', out2])), { code: 0 });
  assert.ok(fs.existsSync(out2));
});

test('restore and degrade: --out equal to the input file is refused, the input left as it was', async () => {
  const { degradeCommand } = await import('../../lib/cli/commands/degrade');
  const copy = path.join(dir, 'keep.png');
  fs.copyFileSync(input, copy);
  const before = fs.readFileSync(copy);
  for (const [name, fn] of [
    ['restore', () => restoreCommand.run([copy, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', plainCk, '--out', copy])],
    ['restore (another spelling of the path)', () => restoreCommand.run([copy, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', plainCk, '--out', path.join(dir, '.', 'sub', '..', 'keep.png')])],
    ['degrade', () => degradeCommand.run([copy, '--task', 'noise', '--seed', '1', '--out', copy])],
  ] as Array<[string, () => Promise<number>]>) {
    const r = await run(fn);
    assert.equal(r.code, EXIT.usage, `${name}: ${r.error}`);
    assert.match(r.error!, /keep\.png is the input file .*refusing to overwrite an input/);
    assert.ok(fs.readFileSync(copy).equals(before), `${name}: input untouched`);
  }
});

test('restore: a corrupted checkpoint (one byte flipped) is refused with exit 2, never an all-black image with exit 0', async () => {
  const bad = path.join(dir, 'flipped.tdrc');
  const buf = fs.readFileSync(plainCk);
  buf[buf.length - 200] ^= 0xff;
  fs.writeFileSync(bad, buf);
  const out = path.join(dir, 'flipped-out.png');
  const r = await run(() => restoreCommand.run([input, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', bad, '--out', out]));
  assert.equal(r.code, EXIT.usage, r.error);
  assert.match(r.error!, /flipped\.tdrc: corrupt checkpoint: the tensor data's sha256 is [0-9a-f]{12}…, the header records [0-9a-f]{12}…/);
  assert.ok(!fs.existsSync(out));
});

test('eval: bad inputs → exit 2 one line; Table 1 with the clean-oracle stand-in writes md/html/json', async () => {
  const outDir = path.join(dir, 'tables');
  for (const [args, msg] of [
    [['--out-dir', outDir], /--checkpoint: give at least one --checkpoint/],
    [['--checkpoint', path.join(dir, 'x.tdrc'), '--out-dir', outDir], /x\.tdrc: no such checkpoint/],
    [['--checkpoint', textPng, '--out-dir', outDir], /text\.png: not a tdr checkpoint/],
    [['--checkpoint', plainCk, '--out-dir', outDir], /Table 1 needs a guided checkpoint too/],
    [['--checkpoint', plainCk, '--checkpoint', guidedCk, '--out-dir', outDir, '--table', '7'], /--table/],
    [['--checkpoint', plainCk, '--checkpoint', guidedCk, '--out-dir', outDir, '--table', '9', '--guidance', 'clean-oracle'], /does not depend on N/],
    [['--checkpoint', plainCk, '--checkpoint', guidedCk, '--out-dir', outDir, '--table', 'single', '--controls'], /--controls applies to --table 1 only/],
    [['--checkpoint', plainCk, '--checkpoint', guidedCk, '--out-dir', outDir, '--words', '10'], /--words applies to --table 9 only/],
    [['--checkpoint', plainCk, '--checkpoint', guidedCk, '--out-dir', outDir, '--table', '9', '--words', '10,3'], /--words: each N must be in 5\.\.40/],
    [['--checkpoint', plainCk, '--checkpoint', guidedCk, '--out-dir', outDir, '--table', '9', '--words', 'ten'], /--words: expected comma-separated numbers/],
    [['--checkpoint', plainCk, '--checkpoint', guidedCk, '--out-dir', outDir, '--table', '9', '--no-classical'], /--no-classical applies to --table 1 and single only/],
  ] as Array<[string[], RegExp]>) {
    const r = await run(() => evalCommand.run(args));
    assert.equal(r.code, EXIT.usage, `${args.join(' ')}: ${r.error}`);
    assert.match(r.error!, msg);
    assert.equal(r.error!.split('\n').length, 1);
  }
  assert.ok(!fs.existsSync(outDir), 'no output on errors');
  const r = await run(() => evalCommand.run(['--checkpoint', plainCk, '--checkpoint', guidedCk, '--out-dir', outDir, '--guidance', 'clean-oracle', '--limit', '1']));
  assert.equal(r.code, 0, r.error);
  for (const ext of ['md', 'html', 'json']) assert.ok(fs.existsSync(path.join(outDir, `table1-nafnet.${ext}`)));
  const md = fs.readFileSync(path.join(outDir, 'table1-nafnet.md'), 'utf8');
  assert.match(md, /STAND-IN 'clean-oracle'/);
  assert.match(md, /\| classical: DCP \+ GF \/ NLM \| none \|/, 'the classical reference row');
  // what each output and G show at 4×4: every record has its output's thumbnail PSNR, only the guided row its G's
  assert.match(md, /What the images show at 4×4/);
  assert.match(md, /\| nafnet \+ guidance: its G \|/);
  const recs = (JSON.parse(fs.readFileSync(path.join(outDir, 'table1-nafnet.json'), 'utf8')) as { records: Array<{ model: string; thumb?: { out: number; g?: number } }> }).records;
  assert.ok(recs.length > 0 && recs.every((x) => x.thumb && Number.isFinite(x.thumb.out)));
  assert.deepEqual([...new Set(recs.filter((x) => x.thumb!.g !== undefined).map((x) => x.model))], ['nafnet + guidance']);
  // G = the clean photo at 4 px (enlarged back): its 4×4 thumbnail matches Y's up to 8-bit rounding and the enlarging
  const r4 = await run(() => evalCommand.run(['--checkpoint', plainCk, '--checkpoint', guidedCk, '--out-dir', outDir, '--guidance', 'clean-thumb-4', '--limit', '1', '--no-classical']));
  assert.equal(r4.code, 0, r4.error);
  const g4 = (JSON.parse(fs.readFileSync(path.join(outDir, 'table1-nafnet.json'), 'utf8')) as { records: Array<{ thumb: { g?: number } }> }).records.flatMap((x) => (x.thumb.g === undefined ? [] : [x.thumb.g]));
  assert.ok(g4.length > 0 && g4.every((v) => v > 30), `clean-thumb-4 G thumbnails: ${g4.join(', ')} dB`);
  const r2 = await run(() => evalCommand.run(['--checkpoint', plainCk, '--checkpoint', guidedCk, '--out-dir', outDir, '--guidance', 'clean-oracle', '--limit', '1', '--no-classical']));
  assert.equal(r2.code, 0, r2.error);
  assert.doesNotMatch(fs.readFileSync(path.join(outDir, 'table1-nafnet.md'), 'utf8'), /classical:/);
});

test('train restore: bad backbone / tasks / preset → exit 2 one line (nothing trained)', async () => {
  for (const [args, msg] of [
    [['restore', '--backbone', 'unet'], /--backbone/],
    // the README's row without --backbone: the message says the option is required and shows the command
    [['--preset', 'ci'], /^--backbone is required \(promptir, nafnet, restormer\); e\.g\. 'tdr train restore --backbone promptir --preset ci'$/],
    [['--backbone', 'nafnet', '--tasks', 'snow'], /--tasks/],
    [['--backbone', 'nafnet', '--preset', 'huge'], /--preset/],
    [['--backbone', 'nafnet', '--no-guidance', '--guidance', 'clean-oracle'], /--no-guidance takes no --guidance/],
    [['--backbone', 'nafnet', '--no-guidance', '--guidance-checkpoint', path.join(dir, 'g.tdrc')], /--no-guidance takes no --guidance-checkpoint/],
    [['--backbone', 'nafnet', '--guidance', 'clean-oracle', '--guidance-checkpoint', path.join(dir, 'g.tdrc')], /--guidance-checkpoint: the guidance source 'clean-oracle' uses no guidance model/],
    [['--backbone', 'nafnet', '--preset', 'ci', '--runs', dir, '--guidance-checkpoint', path.join(dir, 'none.tdrc')], /--guidance-checkpoint \S+none\.tdrc: no such file/],
    [['--backbone', 'nafnet', '--preset', 'ci', '--runs', dir, '--guidance-checkpoint', path.join(dir, 'g.json')], /--guidance-checkpoint: expected a guidance checkpoint \(\.tdrc\)/],
    [['--backbone', 'nafnet', '--preset', 'ci', '--runs', dir], /guidance-demo\.tdrc: no guidance checkpoint/],
  ] as Array<[string[], RegExp]>) {
    const r = await run(() => trainRestoreCommandRun(args));
    assert.equal(r.code, EXIT.usage, `${args.join(' ')}: ${r.error}`);
    assert.match(r.error!, msg);
    assert.equal(r.error!.split('\n').length, 1);
  }
  assert.ok(!fs.readdirSync(dir).some((f) => f.startsWith('restore-')), 'no run folder');
});

test('train restore --config: a restore preset file names its run; bad files → exit 2 one line naming the file and field', async () => {
  const good = path.join(dir, 'exp.json');
  const ci = JSON.parse(JSON.stringify(RESTORE_PRESETS.ci)) as Record<string, unknown>;
  fs.writeFileSync(good, JSON.stringify({ ...ci, preset: 'ci-exp', cropScales: [32, 40], taskWeights: { haze: 2 }, photoLimit: 3, validation: { holdout: 1, every: 1, size: 32 } }));
  const noNaf = path.join(dir, 'nonaf.json');
  fs.writeFileSync(noNaf, JSON.stringify({ ...ci, preset: 'ci-exp', backbones: { promptir: (ci.backbones as Record<string, unknown>).promptir } }));
  const badScale = path.join(dir, 'badscale.json');
  fs.writeFileSync(badScale, JSON.stringify({ ...ci, preset: 'ci-exp', cropScales: [8] }));
  const clash = path.join(dir, 'clash.json');
  fs.writeFileSync(clash, JSON.stringify({ ...ci, preset: 'demo' }));
  for (const [args, msg] of [
    [['--backbone', 'nafnet', '--no-guidance', '--preset', 'ci', '--config', good], /give --preset or --config, not both/],
    [['--backbone', 'nafnet', '--no-guidance', '--config', noNaf], /nonaf\.json: backbones has no 'nafnet' \(has promptir\)/],
    [['--backbone', 'nafnet', '--no-guidance', '--config', badScale], /badscale\.json.*cropScales/],
    [['--backbone', 'nafnet', '--no-guidance', '--config', clash], /clash\.json: preset 'demo' is the name of a built-in preset/],
    [['--backbone', 'nafnet', '--no-guidance', '--config', path.join(dir, 'absent.json')], /absent\.json/],
    [['--backbone', 'nafnet', '--no-guidance', '--config', good, '--stop-at', '999'], /^--stop-at 999: past the end of the schedule \(train\.steps \d+\)$/],
  ] as Array<[string[], RegExp]>) {
    const r = await run(() => trainRestoreCommandRun(args));
    assert.equal(r.code, EXIT.usage, `${args.join(' ')}: ${r.error}`);
    assert.match(r.error!, msg);
    assert.equal(r.error!.split('\n').length, 1, r.error);
  }
  const runs = path.join(dir, 'cfgruns');
  const r = await run(() => trainRestoreCommandRun(['--backbone', 'nafnet', '--no-guidance', '--config', good, '--runs', runs]));
  assert.equal(r.code, 0, r.error);
  const name = 'restore-nafnet-all-in-one-plain-ci-exp';
  const out = path.join(runs, name, `${name}.tdrc`);
  const meta = readCheckpointMeta(out);
  assert.match(String(meta.rebuild), new RegExp(`--config ${good.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const cfg = meta.config as { preset: string; cropScales: number[]; taskWeights: Record<string, number> };
  assert.equal(cfg.preset, 'ci-exp');
  assert.deepEqual(cfg.cropScales, [32, 40]);
  assert.deepEqual(cfg.taskWeights, { haze: 2 });
  // the validation curve ships beside the model (<out>.val.jsonl), which is the best validation checkpoint
  const val = fs.readFileSync(out.replace(/\.tdrc$/, '.val.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; v_psnr: number });
  assert.deepEqual(val.map((v) => v.step), Array.from({ length: (meta.config as { train: { steps: number } }).train.steps }, (_, i) => i + 1));
  assert.equal(meta.bestStep, val.reduce((a, v) => (v.v_psnr > a.v_psnr ? v : a)).step);
});

test('train restore --init-from: two legs give a model whose rebuild command has both, whose logs continue the first leg\'s, and whose file may be the one it began from', async () => {
  const cfgFile = path.join(dir, 'legs.json');
  const ci = JSON.parse(JSON.stringify(RESTORE_PRESETS.ci)) as Record<string, unknown> & { train: Record<string, unknown> };
  fs.writeFileSync(cfgFile, JSON.stringify({ ...ci, preset: 'ci-legs', photoLimit: 3, train: { ...ci.train, steps: 4, logEvery: 1 }, validation: { holdout: 1, every: 1, size: 32 } }));
  const model = path.join(dir, 'legs.tdrc');
  const base = ['--backbone', 'nafnet', '--no-guidance', '--config', cfgFile];
  const first = await run(() => trainRestoreCommandRun([...base, '--runs', path.join(dir, 'leg1'), '--stop-at', '2', '--out', model]));
  assert.equal(first.code, 0, first.error);
  const m1 = readCheckpointMeta(model);
  assert.equal(m1.rebuild, `tdr train restore --backbone nafnet --no-guidance --tasks all-in-one --config ${cfgFile} --stop-at 2 --out ${model}`);
  const firstStep = Number(m1.bestStep);
  // the second leg writes over the file it began from, in the same runs folder (its run is named '-warm')
  const second = await run(() => trainRestoreCommandRun([...base, '--runs', path.join(dir, 'leg1'), '--init-from', model, '--stop-at', '4', '--out', model]));
  assert.equal(second.code, 0, second.error);
  const m2 = readCheckpointMeta(model);
  assert.equal(m2.rebuild, `${m1.rebuild} && tdr train restore --backbone nafnet --no-guidance --tasks all-in-one --config ${cfgFile} --init-from ${model} --stop-at 4 --out ${model}`);
  assert.equal((m2.initFrom as { step: number }).step, firstStep);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'leg1')).sort(), ['restore-nafnet-all-in-one-plain-ci-legs', 'restore-nafnet-all-in-one-plain-ci-legs-warm']);
  const steps = (kind: string) => fs.readFileSync(model.replace(/\.tdrc$/, `.${kind}.jsonl`), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
  assert.deepEqual(steps('log'), [0, 1, 2, 3], 'loss log: the first leg up to its model\'s step, then the second, each step once');
  assert.deepEqual(steps('val'), [...Array.from({ length: firstStep }, (_, i) => i + 1), ...Array.from({ length: 4 - firstStep }, (_, i) => firstStep + 1 + i)]);
  // a model of another configuration is refused, naming the file
  const other = await run(() => trainRestoreCommandRun(['--backbone', 'nafnet', '--no-guidance', '--preset', 'ci', '--runs', path.join(dir, 'leg3'), '--init-from', model]));
  assert.equal(other.code, EXIT.usage);
  assert.match(other.error!, /--init-from \S+legs\.tdrc: trained with another configuration \(differs in .*preset/);
});
