/** Small image fixtures made on the fly (nothing downloaded). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';

export function tmpDir(prefix = 'tdr-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A deterministic smooth colour test pattern as 8-bit RGB bytes. */
export function patternBytes(h: number, w: number, channels = 3): Uint8Array {
  const out = new Uint8Array(h * w * channels);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < channels; c++)
        out[(y * w + x) * channels + c] = (x * 7 + y * 13 + c * 60 + ((x * y) % 31)) % 256;
  return out;
}

export async function writePattern(file: string, h: number, w: number, opts: { channels?: 1 | 2 | 3 | 4; sixteen?: boolean } = {}): Promise<void> {
  const channels = opts.channels ?? 3;
  let s = sharp(Buffer.from(patternBytes(h, w, channels)), { raw: { width: w, height: h, channels } });
  if (opts.sixteen) s = s.toColourspace(channels >= 3 ? 'rgb16' : 'grey16');
  const ext = path.extname(file).toLowerCase();
  if (ext === '.jpg') await s.jpeg({ quality: 95 }).toFile(file);
  else await s.png().toFile(file);
}

/** One PNG chunk: length, type, data, CRC-32 of type + data. */
export function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A valid PNG header claiming width×height pixels, with no real image data (a decompression-bomb stand-in). */
export function pngBombHeader(width: number, height: number): Buffer {
  const chunk = pngChunk;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]);
}

/** CRC-32 (IEEE 802.3), as PNG chunks use. */
export function crc32(buf: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) {
    c ^= buf[i];
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}
