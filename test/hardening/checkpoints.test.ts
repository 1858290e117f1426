/**
 * Damaged checkpoints: one flipped byte in the tensor data of a restorer, guidance or text-to-image
 * checkpoint is refused (sha256 in the header), a checkpoint holding NaN/Inf is refused, and a
 * network whose output is not finite is refused — never an all-black image written with exit 0.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { CheckpointError, loadCheckpoint, saveCheckpoint, readCheckpointMeta } from '../../lib/util/checkpoint';
import { restorePreset } from '../../lib/restore/config';
import { buildRestorer, loadRestorer, saveRestorer } from '../../lib/restore/train';
import { restoreImage } from '../../lib/restore/eval';
import { GuidanceModel } from '../../lib/guidance/model';
import { TextToImage } from '../../lib/t2i/model';
import { NonFiniteError, makeImage } from '../../lib/data/image';
import { tinyT2I, tinyGuidanceConfig } from '../guidance/helpers';
import { tmpDir } from '../helpers/fixtures';

const dir = tmpDir('tdr-ckpt-integrity-');
test.before(async () => {
  await initBackend({ quiet: true });
});
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A copy of `file` with the byte at `at` (from the end when negative) inverted, as `dd … conv=notrunc` does. */
function flipped(file: string, at: number): string {
  const buf = fs.readFileSync(file);
  const i = at < 0 ? buf.length + at : at;
  buf[i] ^= 0xff;
  const out = file.replace(/\.tdrc$/, `-flip${i}.tdrc`);
  fs.writeFileSync(out, buf);
  return out;
}

const corrupt = (e: Error) => e instanceof CheckpointError && /: corrupt checkpoint: the tensor data's sha256 is [0-9a-f]{12}…, the header records/.test(e.message);

test('a flipped byte in a restorer, a guidance or a text-to-image checkpoint is refused naming the file (sha256)', () => {
  const rfile = path.join(dir, 'restorer.tdrc');
  const cfg = restorePreset('ci', { backbone: 'promptir', guidance: false, tasks: 'all-in-one' });
  const r = buildRestorer(cfg);
  saveRestorer(rfile, r.params, cfg);
  r.params.dispose();
  assert.equal(typeof readCheckpointMeta(rfile), 'object');
  const t2i = tinyT2I();
  const tfile = path.join(dir, 't2i.tdrc');
  t2i.save(tfile);
  const g = new GuidanceModel(tinyGuidanceConfig(), t2i);
  const gfile = path.join(dir, 'guidance.tdrc');
  g.save(gfile);
  // the middle of the data and its last byte
  for (const at of [Math.floor(fs.statSync(rfile).size * 0.6), -1]) {
    const bad = flipped(rfile, at);
    assert.throws(() => loadRestorer(bad), (e: Error) => corrupt(e) && e.message.startsWith(bad));
  }
  assert.throws(() => TextToImage.load(flipped(tfile, -100)), corrupt);
  assert.throws(() => GuidanceModel.load(flipped(gfile, -100), t2i), corrupt);
  // the untouched files still load
  loadRestorer(rfile).params.dispose();
  GuidanceModel.load(gfile, t2i).dispose();
  TextToImage.load(tfile).dispose();
  g.dispose();
  t2i.dispose();
});

test('a checkpoint holding NaN or Inf is refused naming the tensor', () => {
  for (const v of [NaN, Infinity]) {
    const file = path.join(dir, `nonfinite-${v}.tdrc`);
    saveCheckpoint(file, { kind: 'test' }, new Map([['w', { shape: [4], data: Float32Array.from([0, 1, v, 2]) }]]));
    assert.throws(() => loadCheckpoint(file), (e: Error) => e instanceof CheckpointError && new RegExp(`nonfinite-${v}\\.tdrc: corrupt checkpoint: tensor 'w' holds a non-finite value \\(${v} at index 2\\)`).test(e.message));
  }
});

test('a network with non-finite weights: its output is refused (NonFiniteError), untiled and tiled', () => {
  const cfg = restorePreset('ci', { backbone: 'nafnet', guidance: false, tasks: 'all-in-one' });
  const { net, params } = buildRestorer(cfg);
  const [, w] = [...params.entries()].find(([, v]) => v.shape.length === 4)!;
  tf.tidy(() => w.assign(tf.fill(w.shape, NaN)));
  const x = makeImage(64, 64, new Float32Array(64 * 64 * 3).fill(0.5));
  for (const opts of [{}, { tile: 32 }]) {
    assert.throws(() => restoreImage(net, x, undefined, opts), (e: Error) => e instanceof NonFiniteError && /the restorer produced non-finite values/.test(e.message));
  }
  params.dispose();
});
