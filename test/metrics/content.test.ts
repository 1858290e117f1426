/**
 * lib/metrics/content.ts: area thumbnails and retrieval ranks by thumbnail PSNR.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { areaThumbnail, thumbnailPsnr, thumbnailRanks, summariseRanks, finitePsnr } from '../../lib/metrics/content';
import { makeImage, RGBImage } from '../../lib/data/image';
import { Rng } from '../../lib/util/rng';

function img(h: number, w: number, f: (y: number, x: number, c: number) => number): RGBImage {
  const d = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) d[(y * w + x) * 3 + c] = f(y, x, c);
  return makeImage(h, w, d);
}

test('areaThumbnail: exact cell means for a divisible size; fractional footprints for another; constants stay constant', () => {
  const a = img(4, 4, (y, x, c) => y * 4 + x + c * 100);
  const t = areaThumbnail(a, 2);
  // top-left cell: pixels (0,0),(0,1),(1,0),(1,1) = 0,1,4,5 → 2.5
  assert.deepEqual(Array.from(t.data.slice(0, 3)), [2.5, 102.5, 202.5]);
  assert.equal(t.data[(1 * 2 + 1) * 3], (10 + 11 + 14 + 15) / 4);
  // 3 px into 2 cells: cell 0 = pixel 0 + half of pixel 1
  const b = img(1, 3, (_y, x) => [0, 3, 6][x]);
  const tb = areaThumbnail(b, 2);
  assert.ok(Math.abs(tb.data[0] - (0 + 0.5 * 3) / 1.5) < 1e-6);
  assert.ok(Math.abs(tb.data[3] - (0.5 * 3 + 6) / 1.5) < 1e-6);
  const k = areaThumbnail(img(37, 53, () => 0.25), 16);
  assert.ok(k.data.every((v) => Math.abs(v - 0.25) < 1e-6));
});

test('thumbnailRanks: a copy of its own photo ranks 1; a copy of another photo does not; noise-level changes do not matter at 16×16', () => {
  const rng = new Rng(3);
  const photos = Array.from({ length: 6 }, (_, i) => img(64, 64, (y, x, c) => 0.5 + 0.4 * Math.sin((y + 7 * i) / (5 + i) + c) * Math.cos((x * (i + 1)) / 13)));
  const noisy = photos.map((p) => makeImage(p.height, p.width, p.data.map((v) => v + 0.1 * rng.normal())));
  const r = thumbnailRanks(noisy, photos, [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(r.map((x) => x.rank), [1, 1, 1, 1, 1, 1]);
  assert.ok(r.every((x) => x.psnrOwn > x.psnrBestOther));
  const swapped = thumbnailRanks([photos[1]], photos, [0]);
  assert.ok(swapped[0].rank > 1, 'another photo is not ranked as its own');
  assert.deepEqual(summariseRanks([{ rank: 1 }, { rank: 3 }]), { top1: 0.5, meanRank: 2, n: 2 });
  assert.throws(() => thumbnailRanks([photos[0]], photos, [9]), /own\[0\] = 9 is not a candidate index/);
});

test('thumbnailPsnr: PSNR of the s×s area thumbnails — detail finer than a cell does not count, a colour shift does', () => {
  const flat = (h: number, w: number, v: number): RGBImage => makeImage(h, w, new Float32Array(h * w * 3).fill(v));
  // a 1-px checkerboard of 0.4/0.6 on 16×16: every cell of the 4×4 thumbnail (4×4 px) averages to 0.5
  const board = makeImage(16, 16);
  for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) board.data.fill((x + y) % 2 ? 0.6 : 0.4, (y * 16 + x) * 3, (y * 16 + x) * 3 + 3);
  assert.ok(thumbnailPsnr(board, flat(16, 16, 0.5), 4) > 100, 'the checkerboard is grey at 4×4');
  assert.ok(Math.abs(thumbnailPsnr(board, flat(16, 16, 0.5), 16) - 20) < 1e-4, 'and ±0.1 (20 dB) at full size');
  // a uniform shift of 0.1 is 20 dB at any size, and the sizes of the two images need not match
  assert.ok(Math.abs(thumbnailPsnr(flat(8, 8, 0.6), flat(32, 48, 0.5), 4) - 20) < 1e-4);
  // identical thumbnails are +∞ dB; finitePsnr (what the means use) counts them as 99 dB, other values as they are
  assert.equal(thumbnailPsnr(flat(8, 8, 0.5), flat(8, 8, 0.5), 4), Infinity);
  assert.equal(finitePsnr(Infinity), 99);
  assert.equal(finitePsnr(20), 20);
});
