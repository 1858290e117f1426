/**
 * Dynamic aggregation (paper Sec. 3.3, "feature matching [61] … in a coarse-to-fine manner"): the
 * MASA-SR match & extraction module (Lu et al., "MASA-SR: Matching Acceleration and Spatial
 * Adaptation for Reference-Based Image Super-Resolution", CVPR 2021, dvlab-research/MASA-SR
 * `models/archs/MASA_arch.py`) as re-used by mrluin/TextualDegRemoval's `*RefFusion` networks
 * (`models/archs/network_*_guided_arch.py`). It produces F̂g, the guidance features aligned to the degraded input, for the
 * Eq. (4) fusion inside the backbones.
 *
 *  1. Shared encoder (`masa_enc`) for X and G: conv + residual blocks at 1/1, 1/2, 1/4, 1/8
 *     (levels 0..L−1, nf·2^l channels).
 *  2. Coarse search on the deepest level: X's cells are split into k×k blocks; each block's centre
 *     3×3 patch, sampled at dilations [1,2,3], is compared by cosine similarity with the same
 *     dilated patch at every G position; the similarities are summed over dilations; top-1.
 *  3. Fine search: a G window of (d+2)×(d+2) cells around that match, d = 2·⌊⌊Hr/(2·py)⌋·1.5⌋+1
 *     (`ref_down_block_size` 1.5), clamped inside G; every X cell's 3×3 patch (replicate-padded map)
 *     is matched densely against the window's 3×3 patches: top-1 index + cosine score.
 *  4. Transfer at every level l (scale s = 2^(L−1−l)): each X cell takes the matched G patch
 *     (3s×3s pixels at level l, stride s), patches overlapping a cell are averaged (fold / divisor),
 *     and the result is multiplied by the block's similarity map resized bilinearly to s·k.
 *
 * Differentiability (as the original): the top-1 *indices* are constants (argmax); gradients reach
 * the encoder through the similarity scores (tf.max over the correlations) and through the
 * transferred G features. No `tf.gather` is used (its gradient needs UnsortedSegmentSum, which wasm
 * lacks — the project's JS kernel reads everything back): the fold-of-gathered-patches is written
 * as one constant matrix per block, A [k², window cells] with A[c, w] = (number of neighbours q of c
 * whose match puts window cell w under c) / (number of in-block neighbours of c), applied to the
 * pixel-unshuffled window features by a matMul; windows are cut with tf.slice.
 *
 * The official defect this module guards against (mrluin/TextualDegRemoval `models/archs/network_*_guided_arch.py`): the Restormer/PromptIR/
 * DRSformer RefFusion forwards index `feat_lq[4]`, `feat_ref[4]` (a 5th level) and transfer from
 * `feat_ref[3..0]`, but their `Encoder` returns 4 levels (L5 commented out) → IndexError; the NAFNet
 * variant has 5 levels but builds its middle fusion block from `reffusion_n_blocks[index + 1]`, one
 * past the end of the default 4-entry list. Here the deepest level is always `levels − 1`, level l
 * gets scale 2^(levels−1−l), and `GuidedRestorer` refuses a backbone whose number of fusion levels
 * differs from the matcher's (test/restore/guided.test.ts).
 *
 * Deviations: small default widths (nf 8, one residual block per level; official nf 48/64,
 * [4,4,4,4]); X is padded to a multiple of 2^(L−1)·k (as the official), G only to a multiple of 2^(L−1)
 * and ≥ 3 cells (the official pads both to 64); a window larger than G is clamped to G (the
 * official would index out of range / wrap around with negative indices); the coarse centre patch
 * is read from the whole replicate-padded map, so any block size works with any dilation (the
 * official slices the block's own (k+2)² patch, which needs k ≥ 6 for dilation 3; identical for k=8);
 * num_nbr = 1 and psize = 3 are fixed.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { Params } from '../models/params';
import { Conv2d } from '../models/nn';
import { Rng } from '../util/rng';
import { checkImage, l2normalize, pixelShuffle, pixelUnshuffle, replicatePad } from './layers';

const posInt = z.number().int().positive();

export const AggregationConfigSchema = z.strictObject({
  nf: posInt.default(8).describe('matcher encoder width at level 0 (level l: nf·2^l); official 48/64'),
  levels: z.number().int().min(2).max(6).default(4).describe('encoder levels (1/1 … 1/2^(levels−1)) = fusion levels of the backbone'),
  encBlocks: posInt.default(1).describe('residual blocks per encoder level; official 4'),
  blockSize: posInt.default(8).describe('k: X block size in deepest-level cells (lr_block_size)'),
  refDownBlockSize: z.number().positive().default(1.5).describe('G window scale (ref_down_block_size)'),
  dilations: z.array(posInt).min(1).default([1, 2, 3]).describe('dilations of the coarse centre patch'),
});
export type AggregationConfig = z.infer<typeof AggregationConfigSchema>;

/** conv → ReLU → conv, + x (MASA-SR `ResidualBlock`). */
class ResidualBlock {
  readonly c1: Conv2d;
  readonly c2: Conv2d;
  constructor(p: Params, name: string, c: number, rng: Rng) {
    this.c1 = new Conv2d(p, `${name}.c1`, c, c, rng);
    this.c2 = new Conv2d(p, `${name}.c2`, c, c, rng);
  }
  call(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.add(this.c2.call(this.c1.call(x, 'relu')), x) as tf.Tensor4D);
  }
}

/** The shared multi-scale feature encoder (`masa_enc`): [B,H,W,3] → L maps [B,H/2^l,W/2^l,nf·2^l]. */
export class MatcherEncoder {
  readonly convs: Conv2d[];
  readonly blocks: ResidualBlock[][];
  readonly channels: number[];
  constructor(p: Params, readonly name: string, cfg: AggregationConfig, rng: Rng) {
    this.channels = Array.from({ length: cfg.levels }, (_, l) => cfg.nf * 2 ** l);
    this.convs = this.channels.map((c, l) => new Conv2d(p, `${name}.conv${l}`, l === 0 ? 3 : this.channels[l - 1], c, rng, { stride: l === 0 ? 1 : 2 }));
    this.blocks = this.channels.map((c, l) => Array.from({ length: cfg.encBlocks }, (_, i) => new ResidualBlock(p, `${name}.blk${l}.${i}`, c, rng)));
  }
  call(x: tf.Tensor4D): tf.Tensor4D[] {
    const out: tf.Tensor4D[] = [];
    let h = x;
    this.convs.forEach((conv, l) => {
      // one tidy per level: only the level's output outlives it (inference memory)
      const prev = h;
      h = tf.tidy(() => this.blocks[l].reduce((a, blk) => blk.call(a), conv.call(prev, 'relu')));
      out.push(h);
    });
    return out;
  }
}

/** 3×3 patches at dilation d read from an already padded map: [B,H+2d,W+2d,C] → [B,H,W,9C], channel (a·3+b)·C + c. */
function patches3x3(xpad: tf.Tensor4D, d: number, h: number, w: number): tf.Tensor4D {
  const parts: tf.Tensor4D[] = [];
  for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) parts.push(tf.slice(xpad, [0, a * d, b * d, 0], [-1, h, w, -1]));
  return tf.concat(parts, 3) as tf.Tensor4D;
}

/** Sizes of a match problem on the deepest level. */
export interface MatchGeometry {
  b: number;
  /** deepest X map H×W (cells) and blocks py×px of k×k cells */
  h: number;
  w: number;
  k: number;
  py: number;
  px: number;
  /** deepest G map */
  hr: number;
  wr: number;
  /** G window (cells) searched by the fine step */
  wy: number;
  wx: number;
}

/** The (non-differentiable) result of coarse + fine search, as JS arrays. */
export interface MatchIndices {
  geom: MatchGeometry;
  /** [B·P]: flat Hr·Wr index of the G cell matched by each block's centre (coarse) */
  coarse: Int32Array;
  /** [B·P·2]: top-left (y1, x1) of each block's G window */
  windows: Int32Array;
  /** [B·P·k²]: flat (wy−2)·(wx−2) index of the matched 3×3 patch (top-left) inside the window */
  fine: Int32Array;
}

/**
 * Coarse block search (step 2). No gradient needed: only the argmax is used.
 * @param xd deepest X features [B,H,W,C], H and W multiples of k
 * @param gd deepest G features [B,Hr,Wr,C]
 * @returns [B·P] flat G index per block (row-major blocks)
 */
export function coarseSearch(xd: tf.Tensor4D, gd: tf.Tensor4D, k: number, dilations: number[]): Int32Array {
  const [b, h, w, c] = xd.shape;
  const [, hr, wr] = gd.shape;
  if (h % k !== 0 || w % k !== 0) throw new Error(`coarseSearch: deepest X map ${h}×${w} must be a multiple of the block size ${k}`);
  const py = h / k;
  const px = w / k;
  const c0 = Math.floor(k / 2);
  const dmax = Math.max(...dilations);
  const idx = tf.tidy(() => {
    const xpad = replicatePad(xd, dmax);
    let sum: tf.Tensor | undefined;
    for (const d of dilations) {
      const parts: tf.Tensor[] = [];
      for (let a = -1; a <= 1; a++)
        for (let bb = -1; bb <= 1; bb++) {
          const y0 = dmax + c0 + d * a;
          const x0 = dmax + c0 + d * bb;
          parts.push(tf.stridedSlice(xpad, [0, y0, x0, 0], [b, y0 + (py - 1) * k + 1, x0 + (px - 1) * k + 1, c], [1, k, k, 1]));
        }
      const lr = l2normalize(tf.concat(parts, 3).reshape([b, py * px, 9 * c])); // [B,P,9C]
      const gpad = tf.pad(gd, [[0, 0], [d, d], [d, d], [0, 0]]);
      const ref = l2normalize(patches3x3(gpad, d, hr, wr).reshape([b, hr * wr, 9 * c])); // [B,HrWr,9C]
      const corr = tf.matMul(lr, ref, false, true); // [B,P,HrWr]
      sum = sum ? tf.add(sum, corr) : corr;
    }
    return tf.argMax(sum!, -1);
  });
  const out = Int32Array.from(idx.dataSync());
  idx.dispose();
  return out;
}

/** Window diameter (cells) of the official code: 2·⌊⌊n/(2·blocks)⌋·r⌋ + 1. */
export function windowDiameter(refCells: number, blocks: number, r: number): number {
  return 2 * Math.floor(Math.floor(refCells / (2 * blocks)) * r) + 1;
}

/** Options of a match: how a tile of a larger image is matched the way the whole image would be. */
export interface MatchOptions {
  /**
   * The X blocks per axis [py, px] that set the size of the fine-search window in G (default: X's
   * own). A tile of a larger image passes the whole (padded) image's block counts, so that each of its
   * blocks searches the same G window as in the untiled pass (lib/restore/tiled.ts).
   */
  windowBlocks?: [number, number];
}

/**
 * Coarse + fine search (steps 2–3).
 * @returns indices (JS) and `sim` [B·P,k²], the top-1 cosine of every X cell (differentiable)
 */
export function matchFeatures(xd: tf.Tensor4D, gd: tf.Tensor4D, cfg: Pick<AggregationConfig, 'blockSize' | 'refDownBlockSize' | 'dilations'>, opts: MatchOptions = {}): { indices: MatchIndices; sim: tf.Tensor2D } {
  const [b, h, w, c] = xd.shape;
  const [bg, hr, wr, cg] = gd.shape;
  const k = cfg.blockSize;
  if (bg !== b || cg !== c) throw new Error(`matchFeatures: X features [${xd.shape}] and G features [${gd.shape}] must agree in batch and channels`);
  if (hr < 3 || wr < 3) throw new Error(`matchFeatures: G features [${gd.shape}] need at least 3×3 cells`);
  const py = h / k;
  const px = w / k;
  const [wpy, wpx] = opts.windowBlocks ?? [py, px];
  const wy = Math.min(windowDiameter(hr, wpy, cfg.refDownBlockSize) + 2, hr);
  const wx = Math.min(windowDiameter(wr, wpx, cfg.refDownBlockSize) + 2, wr);
  const geom: MatchGeometry = { b, h, w, k, py, px, hr, wr, wy, wx };
  const coarse = coarseSearch(xd, gd, k, cfg.dilations);
  const nb = b * py * px;
  const windows = new Int32Array(nb * 2);
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  for (let i = 0; i < nb; i++) {
    const cy = Math.floor(coarse[i] / wr);
    const cx = coarse[i] % wr;
    windows[2 * i] = clamp(cy - Math.floor((wy - 2) / 2) - 1, 0, hr - wy);
    windows[2 * i + 1] = clamp(cx - Math.floor((wx - 2) / 2) - 1, 0, wr - wx);
  }
  const npos = (wy - 2) * (wx - 2);
  const { sim, fineT } = tf.tidy(() => {
    const lr = l2normalize(patches3x3(replicatePad(xd, 1), 1, h, w)) // [B,H,W,9C]
      .reshape([b, py, k, px, k, 9 * c])
      .transpose([0, 1, 3, 2, 4, 5]) // [B,py,px,k,k,9C]
      .reshape([nb, k * k, 9 * c]);
    const ref = l2normalize(patches3x3(gd, 1, hr - 2, wr - 2)); // [B,Hr−2,Wr−2,9C] valid patches
    const wins: tf.Tensor[] = [];
    for (let i = 0; i < nb; i++) {
      const bi = Math.floor(i / (py * px));
      wins.push(tf.slice(ref, [bi, windows[2 * i], windows[2 * i + 1], 0], [1, wy - 2, wx - 2, -1]).reshape([1, npos, 9 * c]));
    }
    const corr = tf.matMul(lr, tf.concat(wins, 0), false, true); // [B·P,k²,npos]
    return { sim: tf.max(corr, -1) as tf.Tensor2D, fineT: tf.argMax(corr, -1) };
  });
  const fine = Int32Array.from(fineT.dataSync());
  fineT.dispose();
  return { indices: { geom, coarse, windows, fine }, sim };
}

/**
 * For each X cell, the absolute G cell (deepest level) at the centre of its matched patch.
 * @returns [B,H,W,2] (y, x) row-major
 */
export function matchedCells(m: MatchIndices): Int32Array {
  const { b, h, w, k, py, px, wx } = m.geom;
  const out = new Int32Array(b * h * w * 2);
  for (let bi = 0; bi < b; bi++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const blk = (bi * py + Math.floor(y / k)) * px + Math.floor(x / k);
        const f = m.fine[blk * k * k + (y % k) * k + (x % k)];
        const o = ((bi * h + y) * w + x) * 2;
        out[o] = m.windows[2 * blk] + Math.floor(f / (wx - 2)) + 1;
        out[o + 1] = m.windows[2 * blk + 1] + (f % (wx - 2)) + 1;
      }
  return out;
}

/**
 * The fold-of-gathered-patches of step 4 as one matrix per block (see the module doc).
 * @returns [B·P, k², wy·wx] float32
 */
export function transferMatrix(m: MatchIndices): tf.Tensor3D {
  const { b, k, py, px, wy, wx } = m.geom;
  const nb = b * py * px;
  const kk = k * k;
  const a = new Float32Array(nb * kk * wy * wx);
  for (let blk = 0; blk < nb; blk++)
    for (let cy = 0; cy < k; cy++)
      for (let cx = 0; cx < k; cx++) {
        const qs: Array<[number, number]> = [];
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) {
            const qy = cy + dy;
            const qx = cx + dx;
            if (qy >= 0 && qy < k && qx >= 0 && qx < k) qs.push([qy, qx]);
          }
        const row = (blk * kk + cy * k + cx) * wy * wx;
        for (const [qy, qx] of qs) {
          const f = m.fine[blk * kk + qy * k + qx];
          const wyy = Math.floor(f / (wx - 2)) + 1 + (cy - qy);
          const wxx = (f % (wx - 2)) + 1 + (cx - qx);
          a[row + wyy * wx + wxx] += 1 / qs.length;
        }
      }
  return tf.tensor3d(a, [nb, kk, wy * wx]);
}

/**
 * Transfer one level (step 4).
 * @param g level-l G features [B,Hr·s,Wr·s,C]
 * @param a transfer matrices [B·P,k²,wy·wx] (`transferMatrix`)
 * @param sim top-1 cosines [B·P,k²]
 * @returns F̂g at level l, [B,H·s,W·s,C] (H, W: deepest X map)
 */
export function transferLevel(g: tf.Tensor4D, a: tf.Tensor3D, sim: tf.Tensor2D, m: MatchIndices, s: number): tf.Tensor4D {
  const { b, k, py, px, hr, wr, wy, wx } = m.geom;
  const c = g.shape[3];
  if (g.shape[1] !== hr * s || g.shape[2] !== wr * s) throw new Error(`transferLevel: G features [${g.shape}] must be ${hr * s}×${wr * s} at scale ${s}`);
  return tf.tidy(() => {
    const nb = b * py * px;
    const wins: tf.Tensor4D[] = [];
    for (let i = 0; i < nb; i++) {
      const bi = Math.floor(i / (py * px));
      wins.push(tf.slice(g, [bi, m.windows[2 * i] * s, m.windows[2 * i + 1] * s, 0], [1, wy * s, wx * s, -1]));
    }
    const win = pixelUnshuffle(tf.concat(wins, 0) as tf.Tensor4D, s).reshape([nb, wy * wx, s * s * c]); // [B·P,cells,s²C]
    const blocks = pixelShuffle(tf.matMul(a, win).reshape([nb, k, k, s * s * c]) as tf.Tensor4D, s); // [B·P,ks,ks,C]
    const att0 = sim.reshape([nb, k, k, 1]) as tf.Tensor4D;
    const att = s === 1 ? att0 : tf.image.resizeBilinear(att0, [k * s, k * s], false, true);
    return tf
      .mul(blocks, att)
      .reshape([b, py, px, k * s, k * s, c])
      .transpose([0, 1, 3, 2, 4, 5]) // [B,py,ks,px,ks,C]
      .reshape([b, py * k * s, px * k * s, c]) as tf.Tensor4D;
  });
}

/** Encoder + coarse-to-fine matching + multi-level transfer. Parameters live under `<prefix>.enc`. */
export class DynamicAggregation {
  readonly cfg: AggregationConfig;
  readonly encoder: MatcherEncoder;
  constructor(p: Params, readonly prefix: string, cfgIn: z.input<typeof AggregationConfigSchema>, rng: Rng) {
    this.cfg = AggregationConfigSchema.parse(cfgIn);
    this.encoder = new MatcherEncoder(p, `${prefix}.enc`, this.cfg, rng);
  }
  get levels(): number {
    return this.cfg.levels;
  }
  /** F̂g channels per level */
  get levelChannels(): number[] {
    return this.encoder.channels;
  }
  /** X must be padded to a multiple of this: 2^(levels−1)·blockSize */
  get sizeMultiple(): number {
    return 2 ** (this.cfg.levels - 1) * this.cfg.blockSize;
  }
  /** G must be padded to a multiple of this (2^(levels−1)) and have ≥ 3 deepest cells per axis */
  get guidanceMultiple(): number {
    return 2 ** (this.cfg.levels - 1);
  }
  /**
   * The encoder's features of a guidance image, to be reused by several `forward` calls (the tiles of
   * one image: G is encoded once). The caller disposes them.
   * @param g [B,Hg,Wg,3] in [0,1], Hg and Wg multiples of `guidanceMultiple`, ≥ 3·guidanceMultiple
   * @returns one map per level, [B,Hg/2^l,Wg/2^l,nf·2^l]
   */
  encodeGuidance(g: tf.Tensor4D): tf.Tensor4D[] {
    checkImage(this.prefix, 'g', g);
    const mg = this.guidanceMultiple;
    if (g.shape[1] % mg !== 0 || g.shape[2] % mg !== 0 || g.shape[1] < 3 * mg || g.shape[2] < 3 * mg) {
      throw new Error(`${this.prefix}: g [${g.shape}] must be padded to a multiple of ${mg} and be at least ${3 * mg}×${3 * mg}`);
    }
    return this.encoder.call(g);
  }

  /**
   * @param x [B,H,W,3] in [0,1], H and W multiples of `sizeMultiple`
   * @param g [B,Hg,Wg,3] in [0,1], Hg and Wg multiples of `guidanceMultiple`, ≥ 3·guidanceMultiple;
   *   or its features from `encodeGuidance` (not disposed here)
   * @param opts `windowBlocks`: see MatchOptions (tiles)
   * @returns F̂g per level l: [B,H/2^l,W/2^l,nf·2^l], and the match indices
   */
  forward(x: tf.Tensor4D, g: tf.Tensor4D | tf.Tensor4D[], opts: MatchOptions = {}): { features: tf.Tensor4D[]; indices: MatchIndices } {
    checkImage(this.prefix, 'x', x);
    const m = this.sizeMultiple;
    if (x.shape[1] % m !== 0 || x.shape[2] % m !== 0) throw new Error(`${this.prefix}: x [${x.shape}] must be padded to a multiple of ${m} (2^(levels−1)·blockSize)`);
    const gb = Array.isArray(g) ? g[0].shape[0] : g.shape[0];
    if (gb !== x.shape[0]) throw new Error(`${this.prefix}: x [${x.shape}] and g [${Array.isArray(g) ? g[0].shape : g.shape}] must have the same batch size`);
    if (Array.isArray(g) && g.length !== this.cfg.levels) throw new Error(`${this.prefix}: expected guidance features for ${this.cfg.levels} levels, got ${g.length}`);
    let indices: MatchIndices | undefined;
    const features = tf.tidy(() => {
      const fx = this.encoder.call(x);
      const fg = Array.isArray(g) ? g : this.encodeGuidance(g);
      const last = this.cfg.levels - 1; // the deepest level: index levels−1, never a hard-coded 4
      const r = matchFeatures(fx[last], fg[last], this.cfg, opts);
      tf.dispose(fx);
      indices = r.indices;
      const a = transferMatrix(r.indices);
      return fg.map((gl, l) => transferLevel(gl, a, r.sim, r.indices, 2 ** (last - l)));
    });
    return { features, indices: indices! };
  }
  call(x: tf.Tensor4D, g: tf.Tensor4D): tf.Tensor4D[] {
    return this.forward(x, g).features;
  }
}
