/**
 * Checkpoint files (`.tdrc`): one file = a JSON header (config, step, metadata, tensor index) + one
 * binary blob of named tensors, float32 or float16. Written atomically (temp file + rename), so a
 * crash never leaves a half-written checkpoint; the reader checks magic, header, sizes and names, and
 * every error names the file.
 *
 * Integrity: the header holds `sha256`, the SHA-256 of the blob, and the reader verifies it (a flipped
 * byte anywhere in the tensors is refused, not loaded as a slightly different model). Files written
 * before the checksum existed have none and are still read. Whatever the file, a tensor with a
 * non-finite value (NaN, ±Inf — e.g. a corrupted float16 exponent) is refused.
 *
 * Layout: "TDRC1\n" | uint32 LE header byte length | header JSON (utf8) | zero padding to 8 | blob.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { writeFileAtomic } from './fsx';
import { UserError } from './errors';

export type Named = Map<string, { shape: number[]; data: Float32Array }>;

export interface CheckpointHeader {
  format: 1;
  /** anything JSON: resolved config, step, best metric, rng seeds, kind of model… */
  meta: Record<string, unknown>;
  tensors: Array<{ name: string; shape: number[]; dtype: 'float32' | 'float16'; offset: number; bytes: number }>;
  /** SHA-256 (hex) of the blob; absent in files written before it was recorded */
  sha256?: string;
}

const MAGIC = Buffer.from('TDRC1\n', 'ascii');

/** A checkpoint file that cannot be read or does not fit: a user error (one line naming the file). */
export class CheckpointError extends UserError {
  override name = 'CheckpointError';
}

/** Write a checkpoint atomically. `float16` stores tensors at half precision (for shipped models). */
export function saveCheckpoint(file: string, meta: Record<string, unknown>, tensors: Named, opts: { float16?: boolean } = {}): void {
  const dtype = opts.float16 ? 'float16' : 'float32';
  const index: CheckpointHeader['tensors'] = [];
  const parts: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new CheckpointError(`${file}: tensor '${name}' has ${t.data.length} values for shape [${t.shape}]`);
    const buf = opts.float16 ? Buffer.from(toFloat16(t.data).buffer) : Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const pad = (8 - (buf.length % 8)) % 8;
    index.push({ name, shape: [...t.shape], dtype, offset, bytes: buf.length });
    parts.push(Buffer.from(buf), Buffer.alloc(pad));
    offset += buf.length + pad;
  }
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  const header: CheckpointHeader = { format: 1, meta, tensors: index, sha256: hash.digest('hex') };
  const hjson = Buffer.from(JSON.stringify(header), 'utf8');
  const hlen = Buffer.alloc(4);
  hlen.writeUInt32LE(hjson.length);
  const prefix = Buffer.concat([MAGIC, hlen, hjson]);
  const pad = Buffer.alloc((8 - (prefix.length % 8)) % 8);
  writeFileAtomic(file, Buffer.concat([prefix, pad, ...parts]));
}

function openError(file: string, e: unknown): CheckpointError {
  const code = (e as NodeJS.ErrnoException).code;
  return new CheckpointError(`${file}: ${code === 'ENOENT' ? 'no such checkpoint file' : (e as Error).message}`);
}

const PREFIX = MAGIC.length + 4; // magic + uint32 header length

/** Check the magic and read the header length from the first PREFIX bytes. */
function headerLength(file: string, prefix: Buffer): number {
  if (prefix.length < PREFIX || !prefix.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new CheckpointError(`${file}: not a tdr checkpoint (bad magic; expected a .tdrc file written by tdr)`);
  }
  return prefix.readUInt32LE(MAGIC.length);
}

/** Parse the header JSON (`json` = the hlen bytes after the prefix, or fewer if the file is truncated). */
function parseHeader(file: string, json: Buffer, hlen: number): CheckpointHeader {
  if (json.length < hlen) throw new CheckpointError(`${file}: truncated checkpoint (header of ${hlen} bytes does not fit)`);
  let header: CheckpointHeader;
  try {
    header = JSON.parse(json.toString('utf8'));
  } catch {
    throw new CheckpointError(`${file}: corrupt checkpoint header (not JSON)`);
  }
  if (header.format !== 1 || !Array.isArray(header.tensors) || !header.meta || typeof header.meta !== 'object') {
    throw new CheckpointError(`${file}: unsupported checkpoint format ${String(header.format)}`);
  }
  return header;
}

/** Read a checkpoint; values come back as float32 whatever the stored dtype. */
export function loadCheckpoint(file: string): { meta: Record<string, unknown>; tensors: Named } {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw openError(file, e);
  }
  const hlen = headerLength(file, buf.subarray(0, PREFIX));
  const hstart = PREFIX;
  const header = parseHeader(file, buf.subarray(hstart, hstart + hlen), hlen);
  const blobStart = hstart + hlen + ((8 - ((hstart + hlen) % 8)) % 8);
  if (header.sha256 !== undefined) {
    const blobEnd = blobStart + header.tensors.reduce((a, t) => Math.max(a, t.offset + t.bytes + ((8 - (t.bytes % 8)) % 8)), 0);
    if (blobEnd > buf.length) throw new CheckpointError(`${file}: truncated checkpoint (${buf.length} bytes, the tensors need ${blobEnd})`);
    const got = createHash('sha256').update(buf.subarray(blobStart, blobEnd)).digest('hex');
    if (got !== header.sha256) {
      throw new CheckpointError(`${file}: corrupt checkpoint: the tensor data's sha256 is ${got.slice(0, 12)}…, the header records ${String(header.sha256).slice(0, 12)}… (the file was damaged after it was written; restore it from its source or retrain)`);
    }
  }
  const tensors: Named = new Map();
  for (const t of header.tensors) {
    const start = blobStart + t.offset;
    if (start + t.bytes > buf.length) throw new CheckpointError(`${file}: truncated checkpoint (tensor '${t.name}' ends past the end of the file)`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    const bytesPer = t.dtype === 'float16' ? 2 : 4;
    if (n * bytesPer !== t.bytes) throw new CheckpointError(`${file}: tensor '${t.name}' has ${t.bytes} bytes, shape [${t.shape}] needs ${n * bytesPer}`);
    const raw = buf.subarray(start, start + t.bytes);
    const copy = new Uint8Array(raw.length);
    copy.set(raw);
    const data = t.dtype === 'float16' ? fromFloat16(new Uint16Array(copy.buffer)) : new Float32Array(copy.buffer);
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new CheckpointError(`${file}: corrupt checkpoint: tensor '${t.name}' holds a non-finite value (${data[bad]} at index ${bad}); restore the file from its source or retrain`);
    tensors.set(t.name, { shape: t.shape, data });
  }
  return { meta: header.meta, tensors };
}

/**
 * Only the meta of a checkpoint, reading its header and not the tensors (cheap for a 30 MB run
 * checkpoint). Same errors as loadCheckpoint for a missing, foreign or truncated file.
 */
export function readCheckpointMeta(file: string): Record<string, unknown> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw openError(file, e);
  }
  try {
    const prefix = Buffer.alloc(PREFIX);
    const hlen = headerLength(file, prefix.subarray(0, fs.readSync(fd, prefix, 0, PREFIX, 0)));
    const json = Buffer.alloc(hlen);
    return parseHeader(file, json.subarray(0, fs.readSync(fd, json, 0, hlen, PREFIX)), hlen).meta;
  } finally {
    fs.closeSync(fd);
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE 754 half (round to nearest even; overflow → ±inf; NaN kept). */
export function toFloat16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    f32[0] = src[i];
    const x = u32[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    let e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let h = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && h & 1)) h++;
      out[i] = sign | h;
      continue;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
    out[i] = sign | h;
  }
  return out;
}

/** The float32 value of one IEEE 754 half. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** All 65536 halves as float32, built on first use (256 KiB): a model's weights convert by lookup. */
let halfTable: Float32Array | undefined;

/** IEEE 754 half → float32. */
export function fromFloat16(src: Uint16Array): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  const table = halfTable;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
  return out;
}
