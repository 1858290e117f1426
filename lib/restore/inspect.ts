/**
 * Looking inside a guided restorer (notebook 06): where the cells of X match in G, how similar they
 * are, and how much of the guidance each fusion level lets in (the Eq. 4 α, learned from 0).
 */
import * as tf from '@tensorflow/tfjs';
import { RGBImage } from '../data/image';
import { toBatch } from '../data/patches';
import { GuidedRestorer } from './guided';
import { matchFeatures, matchedCells, DynamicAggregation } from './aggregation';
import { padToMultiple } from './layers';
import { checkWholeImageFits, matcherBytes } from './tiled';

export interface MatchView {
  /** pixels per deepest-level cell: 2^(levels−1) */
  cellPx: number;
  /** X's deepest map (after padding), in cells */
  h: number;
  w: number;
  /** G's deepest map (after padding), in cells */
  hr: number;
  wr: number;
  /** per X cell (row-major): the matched G cell, [y, x] pairs */
  cells: Int32Array;
  /** per X cell: cosine similarity of the match (the weight of the transferred features) */
  sim: Float32Array;
  /** the coarse search's G cell per block of blockSize×blockSize X cells, [y, x] pairs */
  coarse: Int32Array;
  blockSize: number;
}

/**
 * Run only the matcher of a guided restorer (or a bare DynamicAggregation) on one X and one G.
 * Sizes as in `GuidedRestorer.call`: X padded to the matcher's multiple, G to its own. The whole
 * image goes through the matcher at once: a size the backend cannot hold is refused up front
 * (UserError with the size and the limit).
 */
export function inspectMatch(net: GuidedRestorer | DynamicAggregation, x: RGBImage, g: RGBImage): MatchView {
  const agg = net instanceof GuidedRestorer ? net.aggregation : net;
  if (!agg) throw new Error('inspectMatch: the restorer was built without guidance (no matcher)');
  checkWholeImageFits('inspectMatch', x.height, x.width, matcherBytes(agg, x.height, x.width, g.height, g.width) + 4 * 3 * (x.height * x.width + g.height * g.width));
  let result: { indices: ReturnType<typeof matchFeatures>['indices']; simArr: Float32Array } | undefined;
  tf.tidy(() => {
    const xp = padToMultiple(toBatch([x]), agg.sizeMultiple);
    const gp = padToMultiple(toBatch([g]), agg.guidanceMultiple, 3 * agg.guidanceMultiple);
    const fx = agg.encoder.call(xp);
    const fg = agg.encoder.call(gp);
    const last = agg.levels - 1;
    const r = matchFeatures(fx[last], fg[last], agg.cfg);
    result = { indices: r.indices, simArr: r.sim.dataSync() as Float32Array };
  });
  const { indices, simArr } = result!;
  const { h, w, k, py, px, hr, wr } = indices.geom;
  // sim is [block, k²] → row-major [h, w]
  const sim = new Float32Array(h * w);
  for (let by = 0; by < py; by++)
    for (let bx = 0; bx < px; bx++)
      for (let cy = 0; cy < k; cy++)
        for (let cx = 0; cx < k; cx++) sim[(by * k + cy) * w + bx * k + cx] = simArr[(by * px + bx) * k * k + cy * k + cx];
  const coarse = new Int32Array(py * px * 2);
  for (let i = 0; i < py * px; i++) {
    coarse[2 * i] = Math.floor(indices.coarse[i] / wr);
    coarse[2 * i + 1] = indices.coarse[i] % wr;
  }
  return { cellPx: agg.guidanceMultiple, h, w, hr, wr, cells: matchedCells(indices), sim, coarse, blockSize: k };
}

/**
 * Share of X cells whose match is the cell shifted by (dy, dx) cells, leaving out `margin` cells
 * at each border (X's border cells see replicate padding where G has real neighbours).
 */
export function shiftAccuracy(v: MatchView, dy: number, dx: number, margin = 0): number {
  let hit = 0;
  let n = 0;
  for (let y = margin; y < v.h - margin; y++)
    for (let x = margin; x < v.w - margin; x++) {
      const o = (y * v.w + x) * 2;
      n++;
      if (v.cells[o] === y + dy && v.cells[o + 1] === x + dx) hit++;
    }
  return hit / n;
}

export interface FusionGate {
  level: number;
  name: string;
  /** |α| for Restormer/PromptIR (scalar); RMS of β and γ of the fusion NAFBlock for NAFNet */
  value: number;
}

/** How open each fusion level is: Eq. (4)'s α (0 at initialisation = the unguided network). */
export function fusionGates(net: GuidedRestorer): FusionGate[] {
  const out: FusionGate[] = [];
  const re = /\.fuse(\d+)\.(alpha|block\.beta|block\.gamma)$/;
  const per = new Map<number, { name: string; sq: number; n: number; scalar: boolean }>();
  for (const [name, v] of net.params.entries()) {
    if (!net.isMatcherParam(name)) continue;
    const m = re.exec(name);
    if (!m) continue;
    const level = Number(m[1]);
    const d = v.dataSync() as Float32Array;
    const e = per.get(level) ?? { name: name.replace(/\.(alpha|block\.beta|block\.gamma)$/, ''), sq: 0, n: 0, scalar: m[2] === 'alpha' };
    for (const x of d) e.sq += x * x;
    e.n += d.length;
    per.set(level, e);
  }
  for (const [level, e] of [...per.entries()].sort((a, b) => a[0] - b[0])) out.push({ level, name: e.name, value: Math.sqrt(e.sq / e.n) });
  return out;
}
