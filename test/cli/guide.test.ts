/**
 * `tdr guide`, `tdr sample` and the guided `tdr restore` with tiny untrained models: --steps beyond
 * the scheduler refused up front, PNG-only guidance said once and the same way, a guidance cache that
 * cannot be written never fails the command, Ctrl-C stops DDIM sampling within a step, and --seed
 * reaches the guidance generation of `tdr restore`.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { initBackend } from '../../lib/backend';
import { GuidanceModel, t2iWeightsHash } from '../../lib/guidance/model';
import { guidanceCached } from '../../lib/guidance/pipeline';
import { guideCommand } from '../../lib/cli/commands/guide';
import { sampleCommand } from '../../lib/cli/commands/sample';
import { restoreCommand } from '../../lib/cli/commands/restore';
import { saveCiRestorer } from '../helpers/restorers';
import { TextToImage } from '../../lib/t2i/model';
import { UserError } from '../../lib/util/errors';
import { projectRoot } from '../../lib/util/fsx';
import { readImage } from '../../lib/data/io';
import { tinyT2I, tinyGuidanceConfig } from '../guidance/helpers';
import { tmpDir, writePattern } from '../helpers/fixtures';

const dir = tmpDir('tdr-cli-guide-');
const t2iFile = path.join(dir, 't2i.tdrc');
const gFile = path.join(dir, 'guidance.tdrc');
const input = path.join(dir, 'in.png');
let t2i: TextToImage;

test.before(async () => {
  await initBackend({ quiet: true });
  t2i = tinyT2I();
  t2i.save(t2iFile);
  const g = new GuidanceModel(tinyGuidanceConfig(), t2i);
  g.t2iRef = { path: t2iFile, sha256: t2iWeightsHash(t2i) };
  g.trainedStages = ['i2t', 'clean'];
  g.save(gFile);
  g.dispose();
  await writePattern(input, 40, 48);
});
test.after(() => {
  t2i.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Run with stderr captured (progress bars, notes); stdout left alone (the test reporter writes there). */
async function quiet<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: Error; stderr: string }> {
  const e = process.stderr.write;
  let stderr = '';
  process.stderr.write = ((c: string | Uint8Array) => ((stderr += String(c)), true)) as typeof process.stderr.write;
  try {
    return { value: await fn(), stderr };
  } catch (err) {
    return { error: err as Error, stderr };
  } finally {
    process.stderr.write = e;
  }
}

test('--steps beyond what the DDIM scheduler allows is refused up front (sample, guide), naming the largest allowed', async () => {
  const max = t2i.scheduler.maxInferenceSteps();
  assert.doesNotThrow(() => t2i.scheduler.setTimesteps(max), 'the largest allowed really works');
  assert.throws(() => t2i.scheduler.setTimesteps(max + 1), 'and one more does not');
  const msg = new RegExp(`^--steps ${max + 1}: this model's DDIM scheduler allows at most ${max} steps`);
  for (const [name, fn] of [
    ['sample', () => sampleCommand.run(['--prompt', 'a photo of a red apple', '--seed', '1', '--steps', String(max + 1), '--checkpoint', t2iFile, '--out', path.join(dir, 's.png')])],
    ['guide', () => guideCommand.run([input, '--checkpoint', gFile, '--steps', String(max + 1), '--out', path.join(dir, 'g.png'), '--no-cache'])],
  ] as Array<[string, () => Promise<number>]>) {
    const r = await quiet(fn);
    assert.ok(r.error instanceof UserError, `${name}: ${r.error?.stack}`);
    assert.match(r.error.message, msg);
  }
  assert.ok(!fs.existsSync(path.join(dir, 's.png')) && !fs.existsSync(path.join(dir, 'g.png')));
});

test('tdr guide --out: any other extension than .png gets the same one message (.bmp as .jpg)', async () => {
  for (const ext of ['bmp', 'jpg', 'webp']) {
    const out = path.join(dir, `g.${ext}`);
    const r = await quiet(() => guideCommand.run([input, '--checkpoint', gFile, '--out', out]));
    assert.ok(r.error instanceof UserError, ext);
    assert.equal(r.error.message, `--out ${out}: guidance is written as PNG; use a .png file name`);
  }
});

test('a guidance cache that cannot be written never fails the command: one note, G still returned and written', async () => {
  const blocker = path.join(dir, 'not-a-folder');
  fs.writeFileSync(blocker, 'a file where the cache folder would be\n');
  const cacheDir = path.join(blocker, 'guidance'); // mkdir fails with ENOTDIR (even as root)
  const g = GuidanceModel.load(gFile, t2i);
  try {
    const x = await readImage(input);
    const r = await quiet(() => guidanceCached(g, t2i, x, { cacheDir, steps: 2 }));
    assert.equal(r.error, undefined, r.error?.stack);
    assert.equal(r.value!.cached, false);
    assert.equal(r.value!.image.height, t2i.cfg.imageSize);
    assert.match(r.stderr, /tdr: note: cannot write the guidance cache in .*not-a-folder\/guidance \(ENOTDIR\); going on without it/);
  } finally {
    g.dispose();
  }
  process.env.TDR_GUIDANCE_CACHE = cacheDir;
  try {
    const out = path.join(dir, 'g-nocache.png');
    const r = await quiet(() => guideCommand.run([input, '--checkpoint', gFile, '--steps', '2', '--out', out]));
    assert.equal(r.value, 0, r.error?.stack);
    assert.ok(fs.existsSync(out));
  } finally {
    delete process.env.TDR_GUIDANCE_CACHE;
  }
});

test('DDIM sampling lets the event loop run between steps (a Ctrl-C handler runs within a step)', async () => {
  let ticks = 0;
  let running = true;
  const tick = () => {
    ticks++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  let steps = 0;
  await t2i.generate(['a photo of a red apple'], { seed: 1, steps: 12, onStep: () => {
    steps++;
  } });
  running = false;
  assert.equal(steps, 12);
  assert.ok(ticks >= 12, `the event loop ran ${ticks} times during 12 steps`);
});

test('Ctrl-C stops `tdr sample --steps 999` within a step: exit 130, no output, the last step never reached', { timeout: 120_000 }, async () => {
  const out = path.join(dir, 'interrupted.png');
  const cli = path.join(projectRoot(), 'dist', 'lib', 'cli', 'main.js');
  const max = t2i.scheduler.maxInferenceSteps();
  const child = spawn(process.execPath, [cli, 'sample', '--prompt', 'a photo of a red apple', '--seed', '1', '--steps', String(max), '--checkpoint', t2iFile, '--out', out], {
    env: { ...process.env, TDR_QUIET: '1' },
  });
  let stderr = '';
  const code = await new Promise<number | null>((resolve) => {
    child.stderr.on('data', (d) => {
      const first = !/\d+\/\d+/.test(stderr);
      stderr += String(d);
      // the progress bar's first line: sampling has started
      if (first && new RegExp(`\\d+/${max}`).test(stderr)) child.kill('SIGINT');
    });
    child.on('exit', (c) => resolve(c));
  });
  assert.equal(code, 130, stderr);
  assert.doesNotMatch(stderr, new RegExp(`${max}/${max}`), 'stopped before the last step');
  assert.ok(!fs.existsSync(out));
});

test('tdr restore --seed N reaches the guidance generation: different seeds, different G; the same seed, the same output bytes', async () => {
  const ck = path.join(dir, 'guided.tdrc');
  saveCiRestorer(ck, true);
  process.env.TDR_GUIDANCE_CHECKPOINT = gFile;
  process.env.TDR_GUIDANCE_CACHE = path.join(dir, 'cache');
  try {
    const outs: Record<string, Buffer> = {};
    for (const [name, seed] of [['a', '0'], ['b', '5'], ['c', '0']]) {
      const out = path.join(dir, `seed-${name}.png`);
      const r = await quiet(() => restoreCommand.run([input, '--backbone', 'nafnet', '--checkpoint', ck, '--seed', seed, '--out', out]));
      assert.equal(r.value, 0, r.error?.stack);
      outs[name] = fs.readFileSync(out);
    }
    const cached = fs.readdirSync(path.join(dir, 'cache'));
    assert.equal(cached.length, 2, `one G per seed in the cache: ${cached}`);
    const gs = cached.map((f) => fs.readFileSync(path.join(dir, 'cache', f)));
    assert.ok(!gs[0].equals(gs[1]), 'seed 0 and seed 5 give different G');
    assert.ok(outs.a.equals(outs.c), 'same seed, same bytes');
  } finally {
    delete process.env.TDR_GUIDANCE_CHECKPOINT;
    delete process.env.TDR_GUIDANCE_CACHE;
  }
});

test('tdr guide without --checkpoint makes G with the shipped words guidance model and says which model made it', async () => {
  const { wordsGuidanceCheckpoint } = await import('../../lib/guidance/config');
  const { portablePath } = await import('../../lib/util/paths');
  const env = { ...process.env, TDR_GUIDANCE_CHECKPOINT: '', TDR_QUIET: '1', TDR_GUIDANCE_CACHE: path.join(dir, 'default-cache') };
  const words = (() => {
    const was = process.env.TDR_GUIDANCE_CHECKPOINT;
    delete process.env.TDR_GUIDANCE_CHECKPOINT;
    try {
      return wordsGuidanceCheckpoint();
    } finally {
      if (was !== undefined) process.env.TDR_GUIDANCE_CHECKPOINT = was;
    }
  })();
  assert.ok(fs.existsSync(words), `${words}: the shipped words guidance model is missing`);
  const out = path.join(dir, 'default.png');
  const cli = path.join(__dirname, '..', '..', 'lib', 'cli', 'main.js');
  const r = spawnSync(process.execPath, [cli, 'guide', input, '--steps', '1', '--no-cache', '--out', out], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(fs.existsSync(out));
  assert.ok(r.stdout.startsWith(`${out}: G(E'_txt) of ${portablePath(words)}, `), r.stdout);
});
