import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readImage, writeImage, ImageError, toUint8, encodeImage } from '../../lib/data/io';
import { makeImage } from '../../lib/data/image';
import { tmpDir, writePattern, patternBytes, pngBombHeader } from '../helpers/fixtures';

const dir = tmpDir();

test('readImage: 8-bit RGB PNG → [H,W,3] float in [0,1], exact values', async () => {
  const f = path.join(dir, 'rgb.png');
  await writePattern(f, 5, 7);
  const img = await readImage(f);
  assert.equal(img.height, 5);
  assert.equal(img.width, 7);
  const ref = patternBytes(5, 7);
  for (let i = 0; i < ref.length; i++) assert.equal(Math.round(img.data[i] * 255), ref[i]);
});

test('readImage: grayscale is expanded to three equal channels', async () => {
  const f = path.join(dir, 'gray.png');
  await writePattern(f, 4, 6, { channels: 1 });
  const img = await readImage(f);
  const ref = patternBytes(4, 6, 1);
  for (let i = 0; i < 24; i++) for (let c = 0; c < 3; c++) assert.equal(Math.round(img.data[i * 3 + c] * 255), ref[i]);
});

test('readImage: alpha is dropped, colour kept', async () => {
  const f = path.join(dir, 'rgba.png');
  await writePattern(f, 4, 4, { channels: 4 });
  const img = await readImage(f);
  const ref = patternBytes(4, 4, 4);
  for (let i = 0; i < 16; i++) for (let c = 0; c < 3; c++) assert.equal(Math.round(img.data[i * 3 + c] * 255), ref[i * 4 + c]);
});

test('readImage: 16-bit PNG is scaled by 65535', async () => {
  const f = path.join(dir, 'rgb16.png');
  await writePattern(f, 3, 3, { sixteen: true });
  const img = await readImage(f);
  const ref = patternBytes(3, 3);
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(img.data[i] - ref[i] / 255) < 1 / 255, `value ${i}`);
});

test('readImage: 1×1 JPEG works', async () => {
  const f = path.join(dir, 'one.jpg');
  await writePattern(f, 1, 1);
  const img = await readImage(f);
  assert.deepEqual([img.height, img.width, img.data.length], [1, 1, 3]);
});

test('readImage throws ImageError naming the file: missing, empty, text named .png, truncated PNG', async () => {
  const missing = path.join(dir, 'nope.png');
  await assert.rejects(readImage(missing), (e: Error) => e instanceof ImageError && e.message.includes(missing) && /no such file/.test(e.message));
  const empty = path.join(dir, 'empty.png');
  fs.writeFileSync(empty, '');
  await assert.rejects(readImage(empty), (e: Error) => e instanceof ImageError && e.message.includes(empty) && /empty/.test(e.message));
  const text = path.join(dir, 'text.png');
  fs.writeFileSync(text, 'this is not an image\n');
  await assert.rejects(readImage(text), (e: Error) => e instanceof ImageError && e.message.includes(text));
  const good = path.join(dir, 'big.png');
  await writePattern(good, 64, 64);
  const trunc = path.join(dir, 'trunc.png');
  fs.writeFileSync(trunc, fs.readFileSync(good).subarray(0, 200));
  await assert.rejects(readImage(trunc), (e: Error) => e instanceof ImageError && e.message.includes(trunc));
});

test('readImage refuses a 30000×30000 pixel bomb before decoding, naming file and size', async () => {
  const bomb = path.join(dir, 'bomb.png');
  fs.writeFileSync(bomb, pngBombHeader(30000, 30000));
  await assert.rejects(readImage(bomb), (e: Error) => e instanceof ImageError && e.message.includes(bomb) && e.message.includes('30000x30000'));
  await assert.rejects(readImage(path.join(dir, 'rgb.png'), { maxPixels: 10 }), /exceeds the limit of 10/);
});

test('writeImage: PNG round-trips exactly; JPEG is close; no temp files left', async () => {
  const img = makeImage(6, 5);
  for (let i = 0; i < img.data.length; i++) img.data[i] = ((i * 37) % 256) / 255;
  const png = path.join(dir, 'out', 'a.png');
  await writeImage(png, img);
  const back = await readImage(png);
  assert.deepEqual(Array.from(toUint8(back)), Array.from(toUint8(img)));
  const jpg = path.join(dir, 'out', 'a.jpg');
  await writeImage(jpg, img);
  assert.ok(fs.statSync(jpg).size > 0);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'out')).sort(), ['a.jpg', 'a.png']);
});

test('writeImage: a bad extension throws before anything is written', async () => {
  const f = path.join(dir, 'bad', 'x.gifx');
  await assert.rejects(writeImage(f, makeImage(2, 2)), (e: Error) => e instanceof ImageError && /\.gifx/.test(e.message));
  assert.equal(fs.existsSync(f), false);
});

test('toUint8 clips out-of-range and NaN values; encodeImage is deterministic', async () => {
  const img = makeImage(1, 2, new Float32Array([-0.5, 0.5, 1.5, NaN, 1, 0]));
  assert.deepEqual(Array.from(toUint8(img)), [0, 128, 255, 0, 255, 0]);
  const a = await encodeImage(img);
  const b = await encodeImage(img);
  assert.ok(a.equals(b));
});
