/**
 * Small tensor helpers shared by the restoration backbones (NAFNet, Restormer, PromptIR) and the
 * dynamic-aggregation matcher. NHWC throughout.
 *
 * Why these exist (REFERENCE §7, tfjs 4.22): tfjs has no `spaceToDepth` op at all and no gradient for
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
   * @returns [B,H,W,3] = x + predicted residual (not clipped)
   */
  call(x: tf.Tensor4D, guidance?: tf.Tensor4D[]): tf.Tensor4D;
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
