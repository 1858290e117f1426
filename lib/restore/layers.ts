/**
 * Small tensor helpers shared by the restoration backbones (NAFNet, Restormer, PromptIR) and the
 * dynamic-aggregation matcher. NHWC throughout.
 *
 * Why these exist (tfjs 4.22): tfjs has no `spaceToDepth` op at all and no gradient for
 * `depthToSpace`, so pixel-(un)shuffle are written here with their gradients; there is no
 * replicate padding (edge copies are concatenated instead); `tf.gather`'s gradient needs
 * UnsortedSegmentSum, which the matcher avoids entirely (see aggregation.ts).
 *
 * Channel order of the (un)shuffle is tfjs's depthToSpace order, channel = (i·r + j)·C + c; PyTorch's
 * PixelShuffle uses c·r² + i·r + j. Same operation up to a fixed channel permutation, which only
 * matters when importing PyTorch weights (we train from scratch).
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng';

/**
 * Pixel-unshuffle (space-to-depth) by `r`.
 * @param x [B,H,W,C] with H and W divisible by r
 * @returns [B,H/r,W/r,r²·C], channel (i·r + j)·C + c holds x[b, h·r+i, w·r+j, c]
 */
export function pixelUnshuffle(x: tf.Tensor4D, r: number): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  if (!Number.isInteger(r) || r < 1) throw new Error(`pixelUnshuffle: r must be a positive integer, got ${r}`);
  if (h % r !== 0 || w % r !== 0) throw new Error(`pixelUnshuffle: x [${x.shape}] spatial size must be divisible by r=${r}`);
  if (r === 1) return x.clone();
  return tf.tidy(() =>
    x
      .reshape([b, h / r, r, w / r, r, c]) // [B,H/r,i,W/r,j,C]
      .transpose([0, 1, 3, 2, 4, 5]) // [B,H/r,W/r,i,j,C]
      .reshape([b, h / r, w / r, r * r * c]),
  );
}

const shuffleGrad = new Map<number, (x: tf.Tensor4D) => tf.Tensor4D>();

/**
 * Pixel-shuffle (depth-to-space) by `r`, the inverse of `pixelUnshuffle`: tfjs's fast
 * `depthToSpace` forward with the (permutation) gradient supplied here, since tfjs has none.
 * @param x [B,H,W,r²·C] → [B,H·r,W·r,C]
 */
export function pixelShuffle(x: tf.Tensor4D, r: number): tf.Tensor4D {
  if (!Number.isInteger(r) || r < 1) throw new Error(`pixelShuffle: r must be a positive integer, got ${r}`);
  if (x.shape[3] % (r * r) !== 0) throw new Error(`pixelShuffle: x [${x.shape}] channels must be divisible by r²=${r * r}`);
  if (r === 1) return x.clone();
  let f = shuffleGrad.get(r);
  if (!f) {
    f = tf.customGrad(((xi: tf.Tensor) => ({
      value: tf.depthToSpace(xi as tf.Tensor4D, r),
      gradFunc: (dy: tf.Tensor) => pixelUnshuffle(dy as tf.Tensor4D, r),
    })) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor4D) => tf.Tensor4D;
    shuffleGrad.set(r, f);
  }
  return f(x);
}

/**
 * `pixelUnshuffle(conv3x3_same(x, w), 2)` as one 4×4 stride-2 conv: output channel (i·2 + j)·C' + c at
 * (h, w) is the 3×3 conv at (2h + i, 2w + j), i.e. the filter w placed at offset (i, j) of a 4×4 window
 * over the input padded by one pixel on each side. Same products and sums (plus exact zeros), in a
 * kernel that oneDNN runs about 3.5× faster than the 3×3 conv to few channels.
 * @param x [B,H,W,C], H and W even @param w [3,3,C,C'] → [B,H/2,W/2,4C']
 */
export function unshuffledConv(x: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D {
  const [, h, wd] = x.shape;
  if (h % 2 !== 0 || wd % 2 !== 0) throw new Error(`unshuffledConv: x [${x.shape}] spatial size must be even`);
  if (w.shape[0] !== 3 || w.shape[1] !== 3) throw new Error(`unshuffledConv: filter [${w.shape}] must be 3×3`);
  return tf.tidy(() => {
    const parts: tf.Tensor4D[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) parts.push(tf.pad(w, [[i, 1 - i], [j, 1 - j], [0, 0], [0, 0]]) as tf.Tensor4D);
    return tf.conv2d(x, tf.concat(parts, 3) as tf.Tensor4D, 2, [[0, 0], [1, 1], [1, 1], [0, 0]]);
  });
}

/**
 * A 3×3 'same' conv (stride 1) as one matMul to the 9·C' tap outputs z, then the sum of the nine
 * shifted C'-channel slices of z (zero-padded by one): y[h,w] = Σ_{ky,kx} z_{ky,kx}[h+ky−1, w+kx−1] + b.
 * The same function as tf.conv2d; for few output channels (the restorers' last conv to RGB) much faster
 * on TensorFlow's CPU kernels.
 * @param x [B,H,W,C] @param w [3,3,C,C'] @param bias [C'] → [B,H,W,C']
 */
export function conv3x3ByTaps(x: tf.Tensor4D, w: tf.Tensor4D, bias?: tf.Tensor): tf.Tensor4D {
  const [b, h, wd, c] = x.shape;
  const co = w.shape[3];
  if (w.shape[0] !== 3 || w.shape[1] !== 3 || w.shape[2] !== c) throw new Error(`conv3x3ByTaps: filter [${w.shape}] must be [3,3,${c},C']`);
  return tf.tidy(() => {
    const taps = w.transpose([2, 0, 1, 3]).reshape([c, 9 * co]); // column (ky·3 + kx)·C' + c'
    const z = tf.matMul(x.reshape([b * h * wd, c]), taps).reshape([b, h, wd, 9 * co]);
    const zp = tf.pad(z, [[0, 0], [1, 1], [1, 1], [0, 0]]);
    z.dispose();
    const parts: tf.Tensor4D[] = [];
    for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) parts.push(tf.slice(zp, [0, ky, kx, (ky * 3 + kx) * co], [b, h, wd, co]) as tf.Tensor4D);
    const y = tf.addN(parts) as tf.Tensor4D;
    return bias ? (tf.add(y, bias) as tf.Tensor4D) : y;
  });
}

/**
 * Replicate ("edge") padding of the two spatial axes by `p` (PyTorch `F.pad(mode='replicate')`).
 * @param x [B,H,W,C] → [B,H+2p,W+2p,C]
 */
export function replicatePad(x: tf.Tensor4D, p: number): tf.Tensor4D {
  if (p === 0) return x.clone();
  return tf.tidy(() => {
    const [, h, w] = x.shape;
    const rep = (t: tf.Tensor4D, axis: 1 | 2, at: number) => {
      const begin = [0, 0, 0, 0];
      const size = [-1, -1, -1, -1];
      begin[axis] = at;
      size[axis] = 1;
      const edge = tf.slice(t, begin, size);
      return tf.concat(Array.from({ length: p }, () => edge), axis);
    };
    const rows = tf.concat([rep(x, 1, 0), x, rep(x, 1, h - 1)], 1) as tf.Tensor4D;
    return tf.concat([rep(rows, 2, 0), rows, rep(rows, 2, w - 1)], 2) as tf.Tensor4D;
  });
}

/** Zero-pad bottom/right so that H and W become multiples of `m` (as the originals' `check_image_size`). */
export function padToMultiple(x: tf.Tensor4D, m: number, minSize = 0): tf.Tensor4D {
  const [, h, w] = x.shape;
  const th = Math.max(Math.ceil(h / m) * m, Math.ceil(minSize / m) * m);
  const tw = Math.max(Math.ceil(w / m) * m, Math.ceil(minSize / m) * m);
  if (th === h && tw === w) return x.clone();
  return tf.pad(x, [
    [0, 0],
    [0, th - h],
    [0, tw - w],
    [0, 0],
  ]);
}

/** Crop the top-left h×w of x [B,H,W,C]. */
export function cropTo(x: tf.Tensor4D, h: number, w: number): tf.Tensor4D {
  if (x.shape[1] === h && x.shape[2] === w) return x.clone();
  return tf.slice(x, [0, 0, 0, 0], [-1, h, w, -1]);
}

/** L2-normalise along the last axis, as PyTorch `F.normalize(eps=1e-12)`: x / max(‖x‖, eps). */
export function l2normalize<T extends tf.Tensor>(x: T, eps = 1e-12): T {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.sqrt(tf.sum(tf.square(x), -1, true)), eps)) as T);
}

/** Exact GELU, 0.5·x·(1 + erf(x/√2)) (PyTorch `F.gelu` default; wasm has an Erf kernel). */
export function geluErf<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => {
    // written out so that at most two temporaries of x's size are alive (inference memory)
    const a = tf.mul(x, Math.SQRT1_2);
    const e = tf.erf(a);
    a.dispose();
    const f = tf.add(e, 1);
    e.dispose();
    const h = tf.mul(x, 0.5);
    const y = tf.mul(h, f) as T;
    tf.dispose([h, f]);
    return y;
  });
}

/** Split the channel axis of [B,H,W,C] into two halves (PyTorch `chunk(2, dim=1)`). */
export function chunk2(x: tf.Tensor4D): [tf.Tensor4D, tf.Tensor4D] {
  const c = x.shape[3];
  if (c % 2 !== 0) throw new Error(`chunk2: x [${x.shape}] has an odd number of channels`);
  const [a, b] = tf.split(x, 2, 3);
  return [a as tf.Tensor4D, b as tf.Tensor4D];
}

/** Check an image batch: rank 4, 3 channels. `who` names the caller in the message. */
export function checkImage(who: string, name: string, x: tf.Tensor): asserts x is tf.Tensor4D {
  if (x.rank !== 4) throw new Error(`${who}: ${name} must be [B,H,W,3], got rank ${x.rank} [${x.shape}]`);
  if (x.shape[3] !== 3) throw new Error(`${who}: ${name} [${x.shape}] must have 3 channels (RGB)`);
  if (x.dtype !== 'float32') throw new Error(`${who}: ${name} must be float32 in [0,1], got ${x.dtype}`);
}

/**
 * Where a backbone takes guidance (Eq. 4): one fusion block per resolution level l = 0..levels−1
 * (level l at 1/2^l of the padded input), fed the transferred guidance features F̂g of that level.
 * Fusion parameters live under `prefix` (the guided wrapper passes `<prefix>.masa`, so that a
 * separate LR / freeze can target them, as the official "masa" name filter does).
 */
export interface FusionSpec {
  prefix: string;
  /** channels of F̂g at each level, length = backbone levels */
  channels: number[];
  /** random stream for the fusion blocks (default: the backbone's), so shared weights do not depend on guidance */
  rng?: Rng;
}

/**
 * Where an input tile lies in the whole image it was cut from (lib/restore/tiled.ts), for layers whose
 * output depends on the position in the image (PromptIR's prompts are resized to the whole image,
 * and a tile takes its part of them). Pixels at full resolution; the whole image as padded.
 */
export interface TileRegion {
  top: number;
  left: number;
  /** the whole (padded) image */
  height: number;
  width: number;
}

/**
 * Rows [offset, offset + n) of the matrix that resizes S samples to `size` bilinearly with half-pixel
 * centres (tf.image.resizeBilinear(…, alignCorners false, halfPixelCenters true), edges clamped):
 * [n, S], two non-zeros per row.
 */
export function bilinearRows(S: number, size: number, offset: number, n: number): tf.Tensor2D {
  const m = new Float32Array(n * S);
  const ratio = S / size;
  for (let r = 0; r < n; r++) {
    const src = ratio * (offset + r + 0.5) - 0.5;
    const lo = Math.max(0, Math.floor(src));
    const frac = src - lo;
    const hi = Math.min(S - 1, Math.ceil(src));
    m[r * S + lo] += 1 - frac;
    m[r * S + hi] += frac;
  }
  return tf.tensor2d(m, [n, S]);
}

/**
 * The part [top, top+n) × [left, left+m) of `resizeBilinear(p, [height, width], false, true)`,
 * computed without the whole resized map.
 * @param p [B,S,S2,C] @returns [B,n,m,C]
 */
export function resizeBilinearWindow(p: tf.Tensor4D, height: number, width: number, top: number, left: number, n: number, m: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, s1, s2, c] = p.shape;
    const ry = bilinearRows(s1, height, top, n);
    const rx = bilinearRows(s2, width, left, m);
    const rows = tf.matMul(ry, p.transpose([1, 0, 2, 3]).reshape([s1, b * s2 * c])).reshape([n, b, s2, c]); // [n,B,S2,C]
    const cols = tf.matMul(rx, rows.transpose([2, 1, 0, 3]).reshape([s2, b * n * c])).reshape([m, b, n, c]); // [m,B,n,C]
    return cols.transpose([1, 2, 0, 3]) as tf.Tensor4D;
  });
}

/** What `GuidedRestorer` needs from a backbone. */
export interface RestorationBackbone {
  /** number of resolution levels (fusion points): level l is at 1/2^l */
  readonly levels: number;
  /** H and W of the input must be multiples of this (inputs are padded to it and cropped back) */
  readonly sizeMultiple: number;
  /** backbone feature channels at each fusion level */
  readonly levelChannels: number[];
  /**
   * @param x [B,H,W,3] in [0,1]; any H, W (zero-padded to `sizeMultiple`, cropped back)
   * @param guidance F̂g per level, [B,Hp/2^l,Wp/2^l,channels[l]] for the padded size Hp×Wp
   * @param region where x lies in a larger image when it is a tile of it (x then a multiple of
   *   `sizeMultiple`, at a multiple of it)
   * @returns [B,H,W,3] = x + predicted residual (not clipped)
   */
  call(x: tf.Tensor4D, guidance?: tf.Tensor4D[], region?: TileRegion): tf.Tensor4D;
}

/** Validate the guidance list a backbone got against its fusion spec and padded size. */
export function checkGuidance(who: string, spec: FusionSpec | undefined, guidance: tf.Tensor4D[] | undefined, b: number, hp: number, wp: number): void {
  if (guidance == null) return;
  if (!spec) throw new Error(`${who}: guidance features given, but the backbone was built without fusion blocks`);
  if (guidance.length !== spec.channels.length) {
    throw new Error(`${who}: expected guidance features for ${spec.channels.length} levels, got ${guidance.length}`);
  }
  guidance.forEach((g, l) => {
    const want = [b, hp / 2 ** l, wp / 2 ** l, spec.channels[l]];
    if (g.rank !== 4 || g.shape.some((d, i) => d !== want[i])) {
      throw new Error(`${who}: guidance level ${l} must be [${want}] (padded input ${hp}×${wp}), got [${g.shape}]`);
    }
  });
}

/** Apply the blocks in turn; the intermediate outputs (not `x`) are disposed once consumed. */
export function runBlocks(blocks: { call(x: tf.Tensor4D): tf.Tensor4D }[], x: tf.Tensor4D): tf.Tensor4D {
  let h = x;
  for (const blk of blocks) h = replaced(h, blk.call(h), x);
  return h;
}

/**
 * `next`, after disposing `prev` unless it is one of `keep` (inference memory: a forward pass holds only
 * the live activations; under a gradient tape the engine keeps its own copies of what backprop needs).
 */
export function replaced(prev: tf.Tensor4D, next: tf.Tensor4D, ...keep: tf.Tensor[]): tf.Tensor4D {
  if (prev !== next && !keep.includes(prev)) prev.dispose();
  return next;
}

// ---------------------------------------------------------------------------------------------
// Whole-image statistics of a tiled pass

/** The pixels of a tile that count for it in the whole image's statistics: a partition of the image over the tiles (tile coordinates, full resolution). */
export interface CoreRegion {
  top: number;
  left: number;
  bottom: number;
  right: number;
  tileHeight: number;
  tileWidth: number;
}

/**
 * The statistics that make a restorer's output depend on the WHOLE image — Restormer/PromptIR's MDTA
 * attention (channel correlations normalised over all pixels), PromptIR's prompt weights and NAFNet's
 * channel attention (global average pooling) — gathered over the tiles of an image and handed back to
 * them (lib/restore/tiled.ts): in a pass every op adds the sums over the tile's core region
 * (`CoreRegion`; the cores partition the padded image), and in the next pass it uses the sums of all
 * tiles, i.e. the statistics of the whole image as the previous pass saw it. Ops are told apart by
 * their call order, which is the same in every tile. Outside a tiled pass (`withImageStatistics`)
 * nothing changes.
 */
export class ImageStatistics {
  /** the whole image's sums of the previous pass (what ops use), per op */
  private whole: { sums: Float64Array[]; counts: number[] } | null = null;
  /** this pass's sums, per op */
  private sums: Float64Array[] = [];
  private counts: number[] = [];
  private recording = true;
  private calls = 0;
  private core?: CoreRegion;

  /** Start a tile (resets the op counter). */
  startTile(core: CoreRegion): void {
    this.core = core;
    this.calls = 0;
  }

  /**
   * After every tile of a pass: the ops of the next pass take this pass's sums (the whole image's
   * statistics); `record` = gather them again in the next pass (for yet another one).
   */
  nextPass(record: boolean): void {
    this.whole = { sums: this.sums, counts: this.counts };
    this.sums = [];
    this.counts = [];
    this.recording = record;
  }

  /** Ops per tile (recorded in the last pass that recorded). */
  get ops(): number {
    return Math.max(this.sums.length, this.whole?.sums.length ?? 0);
  }

  /** The tile's core at an op's resolution: [top, left, bottom, right] of an h×w map. */
  coreAt(h: number, w: number): [number, number, number, number] {
    const c = this.core;
    if (!c) throw new Error('ImageStatistics: startTile was not called');
    const sy = c.tileHeight / h;
    const sx = c.tileWidth / w;
    const r = [c.top / sy, c.left / sx, c.bottom / sy, c.right / sx];
    if (!r.every(Number.isInteger)) throw new Error(`ImageStatistics: core [${[c.top, c.left, c.bottom, c.right]}] of a ${c.tileHeight}x${c.tileWidth} tile does not fall on the ${h}x${w} grid`);
    return r as [number, number, number, number];
  }

  /**
   * One op: adds its core sums (`values`, when recording) and returns the whole image's from the
   * previous pass (null in the first pass: the op then uses the tile's own).
   */
  next(values: () => { sums: Float32Array; count: number }): { sums: Float64Array; count: number } | null {
    const i = this.calls++;
    if (this.recording) {
      const v = values();
      if (!this.sums[i]) {
        this.sums[i] = new Float64Array(v.sums.length);
        this.counts[i] = 0;
      }
      const s = this.sums[i];
      for (let j = 0; j < s.length; j++) s[j] += v.sums[j];
      this.counts[i] += v.count;
    }
    if (!this.whole) return null;
    if (i >= this.whole.sums.length) throw new Error(`ImageStatistics: op ${i} was not recorded in the previous pass (${this.whole.sums.length} ops per tile)`);
    return { sums: this.whole.sums[i], count: this.whole.counts[i] };
  }
}

let activeStats: ImageStatistics | null = null;

/** Whether a tiled pass is gathering or applying whole-image statistics (ops then see whole tiles). */
export function imageStatisticsActive(): boolean {
  return activeStats !== null;
}

/**
 * Row bands [r0, r1) of an h-row map for ops that work band by band: as few bands as keep each within
 * `maxFloats` (of a map `floatsPerRow` wide), of nearly equal height, at least 8 rows; one band when it fits.
 */
export function rowBands(h: number, floatsPerRow: number, maxFloats: number): Array<[number, number]> {
  const n = Math.min(Math.ceil(h / 8), Math.max(1, Math.ceil((h * floatsPerRow) / maxFloats)));
  const rows = Math.ceil(h / n);
  const out: Array<[number, number]> = [];
  for (let r0 = 0; r0 < h; r0 += rows) out.push([r0, Math.min(h, r0 + rows)]);
  return out;
}

/** Run `fn` with `stats` gathering or applying the whole image's statistics (see ImageStatistics). */
export function withImageStatistics<T>(stats: ImageStatistics, fn: () => T): T {
  const prev = activeStats;
  activeStats = stats;
  try {
    return fn();
  } finally {
    activeStats = prev;
  }
}

/**
 * Global average pooling over H and W, [B,H,W,C] → [B,C] (or [B,1,1,C] with keepDims): of the tile as
 * usual, or of the whole image inside a tiled pass (ImageStatistics).
 */
export function spatialMean(x: tf.Tensor4D, keepDims = false): tf.Tensor {
  const s = activeStats;
  const [b, h, w, c] = x.shape;
  const shape = keepDims ? [b, 1, 1, c] : [b, c];
  if (!s) return tf.mean(x, [1, 2], keepDims);
  const whole = s.next(() => {
    const [t, l, bo, r] = s.coreAt(h, w);
    const sums = tf.tidy(() => tf.sum(tf.slice(x, [0, t, l, 0], [-1, bo - t, r - l, -1]), [1, 2]));
    const data = sums.dataSync() as Float32Array;
    sums.dispose();
    return { sums: data, count: (bo - t) * (r - l) };
  });
  if (!whole) return tf.mean(x, [1, 2], keepDims);
  return tf.tensor(Float32Array.from(whole.sums, (v) => v / whole.count), shape);
}

/**
 * qᵀk / (max(√Σq², ε) · max(√Σk², ε)ᵀ) from the sums: gram [B,C,C], Σq² and Σk² [B,C] (or [B·C]).
 */
export function gramFromSums(gram: tf.Tensor3D, sumSqQ: tf.Tensor, sumSqK: tf.Tensor, eps = 1e-12): tf.Tensor3D {
  const [b, c] = gram.shape;
  return tf.tidy(() => tf.div(gram, tf.mul(tf.maximum(tf.sqrt(sumSqQ), eps).reshape([b, c, 1]), tf.maximum(tf.sqrt(sumSqK), eps).reshape([b, 1, c]))) as tf.Tensor3D);
}

/**
 * The sums that MDTA's channel similarities are made of: qᵀk [B,C,C] and the squared norms Σq², Σk² [B,C]
 * over the pixels of q and k [B,HW,C] (they add over bands or tiles of the same map; `gramFromSums` divides).
 */
export function gramSums(q: tf.Tensor3D, k: tf.Tensor3D): { gram: tf.Tensor3D; sq: tf.Tensor2D; sk: tf.Tensor2D } {
  return { gram: tf.matMul(q, k, true, false), sq: tf.sum(tf.square(q), 1), sk: tf.sum(tf.square(k), 1) };
}

/**
 * MDTA's channel × channel cosine similarities in the [B,H·W,C] layout (all heads at once): qᵀk / (‖q‖‖k‖ᵀ),
 * norms over all pixels (PyTorch F.normalize's eps), which equals q̂ k̂ᵀ of `channelCorrelation` for the
 * diagonal blocks of every head — of the tile as usual, or of the whole image inside a tiled pass
 * (ImageStatistics: the sums qᵀk, Σq², Σk² over the tile's core add over tiles).
 * @param q [B,HW,C] @param k [B,HW,C] (HW = the h×w map, row-major); not disposed
 * @returns [B,C,C]
 */
export function channelGram(q: tf.Tensor3D, k: tf.Tensor3D, h: number, w: number, eps = 1e-12): tf.Tensor3D {
  const [b, , c] = q.shape;
  const fromSums = (gram: tf.Tensor3D, nq: tf.Tensor, nk: tf.Tensor): tf.Tensor3D => gramFromSums(gram, nq, nk, eps);
  const local = () =>
    tf.tidy(() => {
      const { gram, sq, sk } = gramSums(q, k);
      return fromSums(gram, sq, sk);
    });
  const s = activeStats;
  if (!s) return local();
  const whole = s.next(() => {
    const [t, l, bo, r] = s.coreAt(h, w);
    const m = new Float32Array(h * w);
    for (let y = t; y < bo; y++) m.fill(1, y * w + l, y * w + r);
    const parts = tf.tidy(() => {
      const mask = tf.tensor3d(m, [1, h * w, 1]);
      const qm = tf.mul(q, mask);
      const gram = tf.matMul(qm, k, true, false); // [B,C,C]
      const nq = tf.sum(tf.mul(qm, q), 1); // [B,C]
      const nk = tf.sum(tf.mul(tf.mul(k, mask), k), 1);
      return tf.concat([gram.reshape([-1]), nq.reshape([-1]), nk.reshape([-1])]);
    });
    const data = parts.dataSync() as Float32Array;
    parts.dispose();
    return { sums: data, count: (bo - t) * (r - l) };
  });
  if (!whole) return local();
  const g = b * c * c;
  const n = b * c;
  return tf.tidy(() =>
    fromSums(tf.tensor3d(Float32Array.from(whole.sums.subarray(0, g)), [b, c, c]), tf.tensor1d(Float32Array.from(whole.sums.subarray(g, g + n))), tf.tensor1d(Float32Array.from(whole.sums.subarray(g + n, g + 2 * n)))),
  );
}

/**
 * MDTA's attention logits before the temperature (Restormer, "Restormer: Efficient Transformer for
 * High-Resolution Image Restoration", CVPR 2022, Sec. 3.1): the channel × channel cosine similarities
 * q̂ k̂ᵀ with q and k L2-normalised over all pixels — of the tile as usual, or of the whole image inside
 * a tiled pass (ImageStatistics; the sums q kᵀ, Σq², Σk² add over tiles).
 * @param q [B,heads,ch,HW] @param k [B,heads,ch,HW] (HW = the h×w map, row-major); not disposed
 * @returns [B,heads,ch,ch]
 */
export function channelCorrelation(q: tf.Tensor4D, k: tf.Tensor4D, h: number, w: number, eps = 1e-12): tf.Tensor4D {
  const local = () =>
    tf.tidy(() => {
      const qh = l2normalize(q);
      const kh = l2normalize(k);
      return tf.matMul(qh, kh, false, true) as tf.Tensor4D;
    });
  const s = activeStats;
  if (!s) return local();
  const [b, nh, ch] = q.shape;
  const whole = s.next(() => {
    const [t, l, bo, r] = s.coreAt(h, w);
    const m = new Float32Array(h * w);
    for (let y = t; y < bo; y++) m.fill(1, y * w + l, y * w + r);
    const parts = tf.tidy(() => {
      const mask = tf.tensor4d(m, [1, 1, 1, h * w]);
      const qm = tf.mul(q, mask);
      const gram = tf.matMul(qm, k, false, true); // [B,heads,ch,ch]
      const nq = tf.sum(tf.mul(qm, q), -1); // [B,heads,ch]
      const nk = tf.sum(tf.mul(tf.mul(k, mask), k), -1);
      return tf.concat([gram.reshape([-1]), nq.reshape([-1]), nk.reshape([-1])]);
    });
    const data = parts.dataSync() as Float32Array;
    parts.dispose();
    return { sums: data, count: (bo - t) * (r - l) };
  });
  if (!whole) return local();
  const g = b * nh * ch * ch;
  const n = b * nh * ch;
  return tf.tidy(() => {
    const gram = tf.tensor4d(Float32Array.from(whole.sums.subarray(0, g)), [b, nh, ch, ch]);
    const nq = tf.maximum(tf.sqrt(tf.tensor4d(Float32Array.from(whole.sums.subarray(g, g + n)), [b, nh, ch, 1])), eps);
    const nk = tf.maximum(tf.sqrt(tf.tensor4d(Float32Array.from(whole.sums.subarray(g + n, g + 2 * n)), [b, nh, 1, ch])), eps);
    return tf.div(gram, tf.mul(nq, nk)) as tf.Tensor4D;
  });
}
