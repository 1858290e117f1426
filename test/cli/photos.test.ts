/**
 * Photos as users have them, through `tdr restore`: EXIF orientation applied, CMYK JPEG converted,
 * 16-bit PNG kept at 16 bits until [0,1], WebP and TIFF read and written, a JPEG beyond the pixel
 * limit refused naming its size (or read reduced where a reduced view is all that is needed), and
 * the output of the input's (displayed) size. Every file is made here with sharp.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { initBackend } from '../../lib/backend';
import { saveCiRestorer } from '../helpers/restorers';
import { restoreCommand } from '../../lib/cli/commands/restore';
import { ImageError, readImage } from '../../lib/data/io';
import { UserError } from '../../lib/util/errors';
import { patternBytes, pngChunk, tmpDir } from '../helpers/fixtures';
import * as zlib from 'node:zlib';

const dir = tmpDir('tdr-cli-photos-');
const ck = path.join(dir, 'plain.tdrc');
const f = (n: string) => path.join(dir, n);

/** 8-bit RGB pattern, top-left 4×4 pure red (to see where the corner goes). */
function marked(h: number, w: number): Buffer {
  const b = Buffer.from(patternBytes(h, w));
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) b.set([255, 0, 0], (y * w + x) * 3);
  return b;
}

test.before(async () => {
  await initBackend({ quiet: true });
  saveCiRestorer(ck);
  const raw = (h: number, w: number) => sharp(marked(h, w), { raw: { width: w, height: h, channels: 3 } });
  // stored 40 wide × 24 high, EXIF orientation 6: displayed rotated 90° clockwise, 24 wide × 40 high
  await raw(24, 40).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(f('rotated.jpg'));
  await raw(24, 40).toColourspace('cmyk').jpeg({ quality: 95 }).toFile(f('cmyk.jpg'));
  await raw(24, 40).webp({ quality: 95 }).toFile(f('photo.webp'));
  await raw(24, 40).tiff().toFile(f('photo.tif'));
  // 16-bit: values between 8-bit steps
  const h = 24, w = 40;
  const d16 = new Uint16Array(h * w * 3);
  for (let i = 0; i < d16.length; i++) d16[i] = (i * 997 + 12345) % 65536;
  fs.writeFileSync(f('sixteen.png'), png16(h, w, d16));
  await raw(300, 200).jpeg().toFile(f('large.jpg'));
});
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A 16-bit RGB PNG written byte by byte (big-endian samples, filter 0), so that no encoder rounds it. */
function png16(h: number, w: number, d: Uint16Array): Buffer {
  const chunk = pngChunk;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 16;
  ihdr[9] = 2;
  const rows = Buffer.alloc(h * (1 + w * 6));
  for (let y = 0; y < h; y++) for (let i = 0; i < w * 3; i++) rows.writeUInt16BE(d[y * w * 3 + i], y * (1 + w * 6) + 1 + 2 * i);
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

async function restore(input: string, out: string): Promise<number> {
  return restoreCommand.run([input, '--backbone', 'nafnet', '--no-guidance', '--checkpoint', ck, '--out', out]);
}

test('EXIF orientation is applied: a 40×24 JPEG tagged orientation 6 reads and restores as 24×40 with its corner top-right', async () => {
  const x = await readImage(f('rotated.jpg'));
  assert.deepEqual([x.width, x.height], [24, 40]);
  const px = (img: typeof x, yy: number, xx: number) => Array.from(img.data.subarray((yy * img.width + xx) * 3, (yy * img.width + xx) * 3 + 3));
  const [r, g, b] = px(x, 1, 22);
  assert.ok(r > 0.8 && g < 0.25 && b < 0.25, `the red corner is top-right after rotating: ${[r, g, b]}`);
  assert.equal(await restore(f('rotated.jpg'), f('rotated-out.png')), 0);
  const y = await readImage(f('rotated-out.png'));
  assert.deepEqual([y.width, y.height], [24, 40], 'the output keeps the displayed size');
});

test('a CMYK JPEG is converted to sRGB (the red corner stays red) and restores', async () => {
  const meta = await sharp(f('cmyk.jpg')).metadata();
  assert.equal(meta.space, 'cmyk', 'the fixture really is CMYK');
  const x = await readImage(f('cmyk.jpg'));
  const [r, g, b] = Array.from(x.data.subarray((40 + 1) * 3, (40 + 1) * 3 + 3));
  assert.ok(r > 0.7 && g < 0.3 && b < 0.3, `red: ${[r, g, b]}`);
  assert.equal(await restore(f('cmyk.jpg'), f('cmyk-out.jpg')), 0);
  const y = await readImage(f('cmyk-out.jpg'));
  assert.deepEqual([y.width, y.height], [40, 24]);
});

test('a 16-bit PNG keeps its 16 bits until [0,1] and restores', async () => {
  const x = await readImage(f('sixteen.png'));
  for (const i of [0, 1, 2, 1000, 2879]) assert.ok(Math.abs(x.data[i] - ((i * 997 + 12345) % 65536) / 65535) < 1e-6, `value ${i}: ${x.data[i]}`);
  assert.equal(await restore(f('sixteen.png'), f('sixteen-out.png')), 0);
  assert.deepEqual(await sharp(f('sixteen-out.png')).metadata().then((m) => [m.width, m.height]), [40, 24]);
});

test('WebP and TIFF are read and written (the output format follows --out)', async () => {
  for (const [input, out, format] of [
    ['photo.webp', 'webp-out.webp', 'webp'],
    ['photo.tif', 'tif-out.tif', 'tiff'],
    ['photo.webp', 'webp-out.png', 'png'],
  ]) {
    assert.equal(await restore(f(input), f(out)), 0, input);
    const m = await sharp(f(out)).metadata();
    assert.deepEqual([m.format, m.width, m.height], [format, 40, 24], `${input} → ${out}`);
  }
});

test('a JPEG beyond the pixel limit: refused by restore with its size and the limit; read reduced within the limit where a reduced view is asked for', async () => {
  const prev = process.env.TDR_MAX_PIXELS;
  process.env.TDR_MAX_PIXELS = '50000';
  try {
    await assert.rejects(restore(f('large.jpg'), f('large-out.png')), (e: Error) => e instanceof UserError && /large\.jpg: 200x300 = 60000 pixels exceeds the limit of 50000 \(set TDR_MAX_PIXELS to raise it\)/.test(e.message));
    assert.ok(!fs.existsSync(f('large-out.png')));
    await assert.rejects(readImage(f('large.jpg')), ImageError);
    const small = await readImage(f('large.jpg'), { maxSide: 128 });
    assert.deepEqual([small.width, small.height], [85, 128], 'shrunk while decoding, aspect kept');
  } finally {
    if (prev === undefined) delete process.env.TDR_MAX_PIXELS;
    else process.env.TDR_MAX_PIXELS = prev;
  }
});
