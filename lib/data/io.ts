/**
 * Image I/O with sharp: any common format (PNG, JPEG, WebP, TIFF, GIF, AVIF…) → RGBImage
 * (float32 RGB in [0,1], HWC), and RGBImage → PNG/JPEG written atomically.
 *
 * - grayscale is expanded to RGB, alpha is dropped (flattened onto nothing: the colour channels are kept),
 * - 8-bit and 16-bit inputs are both mapped to [0,1] (divided by 255 or 65535),
 * - EXIF orientation is applied,
 * - CMYK (JPEG, TIFF) is converted to sRGB, 16-bit PNG/TIFF keep their 16 bits until [0,1],
 * - WebP, TIFF, GIF (first frame), AVIF/HEIF where libvips has the codec,
 * - a pixel limit (default 64 Mpx, `TDR_MAX_PIXELS` to change) refuses decompression bombs
 *   before decoding, with an error that names the file and its size,
 * - `maxSide` decodes a reduced view (shrink-on-load for JPEG/WebP) for callers that need no more.
 * Every failure is an `ImageError` whose message names the file and what was wrong.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp, { Metadata, OutputInfo } from 'sharp';
import { RGBImage, makeImage } from './image';
import { writeFileAtomicAsync } from '../util/fsx';
import { UserError } from '../util/errors';

sharp.cache(false);

export class ImageError extends UserError {
  override name = 'ImageError';
}

export const DEFAULT_MAX_PIXELS = 64_000_000;

export function maxPixels(): number {
  const env = process.env.TDR_MAX_PIXELS;
  if (env === undefined || env === '') return DEFAULT_MAX_PIXELS;
  const n = Number(env);
  if (!(Number.isInteger(n) && n > 0)) throw new ImageError(`TDR_MAX_PIXELS must be a positive integer, got '${env}'`);
  return n;
}

export interface ReadOptions {
  /** refuse images with more pixels than this (default: maxPixels()) */
  maxPixels?: number;
  /**
   * Decode a reduced view whose long side is at most this (Lanczos; JPEG and WebP are shrunk while
   * decoding, so a photo of any size is read in little memory). The pixel limit then applies to the
   * view, and the input may have up to libvips' own limit (0x3FFF² ≈ 268 Mpx).
   */
  maxSide?: number;
}

/** Decode an image file or buffer. `name` is used in error messages for buffers. */
export async function readImage(src: string | Uint8Array, opts: ReadOptions = {}, name?: string): Promise<RGBImage> {
  const label = typeof src === 'string' ? src : (name ?? '<buffer>');
  let input: Buffer;
  if (typeof src === 'string') {
    try {
      input = await fs.promises.readFile(src);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ImageError(`${label}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, expected an image file' : (e as Error).message}`);
    }
  } else {
    input = Buffer.from(src.buffer, src.byteOffset, src.byteLength);
  }
  if (input.length === 0) throw new ImageError(`${label}: empty file, expected an image`);
  const limit = opts.maxPixels ?? maxPixels();
  let meta: Metadata;
  try {
    // limitInputPixels: false here so that we can report the size ourselves
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ImageError(`${label}: not a readable image (${firstLine((e as Error).message)})`);
  }
  const w = meta.autoOrient?.width ?? meta.width;
  const h = meta.autoOrient?.height ?? meta.height;
  if (!w || !h) throw new ImageError(`${label}: image has no width/height`);
  const shrink = opts.maxSide !== undefined && Math.max(w, h) > opts.maxSide;
  const s = shrink ? opts.maxSide! / Math.max(w, h) : 1;
  const [ow, oh] = shrink ? [Math.max(1, Math.round(w * s)), Math.max(1, Math.round(h * s))] : [w, h];
  const VIPS_LIMIT = 0x3fff * 0x3fff;
  if (ow * oh > limit || (shrink && w * h > VIPS_LIMIT)) {
    const lim = shrink ? VIPS_LIMIT : limit;
    throw new ImageError(`${label}: ${w}x${h} = ${w * h} pixels exceeds the limit of ${lim}${shrink ? '' : ' (set TDR_MAX_PIXELS to raise it)'}`);
  }
  const sixteen = meta.depth === 'ushort' || meta.depth === 'short';
  let raw: { data: Buffer; info: OutputInfo };
  try {
    let pipe = sharp(input, { limitInputPixels: shrink ? VIPS_LIMIT : limit, failOn: 'error', sequentialRead: true }).rotate();
    if (shrink) pipe = pipe.resize(ow, oh, { fit: 'fill', kernel: 'lanczos3' });
    pipe = pipe.removeAlpha().toColourspace(sixteen ? 'rgb16' : 'srgb');
    raw = await pipe.raw({ depth: sixteen ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new ImageError(`${label}: cannot decode image (${firstLine((e as Error).message)})`);
  }
  const { info, data } = raw;
  const c = info.channels;
  const n = info.width * info.height;
  const out = new Float32Array(n * 3);
  if (sixteen) {
    const u16 = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
    for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) out[i * 3 + k] = u16[i * c + (c >= 3 ? k : 0)] / 65535;
  } else {
    for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) out[i * 3 + k] = data[i * c + (c >= 3 ? k : 0)] / 255;
  }
  return makeImage(info.height, info.width, out);
}

/** RGBImage → 8-bit RGB bytes (values clipped to [0,1], rounded half up). */
export function toUint8(img: RGBImage): Uint8Array {
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = img.data[i];
    out[i] = v <= 0 || Number.isNaN(v) ? 0 : v >= 1 ? 255 : Math.round(v * 255);
  }
  return out;
}

/** RGBImage from 8-bit RGB bytes (HWC). */
export function fromUint8(height: number, width: number, bytes: Uint8Array): RGBImage {
  const data = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) data[i] = bytes[i] / 255;
  return makeImage(height, width, data);
}

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'tiff';

/** Output file extensions and their formats. */
const OUTPUT_FORMATS: Record<string, ImageFormat> = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp', '.tif': 'tiff', '.tiff': 'tiff' };
export const OUTPUT_EXTENSIONS = Object.keys(OUTPUT_FORMATS);

/** Encode to PNG (lossless, 8-bit), JPEG (quality 95 default, 4:4:4), WebP (same quality) or TIFF (lossless, 8-bit). */
export async function encodeImage(img: RGBImage, format: ImageFormat = 'png', quality = 95): Promise<Buffer> {
  const s = sharp(Buffer.from(toUint8(img).buffer), { raw: { width: img.width, height: img.height, channels: 3 }, limitInputPixels: false });
  if (format === 'png') return s.png({ compressionLevel: 6 }).toBuffer();
  if (format === 'jpeg') return s.jpeg({ quality, chromaSubsampling: '4:4:4' }).toBuffer();
  if (format === 'webp') return s.webp({ quality }).toBuffer();
  return s.tiff({ compression: 'lzw' }).toBuffer();
}

/** The format implied by a file name's extension, or an ImageError naming it. */
export function formatFromPath(file: string): ImageFormat {
  const ext = path.extname(file).toLowerCase();
  const f = OUTPUT_FORMATS[ext];
  if (f) return f;
  throw new ImageError(`${file}: unsupported output extension '${ext || '(none)'}', expected .png, .jpg, .jpeg, .webp, .tif or .tiff`);
}

/** Write an image atomically (temp file + rename); format from the extension. */
export async function writeImage(file: string, img: RGBImage, quality = 95): Promise<void> {
  const fmt = formatFromPath(file);
  const buf = await encodeImage(img, fmt, quality);
  await writeFileAtomicAsync(file, buf);
}

/** Resize with sharp (Lanczos3 by default; 'cubic' for bicubic, 'nearest'). Values are quantised to 8 bit. */
export async function resizeImage(img: RGBImage, width: number, height: number, kernel: 'lanczos3' | 'cubic' | 'nearest' | 'linear' = 'lanczos3'): Promise<RGBImage> {
  const { data, info } = await sharp(Buffer.from(toUint8(img).buffer), { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { kernel, fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return fromUint8(info.height, info.width, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** Downscale (Lanczos) so that the long side is at most `maxSide`; smaller images are returned as they are. */
export async function fitLongSide(img: RGBImage, maxSide: number): Promise<RGBImage> {
  const s = maxSide / Math.max(img.width, img.height);
  if (s >= 1) return img;
  return resizeImage(img, Math.max(1, Math.round(img.width * s)), Math.max(1, Math.round(img.height * s)), 'lanczos3');
}

function firstLine(s: string): string {
  return s.split('\n')[0].trim();
}
