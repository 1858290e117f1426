/**
 * Tiled restoration: an image of any size through a restorer in overlapping tiles, within a memory
 * budget — as the backbones' own test code does for large images (PromptIR / Restormer / SwinIR
 * `test` with `tile` and `tile_overlap`; Real-ESRGAN `--tile`).
 *
 *  - Geometry: X is (conceptually) zero-padded at the bottom/right to a multiple m of the network's
 *    `sizeMultiple` — exactly as an untiled call pads it — and cut into tiles of side T (a multiple of
 *    m) starting at multiples of m, with stride T − overlap; the last tile of a row/column ends at the
 *    padded edge. So every tile sees the same down-sampling grid (and, guided, the same matcher blocks
 *    of 2^(levels−1)·blockSize pixels) as the whole image would.
 *  - Blending: each tile's output is weighted by a separable raised-cosine window that rises over the
 *    overlap on the sides that have a neighbour (weight 1 elsewhere, and at the image border), and
 *    the weighted sum is divided by the sum of weights. The window sums are separable too, so no
 *    weight image is stored: memory is the input and one output image.
 *  - Guidance (paper Sec. 3.3): G is given once per image and encoded once by the matcher
 *    (`GuidedRestorer.encodeGuidance`); each tile is matched against the WHOLE G, and its blocks
 *    search G windows of the size the whole image's block count gives (`windowBlocks`), i.e. each
 *    block is matched as in the untiled pass (only the encoder's view near a tile border differs).
 *    A very large G is reduced first to `GUIDANCE_MAX_PIXELS` (`fitGuidance`, area averaging).
 *  - Tile size: the largest tile whose predicted peak memory (`forwardBytes`: from the backbone's
 *    config and the tile's area, constants measured with tf.profile — test/restore/tiled.test.ts
 *    checks the prediction against the measured peak) fits the budget (`DEFAULT_TILE_BUDGET_MIB`),
 *    or a given side. An image that fits in one tile goes through the network untiled, unchanged.
 *  - Refusal up front: a tile (or budget) beyond what the backend can hold (the wasm heap is 4 GiB) is
 *    a UserError naming the size, the predicted bytes and the limit — never a backend abort.
 * Outputs are clipped to [0,1]; a non-finite output (corrupt or diverged weights) is refused.
 */
import * as tf from '@tensorflow/tfjs';
import { RGBImage, assertFinite, makeImage } from '../data/image';
import { UserError } from '../util/errors';
import type { GuidanceFeatures, GuidedRestorer } from './guided';
import { ImageStatistics, withImageStatistics } from './layers';

/** Default memory budget of one tile's forward pass (MiB). */
export const DEFAULT_TILE_BUDGET_MIB = 768;

/**
 * Without a given budget, an image whose single pass is predicted to need at most this (MiB) is restored
 * in that one pass rather than in tiles of DEFAULT_TILE_BUDGET_MIB: a tiled image takes two passes over
 * its tiles (whole-image statistics), so for sizes up to about 600² (the dim-24 PromptIR; 512² predicts
 * 1089 MiB) one pass is less than half the work. Larger images are tiled as before, so the peak memory
 * of a 12-Mpixel photo does not change.
 */
export const DEFAULT_WHOLE_IMAGE_BUDGET_MIB = 1536;

/** A guidance image larger than this (pixels) is reduced first (the text side's own G is 128²). */
export const GUIDANCE_MAX_PIXELS = 512 * 512;

/** The most one forward pass may predict on this backend (bytes): wasm32 has a 4 GiB heap, of which the weights, G and the runtime need some. */
export function backendLimitBytes(backend = tf.getBackend()): number {
  if (backend === 'wasm') return 3.25 * 2 ** 30;
  return 16 * 2 ** 30;
}

/**
 * Predicted peak tensor memory (bytes) of one `net.call` on an h×w input (padded as the call pads it),
 * with a guidance image of hg×wg when guided: weights + the larger of the matcher's and the
 * backbone's working set. Per-pixel costs (4-byte floats per pixel of the padded input) follow the
 * widest full-resolution block — Restormer/PromptIR: its GDFN hidden width h₁ = ⌊2·dim·γ⌋ at level 1,
 * 5·h₁ + 11·dim; NAFNet: 5·width·dwExpand + 0.5·width·ffnExpand + 6.5·width (with the fusion
 * block's width + nf when guided, which can be the wider one) — plus the guidance features kept
 * through the pass; the matcher costs ≈ 150·nf bytes per X pixel and ≈ 75·nf per G pixel (the
 * G windows that every block transfers at every level together cover ≈ (2·1.5)²/4 of G).
 * Constants measured with tf.profile on the wasm backend (demo/ci/paper widths) and rounded up by
 * 15 %; test/restore/tiled.test.ts checks them.
 * @param g the size of G [hg, wg]; `encoded`: G comes as `encodeGuidance` features
 */
export function forwardBytes(net: GuidedRestorer, h: number, w: number, g?: { size: [number, number]; encoded?: boolean }): number {
  const m = net.sizeMultiple;
  const area = Math.ceil(h / m) * m * Math.ceil(w / m) * m;
  const bb = net.cfg.backbone;
  const agg = net.aggregation;
  const nf = agg ? agg.cfg.nf : 0;
  const floatsPerPx = (width: number, wide: number, ffn = 0): number =>
    bb.type === 'nafnet' ? 5 * wide + 0.5 * ffn + 6.5 * width : 5 * wide + 11 * width;
  let perPx: number;
  if (bb.type === 'nafnet') {
    perPx = floatsPerPx(bb.width, bb.width * bb.dwExpand, bb.width * bb.ffnExpand);
    if (agg) perPx = Math.max(perPx, floatsPerPx(bb.width + nf, (bb.width + nf) * 2, (bb.width + nf) * 2));
  } else {
    perPx = floatsPerPx(bb.dim, Math.floor(2 * bb.dim * bb.ffnExpansion));
    if (agg) perPx = Math.max(perPx, floatsPerPx((bb.dim + nf) / 2, Math.floor((bb.dim + nf) * bb.ffnExpansion)));
  }
  let bytes = 4 * (perPx + (agg ? 4 * nf : 0)) * area;
  if (agg && g) {
    // the X side (encoder + correlations) and the G windows every block transfers at every level
    bytes = Math.max(bytes, matcherBytes(agg, Math.ceil(h / m) * m, Math.ceil(w / m) * m, g.size[0], g.size[1]));
  }
  return Math.ceil(1.15 * (bytes + 4 * net.params.count()));
}

/**
 * Predicted peak bytes of the matcher alone on an h×w X and an hg×wg G (the X side: encoder and
 * correlations, ≈ 150·nf bytes per padded X pixel; the G windows, ≈ 75·nf per padded G pixel), as in
 * `forwardBytes`.
 */
export function matcherBytes(agg: { cfg: { nf: number }; sizeMultiple: number; guidanceMultiple: number }, h: number, w: number, hg: number, wg: number): number {
  const m = agg.sizeMultiple;
  const mg = agg.guidanceMultiple;
  const area = Math.ceil(h / m) * m * Math.ceil(w / m) * m;
  const gArea = Math.max(Math.ceil(hg / mg) * mg, 3 * mg) * Math.max(Math.ceil(wg / mg) * mg, 3 * mg);
  return agg.cfg.nf * (150 * area + 75 * gArea);
}

/**
 * Refuse, before any pass, a whole-image network call whose predicted peak is beyond what the
 * backend can hold: a UserError naming `what`, the size, the predicted bytes and the limit.
 */
export function checkWholeImageFits(what: string, h: number, w: number, bytes: number): void {
  const limit = backendLimitBytes();
  if (bytes > limit) throw new UserError(`${what}: a ${w}x${h} image needs about ${mib(bytes)} (predicted) in one pass, more than the ${tf.getBackend()} backend can hold (${mib(limit)}); use a smaller image or crop`);
}

export interface TileOptions {
  /** tile side in pixels (rounded down to a multiple of the network's size multiple); default: from the budget */
  tile?: number;
  /**
   * memory budget of one tile's forward pass, MiB (default DEFAULT_TILE_BUDGET_MIB, and
   * DEFAULT_WHOLE_IMAGE_BUDGET_MIB for restoring the image in one pass)
   */
  budgetMiB?: number;
  /** overlap of neighbouring tiles in pixels (rounded up to the size multiple); default max(32, tile/8) */
  overlap?: number;
  /**
   * true (default): two passes over the tiles, the first gathering the statistics that span the whole
   * image (MDTA attention, global average pooling: ImageStatistics), the second restoring with them —
   * as the untiled pass would; false: one pass, each tile with its own statistics (half the time)
   */
  wholeImageStatistics?: boolean;
  /** passes that gather the statistics before the restoring one (default 1) */
  statisticsPasses?: number;
  /** called after each tile (of each pass) */
  onProgress?: (done: number, total: number) => void;
}

/** Where the tiles of an image go. */
export interface TilePlan {
  /** image size and padded size (multiples of `multiple`) */
  height: number;
  width: number;
  paddedHeight: number;
  paddedWidth: number;
  multiple: number;
  /** tile size (≤ padded size) and overlap */
  tileHeight: number;
  tileWidth: number;
  overlap: number;
  /** top / left edges of the tile rows and columns */
  ys: number[];
  xs: number[];
  /** ys.length · xs.length */
  count: number;
  /** predicted peak bytes of one tile's forward pass */
  predictedBytes: number;
  budgetBytes: number;
}

/** Tile origins along one axis of length L (a multiple of m): 0, s, 2s, … and L − T last. */
function origins(L: number, T: number, stride: number): number[] {
  const out: number[] = [];
  for (let p = 0; ; p += stride) {
    if (p + T >= L) {
      out.push(L - T);
      break;
    }
    out.push(p);
  }
  return [...new Set(out)];
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}

/**
 * Choose tiles for an h×w image (see the module doc).
 * @throws UserError when the budget is above what the backend can hold, or a tile of the network's
 *   smallest size (or the given `tile`) does not fit it
 */
export function planTiles(net: GuidedRestorer, h: number, w: number, opts: TileOptions & { guidance?: [number, number] } = {}): TilePlan {
  const m = net.sizeMultiple;
  const hp = Math.ceil(h / m) * m;
  const wp = Math.ceil(w / m) * m;
  const limit = backendLimitBytes();
  const budget = (opts.budgetMiB ?? DEFAULT_TILE_BUDGET_MIB) * 2 ** 20;
  if (!(budget > 0)) throw new UserError(`tile budget must be positive, got ${opts.budgetMiB} MiB`);
  if (budget > limit) throw new UserError(`tile budget ${mib(budget)} is above what the ${tf.getBackend()} backend can hold (${mib(limit)}); give at most ${Math.floor(limit / 2 ** 20)}`);
  const g = opts.guidance && net.cfg.guidance ? { size: opts.guidance } : undefined;
  const gEnc = g ? { ...g, encoded: true } : undefined;
  const plan = (th: number, tw: number, overlap: number, predicted: number): TilePlan => {
    const stride = (t: number) => Math.max(m, t - overlap);
    const ys = origins(hp, th, stride(th));
    const xs = origins(wp, tw, stride(tw));
    return { height: h, width: w, paddedHeight: hp, paddedWidth: wp, multiple: m, tileHeight: th, tileWidth: tw, overlap, ys, xs, count: ys.length * xs.length, predictedBytes: predicted, budgetBytes: budget };
  };
  const overlapFor = (t: number) => {
    const o = opts.overlap ?? Math.max(32, Math.floor(t / 8));
    return Math.min(Math.ceil(o / m) * m, Math.max(0, t - m));
  };
  if (opts.tile !== undefined) {
    // at least two multiples, so that neighbouring tiles can overlap
    const t = Math.max(2 * m, Math.floor(opts.tile / m) * m);
    const th = Math.min(t, hp);
    const tw = Math.min(t, wp);
    const predicted = forwardBytes(net, th, tw, th === hp && tw === wp ? g : gEnc);
    if (predicted > limit) throw new UserError(`a ${th}x${tw} tile needs about ${mib(predicted)} (predicted), more than the ${tf.getBackend()} backend can hold (${mib(limit)}); use a smaller --tile`);
    return plan(th, tw, overlapFor(t), predicted);
  }
  // the whole image in one pass when it fits: the untiled result, unchanged
  const whole = forwardBytes(net, hp, wp, g);
  const wholeBudget = opts.budgetMiB === undefined ? Math.min(limit, Math.max(budget, DEFAULT_WHOLE_IMAGE_BUDGET_MIB * 2 ** 20)) : budget;
  if (whole <= wholeBudget) return plan(hp, wp, 0, whole);
  const fits = (th: number, tw: number) => forwardBytes(net, th, tw, gEnc) <= budget;
  if (!fits(m, m)) {
    throw new UserError(`even the smallest tile (${m}x${m}) needs about ${mib(forwardBytes(net, m, m, gEnc))} (predicted), more than the tile budget ${mib(budget)}; raise --tile-budget`);
  }
  let t = m;
  while (t + m <= Math.max(hp, wp) && fits(Math.min(t + m, hp), Math.min(t + m, wp))) t += m;
  let th = Math.min(t, hp);
  let tw = Math.min(t, wp);
  // a thin image: give the long axis what the short one cannot use
  while (th === hp && tw + m <= wp && fits(th, tw + m)) tw += m;
  while (tw === wp && th + m <= hp && fits(th + m, tw)) th += m;
  return plan(th, tw, overlapFor(Math.min(th, tw)), forwardBytes(net, th, tw, gEnc));
}

/** Raised-cosine weights of a tile of length T at `pos` along an axis of length L (ramps over `overlap` on sides with a neighbour). */
export function tileWindow(pos: number, T: number, L: number, overlap: number): Float32Array {
  const wgt = new Float32Array(T).fill(1);
  if (overlap <= 0) return wgt;
  for (let i = 0; i < Math.min(overlap, T); i++) {
    const r = 0.5 - 0.5 * Math.cos((Math.PI * (i + 0.5)) / overlap);
    if (pos > 0) wgt[i] *= r;
    if (pos + T < L) wgt[T - 1 - i] *= r;
  }
  return wgt;
}

/**
 * Reduce a guidance image to at most `maxPixels` (aspect kept; area averaging, i.e. each output pixel
 * is the mean of the input area it covers). Smaller images are returned as they are.
 */
export function fitGuidance(g: RGBImage, maxPixels = GUIDANCE_MAX_PIXELS): RGBImage {
  const s = Math.sqrt(maxPixels / (g.height * g.width));
  if (s >= 1) return g;
  return areaResize(g, Math.max(1, Math.floor(g.height * s)), Math.max(1, Math.floor(g.width * s)));
}

/** Area-average resize (downscaling; cv2 INTER_AREA): separable, exact fractional coverage. */
export function areaResize(img: RGBImage, oh: number, ow: number): RGBImage {
  const axis = (n: number, on: number): Array<Array<[number, number]>> =>
    Array.from({ length: on }, (_, o) => {
      const a = (o * n) / on;
      const b = ((o + 1) * n) / on;
      const taps: Array<[number, number]> = [];
      for (let i = Math.floor(a); i < Math.min(n, Math.ceil(b)); i++) {
        const cover = Math.min(b, i + 1) - Math.max(a, i);
        if (cover > 0) taps.push([i, cover / (b - a)]);
      }
      return taps;
    });
  const { height: h, width: w, data } = img;
  const tx = axis(w, ow);
  const ty = axis(h, oh);
  const rows = new Float32Array(h * ow * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < ow; x++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (const [i, wt] of tx[x]) s += wt * data[(y * w + i) * 3 + c];
        rows[(y * ow + x) * 3 + c] = s;
      }
  const out = new Float32Array(oh * ow * 3);
  for (let y = 0; y < oh; y++)
    for (const [i, wt] of ty[y]) for (let j = 0; j < ow * 3; j++) out[y * ow * 3 + j] += wt * rows[i * ow * 3 + j];
  return makeImage(oh, ow, out);
}

/**
 * Core ranges (tile coordinates) along one axis: tile i owns [b_{i−1}, b_i) of the axis, b_i the middle
 * of its overlap with tile i+1 rounded to a multiple of m (so that the cores fall on every level's grid).
 */
export function cores(origins: number[], T: number, L: number, m: number): Array<[number, number]> {
  const bounds = [0];
  for (let i = 0; i + 1 < origins.length; i++) bounds.push(Math.round((origins[i + 1] + origins[i] + T) / 2 / m) * m);
  bounds.push(L);
  return origins.map((p, i) => [bounds[i] - p, bounds[i + 1] - p]);
}

/** The h×w window of `img` at (y0, x0), zero where it leaves the image. */
function windowOf(img: RGBImage, y0: number, x0: number, h: number, w: number): Float32Array {
  const out = new Float32Array(h * w * 3);
  const rows = Math.min(h, img.height - y0);
  const cols = Math.min(w, img.width - x0);
  for (let y = 0; y < rows; y++) out.set(img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + cols) * 3), y * w * 3);
  return out;
}

function checkFinite(data: Float32Array): void {
  assertFinite(data, 'the restorer');
}

function clipInPlace(data: Float32Array): void {
  for (let i = 0; i < data.length; i++) data[i] = data[i] < 0 ? 0 : data[i] > 1 ? 1 : data[i];
}

/**
 * Restore one image in tiles (see the module doc); an image that fits the budget in one pass is
 * restored untiled.
 * @param x [H,W,3] degraded, any size; @param g [Hg,Wg,3] guidance (guided nets only), any size
 * @returns [H,W,3] clipped to [0,1]
 */
export function restoreTiled(net: GuidedRestorer, x: RGBImage, g: RGBImage | undefined, opts: TileOptions = {}): RGBImage {
  const steps = tiledSteps(net, x, g, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * `restoreTiled` that lets the event loop run between tiles (a Ctrl-C is handled while a large image
 * is restored; the command line uses it).
 */
export async function restoreTiledAsync(net: GuidedRestorer, x: RGBImage, g: RGBImage | undefined, opts: TileOptions = {}): Promise<RGBImage> {
  const steps = tiledSteps(net, x, g, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The work of `restoreTiled`, yielding after every tile. */
function* tiledSteps(net: GuidedRestorer, x: RGBImage, g: RGBImage | undefined, opts: TileOptions): Generator<void, RGBImage, void> {
  if (net.cfg.guidance && !g) throw new Error('restoreImage: the network is guided; pass the guidance image');
  const gi = g && net.cfg.guidance ? fitGuidance(g) : undefined;
  const plan = planTiles(net, x.height, x.width, { ...opts, guidance: gi ? [gi.height, gi.width] : undefined });
  if (plan.count === 1) {
    const out = tf.tidy(() => {
      const xt = tf.tensor4d(x.data, [1, x.height, x.width, 3]);
      const gt = gi ? tf.tensor4d(gi.data, [1, gi.height, gi.width, 3]) : undefined;
      return net.call(xt, gt);
    });
    const data = out.dataSync() as Float32Array;
    out.dispose();
    checkFinite(data);
    clipInPlace(data);
    opts.onProgress?.(1, 1);
    return makeImage(x.height, x.width, Float32Array.from(data));
  }
  const { paddedHeight: hp, paddedWidth: wp, tileHeight: th, tileWidth: tw, overlap, ys, xs } = plan;
  let gf: GuidanceFeatures | undefined;
  if (gi) {
    const gt = tf.tensor4d(gi.data, [1, gi.height, gi.width, 3]);
    try {
      gf = net.encodeGuidance(gt);
    } finally {
      gt.dispose();
    }
  }
  // the whole (padded) image's matcher blocks: every tile's blocks search the windows they would untiled
  const am = net.aggregation?.sizeMultiple ?? 1;
  const windowBlocks: [number, number] = [Math.ceil(x.height / am), Math.ceil(x.width / am)];
  const wy = ys.map((p) => tileWindow(p, th, hp, overlap));
  const wx = xs.map((p) => tileWindow(p, tw, wp, overlap));
  const sumY = new Float32Array(x.height);
  const sumX = new Float32Array(x.width);
  ys.forEach((p, i) => wy[i].forEach((v, k) => p + k < x.height && (sumY[p + k] += v)));
  xs.forEach((p, i) => wx[i].forEach((v, k) => p + k < x.width && (sumX[p + k] += v)));
  const acc = new Float32Array(x.height * x.width * 3);
  // the cores (a partition of the padded image over the tiles) whose sums make the whole image's statistics
  const cy = cores(ys, th, hp, plan.multiple);
  const cx = cores(xs, tw, wp, plan.multiple);
  const stats = new ImageStatistics();
  const passes = opts.wholeImageStatistics === false ? 1 : 1 + (opts.statisticsPasses ?? 1);
  const total = passes * plan.count;
  let done = 0;
  const runTile = (iy: number, ix: number): tf.Tensor4D => {
    const [y0, x0] = [ys[iy], xs[ix]];
    stats.startTile({ top: cy[iy][0], bottom: cy[iy][1], left: cx[ix][0], right: cx[ix][1], tileHeight: th, tileWidth: tw });
    const region = { top: y0, left: x0, height: hp, width: wp };
    const run = () => tf.tidy(() => net.call(tf.tensor4d(windowOf(x, y0, x0, th, tw), [1, th, tw, 3]), gf, { windowBlocks, region }));
    return passes === 1 ? run() : withImageStatistics(stats, run);
  };
  try {
    for (let pass = 1; pass < passes; pass++) {
      // every tile adds its core's sums of every global statistic (using the previous pass's whole-image ones)
      for (const iy of ys.keys()) {
        for (const ix of xs.keys()) {
          runTile(iy, ix).dispose();
          opts.onProgress?.(++done, total);
          yield;
        }
      }
      stats.nextPass(pass + 1 < passes);
    }
    for (const [iy, y0] of ys.entries()) {
      for (const [ix, x0] of xs.entries()) {
        const out = runTile(iy, ix);
        const d = out.dataSync() as Float32Array;
        out.dispose();
        checkFinite(d);
        const rows = Math.min(th, x.height - y0);
        const cols = Math.min(tw, x.width - x0);
        for (let r = 0; r < rows; r++) {
          const a = wy[iy][r];
          let o = ((y0 + r) * x.width + x0) * 3;
          let s = r * tw * 3;
          for (let c = 0; c < cols; c++) {
            const wgt = a * wx[ix][c];
            acc[o++] += wgt * d[s++];
            acc[o++] += wgt * d[s++];
            acc[o++] += wgt * d[s++];
          }
        }
        opts.onProgress?.(++done, total);
        yield;
      }
    }
  } finally {
    gf?.dispose();
  }
  for (let y = 0; y < x.height; y++) {
    for (let xx = 0; xx < x.width; xx++) {
      const inv = 1 / (sumY[y] * sumX[xx]);
      const o = (y * x.width + xx) * 3;
      acc[o] *= inv;
      acc[o + 1] *= inv;
      acc[o + 2] *= inv;
    }
  }
  clipInPlace(acc);
  return makeImage(x.height, x.width, acc);
}
