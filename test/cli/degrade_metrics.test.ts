/**
 * `tdr degrade` and `tdr metrics` command modules, run in-process with argv arrays.
 *
 * `exitCode` mirrors main.ts's contract (lib/cli/command.ts): a returned number is the exit code,
 * a thrown UserError is exit 2 (EXIT.usage) with a one-line message, anything else exit 1.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command, EXIT } from '../../lib/cli/command';
import { UserError } from '../../lib/util/errors';
import { degradeCommand } from '../../lib/cli/commands/degrade';
import { metricsCommand } from '../../lib/cli/commands/metrics';
import { makeImage } from '../../lib/data/image';
import { readImage, writeImage } from '../../lib/data/io';

async function exitCode(cmd: Command, argv: string[]): Promise<{ code: number; stdout: string; error?: string }> {
  const chunks: string[] = [];
  const orig = process.stdout.write.bind(process.stdout);
  // capture only strings (what the commands write); the test runner's own binary reports, written
  // to stdout by `node --test` child processes meanwhile, pass through untouched
  (process.stdout as unknown as { write: (c: unknown, ...rest: unknown[]) => boolean }).write = (c: unknown, ...rest: unknown[]) =>
    typeof c === 'string' ? (chunks.push(c), true) : (orig as (c: unknown, ...r: unknown[]) => boolean)(c, ...rest);
  try {
    const code = await cmd.run(argv);
    return { code, stdout: chunks.join('') };
  } catch (e) {
    if (e instanceof UserError) return { code: EXIT.usage, stdout: chunks.join(''), error: e.message };
    return { code: EXIT.internal, stdout: chunks.join(''), error: String(e) };
  } finally {
    process.stdout.write = orig;
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdr-cli-'));
const input = path.join(dir, 'in.png');
const textPng = path.join(dir, 'text.png');
test.before(async () => {
  const h = 40, w = 36;
  const d = new Float32Array(h * w * 3);
  for (let i = 0; i < d.length; i++) d[i] = ((i * 37) % 200) / 255 + 0.1;
  await writeImage(input, makeImage(h, w, d));
  fs.writeFileSync(textPng, 'this is not a png\n');
});
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('degrade: a good run writes the file and prints one JSON line with the drawn params', async () => {
  const out = path.join(dir, 'noisy.png');
  const r = await exitCode(degradeCommand, [input, '--task', 'noise', '--sigma', '25', '--seed', '3', '--out', out, '--json']);
  assert.equal(r.code, 0, r.error);
  assert.ok(fs.existsSync(out));
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]);
  assert.deepEqual(j.params, { sigma: 25, mode: 'float' });
  assert.equal(j.phrase, 'noisy');
  assert.equal(j.seed, 3);
  const img = await readImage(out);
  assert.equal(img.height, 40);
  assert.equal(img.width, 36);
});

test('degrade: same seed gives identical output bytes; text mode prints params', async () => {
  const a = path.join(dir, 'm1.png');
  const b = path.join(dir, 'm2.png');
  const r1 = await exitCode(degradeCommand, [input, '--task', 'motion', '--seed', '9', '--out', a]);
  const r2 = await exitCode(degradeCommand, [input, '--task', 'motion', '--seed', '9', '--out', b]);
  assert.equal(r1.code, 0, r1.error);
  assert.equal(r2.code, 0, r2.error);
  assert.deepEqual(fs.readFileSync(a), fs.readFileSync(b));
  assert.match(r1.stdout, /^motion seed=9 phrase='(slightly |heavily )?blurry'/);
  assert.match(r1.stdout, /length=/);
});

const BAD: [string, string[], RegExp][] = [
  ['bad --sigma (text)', [input, '--task', 'noise', '--sigma', 'abc', '--seed', '1'], /^--sigma: must be a number in \[0, 255\]$/],
  ['bad --sigma (out of range)', [input, '--task', 'noise', '--sigma', '300', '--seed', '1'], /^--sigma: /],
  ['bad --sigma (empty)', [input, '--task', 'noise', '--sigma=', '--seed', '1'], /^--sigma: /],
  ['--sigma with another task', [input, '--task', 'rain', '--sigma', '15', '--seed', '1'], /--sigma only applies to --task noise/],
  ['bad --noise-mode', [input, '--task', 'noise', '--noise-mode', 'int8', '--seed', '1'], /^--noise-mode: must be one of float, uint8$/],
  ['bad --task', [input, '--task', 'snow', '--seed', '1'], /^--task: must be one of noise, rain, haze, motion, defocus$/],
  ['bad --seed', [input, '--task', 'haze', '--seed', '1.5'], /^--seed: expected an integer/],
  ['negative --seed', [input, '--task', 'haze', '--seed', '-3'], /--seed/],
  ['missing --seed', [input, '--task', 'haze'], /^--seed is required/],
  ['missing input', [path.join(dir, 'nope.png'), '--task', 'haze', '--seed', '1'], /nope\.png: no such file$/],
  ['text file named .png', [textPng, '--task', 'haze', '--seed', '1'], /text\.png: not a readable image/],
  ['no input', ['--task', 'haze', '--seed', '1'], /expected exactly one input image \(or folder\), got 0/],
  ['unknown option', [input, '--task', 'haze', '--seed', '1', '--beta', '2'], /Unknown option '--beta'/],
];

for (const [what, argv, msg] of BAD) {
  test(`degrade: ${what} → exit 2, one-line message, no output file`, async () => {
    const out = path.join(dir, `bad-${what.replace(/\W+/g, '_')}.png`);
    const r = await exitCode(degradeCommand, [...argv, '--out', out]);
    assert.equal(r.code, 2, `exit ${r.code}: ${r.error}`);
    assert.match(r.error!, msg);
    assert.ok(!r.error!.includes('\n'), `one line: ${JSON.stringify(r.error)}`);
    assert.ok(!fs.existsSync(out), 'no output file');
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('.')), [], 'no temp files left');
  });
}

test('degrade: bad output extension → exit 2 naming --out, nothing written', async () => {
  const out = path.join(dir, 'out.bmp');
  const r = await exitCode(degradeCommand, [input, '--task', 'rain', '--seed', '1', '--out', out]);
  assert.equal(r.code, 2);
  assert.match(r.error!, /^--out .*out\.bmp: unsupported output extension '\.bmp'/);
  assert.ok(!fs.existsSync(out));
});

test('metrics --json prints exactly one line with psnr, ssim, psnrY, ssimY (+ ssim3d)', async () => {
  const out = path.join(dir, 'hazy.png');
  assert.equal((await exitCode(degradeCommand, [input, '--task', 'haze', '--seed', '2', '--out', out])).code, 0);
  const r = await exitCode(metricsCommand, [input, out, '--json']);
  assert.equal(r.code, 0, r.error);
  const lines = r.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 1);
  const j = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(j), ['psnr', 'ssim', 'psnrY', 'ssimY', 'ssim3d']);
  for (const v of Object.values(j)) assert.equal(typeof v, 'number');
  assert.ok(j.psnr > 0 && j.psnr < 40 && j.ssim < 1);
  const c = await exitCode(metricsCommand, [input, out, '--crop-border', '4', '--json']);
  assert.equal(c.code, 0);
  assert.notEqual(JSON.parse(c.stdout).psnr, j.psnr);
});

test('metrics of identical images: JSON psnr null, text inf', async () => {
  const j = await exitCode(metricsCommand, [input, input, '--json']);
  assert.equal(j.code, 0);
  assert.deepEqual(JSON.parse(j.stdout), { psnr: null, ssim: 1, psnrY: null, ssimY: 1, ssim3d: 1 });
  const t = await exitCode(metricsCommand, [input, input]);
  assert.match(t.stdout, /PSNR {2}inf/);
});

test('metrics errors → exit 2 with one line naming the file or option', async () => {
  const small = path.join(dir, 'small.png');
  await writeImage(small, makeImage(20, 20));
  const cases: [string[], RegExp][] = [
    [[input, path.join(dir, 'missing.png')], /missing\.png: no such file/],
    [[input, textPng], /text\.png: not a readable image/],
    [[input, small], /in\.png is 36x40 but .*small\.png is 20x20; sizes must match/],
    [[input, input, '--crop-border', 'x'], /^--crop-border: expected a non-negative integer$/],
    [[input, input, '--crop-border', '-1'], /--crop-border/],
    [[input, input, '--crop-border', '15'], /^--crop-border 15 is too large for 36x40/],
    [[input], /expected two images <clean> <test>, got 1/],
  ];
  for (const [argv, msg] of cases) {
    const r = await exitCode(metricsCommand, argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: exit ${r.code} ${r.error}`);
    assert.match(r.error!, msg);
    assert.ok(!r.error!.includes('\n'));
    assert.equal(r.stdout, '');
  }
});

test('--help prints usage and exits 0', async () => {
  assert.match((await exitCode(degradeCommand, ['--help'])).stdout, /^Usage: tdr degrade/);
  assert.match((await exitCode(metricsCommand, ['-h'])).stdout, /^Usage: tdr metrics/);
});
