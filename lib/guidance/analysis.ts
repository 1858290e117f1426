/**
 * Looking inside E_txt and E'_txt (beyond the paper; github.com/mrluin/TextualDegRemoval/issues/2 asks which
 * words the pseudo-words are):
 *   (a) `decodeWords` / `tokenShift` / `degradationWordScores`: nearest vocabulary tokens of each
 *       pseudo-word (cosine against the T2I's token-embedding table), and which tokens a
 *       degradation adds (E_txt(clean) → E_txt(degraded)) and M_clean removes (E_txt → E'_txt);
 *   (b) `fitPca` / `projectPca` / `embeddingPca` / `embeddingScatterFigure`: a 2-D PCA of E_txt
 *       (flattened N·D) of clean and degraded images, coloured by task, with E'_txt projected on the
 *       same axes;
 *   (c) `interpolateGuidance`: guidance regenerated along E_txt → E'_txt, same seed at every α.
 * Cosines and PCA are computed in JS float64 on downloaded values (small: N·D ≤ a few thousand).
 */
import * as tf from '@tensorflow/tfjs';
import { TextToImage } from '../t2i/model';
import { NUM_SPECIAL, SPECIAL } from '../models/tokenizer';
import { DEGRADATION_WORDS } from '../data/captions';
import { RGBImage } from '../data/image';
import { PlotlyFigure } from '../viz/plotly';
import { GuidanceModel } from './model';
import { imageWords, generateFromWords, GuidanceOptions } from './pipeline';

/** Words as plain arrays: [N][D] for one image (from a [1,N,D] / [N,D] tensor or nested arrays). */
export type WordRows = number[][];

/** [B,N,D] tensor → B × [N][D] arrays. */
export function wordsToArrays(words: tf.Tensor3D): WordRows[] {
  return words.arraySync() as WordRows[];
}

/** The token-embedding table as rows [V][D] (specials included; callers skip ids < NUM_SPECIAL). */
function tokenTable(t2i: TextToImage): number[][] {
  return t2i.text.tokenEmb.arraySync() as number[][];
}

function norm(v: readonly number[]): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s) || 1e-12;
}

function cosine(a: readonly number[], b: readonly number[], nb = norm(b)): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s / (norm(a) * nb);
}

export interface NearestToken {
  /** compact id in the T2I vocabulary */
  id: number;
  /** decoded token text */
  token: string;
  cosine: number;
}

/**
 * (a) The k nearest vocabulary tokens of every pseudo-word (cosine to the token-embedding rows;
 * specials PAD/BOS/EOS/placeholder/UNK excluded).
 * @param words [N][D] one image's E_txt or E'_txt
 * @returns N lists of k tokens, nearest first
 */
export function decodeWords(t2i: TextToImage, words: WordRows, k = 3): NearestToken[][] {
  const table = tokenTable(t2i);
  const norms = table.map(norm);
  return words.map((w) => {
    const scored: NearestToken[] = [];
    for (let id = NUM_SPECIAL; id < table.length; id++) scored.push({ id, token: '', cosine: cosine(w, table[id], norms[id]) });
    scored.sort((x, y) => y.cosine - x.cosine);
    return scored.slice(0, k).map((s) => ({ ...s, token: t2i.vocab.decode([s.id]) }));
  });
}

/** For every vocabulary token: its best cosine over the N words of one image. */
export function tokenAffinity(t2i: TextToImage, words: WordRows): Map<number, number> {
  const table = tokenTable(t2i);
  const out = new Map<number, number>();
  for (let id = NUM_SPECIAL; id < table.length; id++) {
    const nb = norm(table[id]);
    out.set(id, Math.max(...words.map((w) => cosine(w, table[id], nb))));
  }
  return out;
}

/**
 * (a) Which tokens move closer / away from `from` to `to` (max cosine over words): e.g.
 * from = E_txt(clean), to = E_txt(degraded) → what the degradation adds; from = E_txt(degraded),
 * to = E'_txt → what M_clean removes (`removed`) and restores (`added`).
 */
export function tokenShift(t2i: TextToImage, from: WordRows, to: WordRows, k = 5): { added: Array<{ token: string; delta: number }>; removed: Array<{ token: string; delta: number }> } {
  const a = tokenAffinity(t2i, from);
  const b = tokenAffinity(t2i, to);
  const deltas = [...a.keys()].map((id) => ({ token: t2i.vocab.decode([id]), delta: b.get(id)! - a.get(id)! }));
  deltas.sort((x, y) => y.delta - x.delta);
  return { added: deltas.slice(0, k), removed: deltas.slice(-k).reverse() };
}

/**
 * (a) How strongly one image's words point at each degradation word ('noisy', 'rainy', 'hazy',
 * 'blurry'): max over the N words of the cosine to the word's token embedding (mean embedding if a
 * word has several tokens). Words missing from the vocabulary are left out.
 */
export function degradationWordScores(t2i: TextToImage, words: WordRows): Record<string, number> {
  const table = tokenTable(t2i);
  const out: Record<string, number> = {};
  for (const dw of DEGRADATION_WORDS) {
    const ids = t2i.vocab.encode(dw, t2i.cfg.text.contextLength).filter((id) => id >= NUM_SPECIAL);
    if (ids.length === 0 || ids.includes(SPECIAL.UNK)) continue;
    const e = table[0].map((_, j) => ids.reduce((s, id) => s + table[id][j], 0) / ids.length);
    const ne = norm(e);
    out[dw] = Math.max(...words.map((w) => cosine(w, e, ne)));
  }
  return out;
}

export interface Pca {
  mean: Float64Array;
  /** unit principal axes, each of length N·D */
  axes: Float64Array[];
  /** variance along each axis / total variance */
  explained: number[];
}

/**
 * (b) PCA of rows (each a flattened [N·D] embedding) through the M×M Gram matrix (M rows ≪ N·D),
 * top-k eigenvectors by power iteration with deflation. Axis signs are fixed (largest |entry| > 0),
 * so the result is deterministic.
 */
export function fitPca(rows: ArrayLike<number>[], k = 2, iters = 300): Pca {
  const m = rows.length;
  if (m < 2) throw new Error(`fitPca: need at least 2 rows, got ${m}`);
  const dim = rows[0].length;
  rows.forEach((r, i) => {
    if (r.length !== dim) throw new Error(`fitPca: row ${i} has ${r.length} values, row 0 has ${dim}`);
  });
  const mean = new Float64Array(dim);
  for (const r of rows) for (let j = 0; j < dim; j++) mean[j] += r[j] / m;
  const X = rows.map((r) => Float64Array.from({ length: dim }, (_, j) => r[j] - mean[j]));
  const G = X.map((a) => X.map((b) => a.reduce((s, v, j) => s + v * b[j], 0)));
  const total = G.reduce((s, row, i) => s + row[i], 0) || 1e-30;
  const axes: Float64Array[] = [];
  const explained: number[] = [];
  for (let c = 0; c < Math.min(k, m - 1); c++) {
    let v = Float64Array.from({ length: m }, (_, i) => 1 + ((i * 7919) % 13) / 13);
    let lambda = 0;
    for (let it = 0; it < iters; it++) {
      const w = new Float64Array(m);
      for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) w[i] += G[i][j] * v[j];
      lambda = Math.sqrt(w.reduce((s, x) => s + x * x, 0));
      if (lambda < 1e-30) break;
      v = w.map((x) => x / lambda);
    }
    // axis in feature space: u = Xᵀv / ‖Xᵀv‖
    const u = new Float64Array(dim);
    for (let i = 0; i < m; i++) for (let j = 0; j < dim; j++) u[j] += X[i][j] * v[i];
    const nu = Math.sqrt(u.reduce((s, x) => s + x * x, 0)) || 1e-30;
    let big = 0;
    for (let j = 0; j < dim; j++) if (Math.abs(u[j]) > Math.abs(u[big])) big = j;
    const sgn = u[big] < 0 ? -1 : 1;
    for (let j = 0; j < dim; j++) u[j] = (sgn * u[j]) / nu;
    axes.push(u);
    explained.push(lambda / total);
    // deflate: G ← G − λ v vᵀ
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) G[i][j] -= lambda * v[i] * v[j];
  }
  return { mean, axes, explained };
}

/** (b) Coordinates of rows on a fitted PCA's axes: [M][k]. */
export function projectPca(p: Pca, rows: ArrayLike<number>[]): number[][] {
  return rows.map((r) => p.axes.map((u) => {
    let s = 0;
    for (let j = 0; j < u.length; j++) s += (r[j] - p.mean[j]) * u[j];
    return s;
  }));
}

export interface ScatterPoint {
  x: number;
  y: number;
  /** 'clean' or a degradation task */
  task: string;
  /** which embedding: E_txt or E'_txt */
  kind: 'E_txt' | "E'_txt";
  label?: string;
}

/**
 * (b) E_txt (and E'_txt) of each image: fit the PCA on E_txt, project E'_txt on the same axes.
 * @param samples images with their task ('clean' or a family)
 */
export async function embeddingPca(model: GuidanceModel, samples: Array<{ image: RGBImage; task: string; label?: string }>): Promise<{ points: ScatterPoint[]; pca: Pca }> {
  const raw: Float32Array[] = [];
  const clean: Float32Array[] = [];
  for (let i = 0; i < samples.length; i += 16) {
    const w = await imageWords(model, samples.slice(i, i + 16).map((s) => s.image));
    const nd = w.raw.shape[1] * w.raw.shape[2];
    const a = w.raw.dataSync() as Float32Array;
    const b = w.clean.dataSync() as Float32Array;
    for (let k = 0; k < w.raw.shape[0]; k++) {
      raw.push(a.slice(k * nd, (k + 1) * nd));
      clean.push(b.slice(k * nd, (k + 1) * nd));
    }
    tf.dispose([w.raw, w.clean]);
  }
  const pca = fitPca(raw, 2);
  const pr = projectPca(pca, raw);
  const pc = projectPca(pca, clean);
  const points: ScatterPoint[] = [
    ...samples.map((s, i) => ({ x: pr[i][0], y: pr[i][1] ?? 0, task: s.task, kind: 'E_txt' as const, label: s.label })),
    ...samples.map((s, i) => ({ x: pc[i][0], y: pc[i][1] ?? 0, task: s.task, kind: "E'_txt" as const, label: s.label })),
  ];
  return { points, pca };
}

/** Task colours shared by the scatter's E_txt and E'_txt traces. */
export const TASK_COLOURS: Record<string, string> = { clean: '#2ca02c', noise: '#d62728', rain: '#1f77b4', haze: '#7f7f7f', motion: '#ff7f0e', defocus: '#9467bd' };

/**
 * (b) Plotly scatter: one trace per (embedding, task); E_txt as filled circles, E'_txt as crosses in
 * the same task colour.
 */
export function embeddingScatterFigure(points: readonly ScatterPoint[], opts: { title?: string; explained?: number[] } = {}): PlotlyFigure {
  const groups = new Map<string, ScatterPoint[]>();
  for (const p of points) {
    const key = `${p.kind}|${p.task}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(p);
  }
  const pct = (i: number) => (opts.explained?.[i] !== undefined ? ` (${(100 * opts.explained[i]).toFixed(1)} %)` : '');
  return {
    data: [...groups.entries()].map(([key, ps]) => {
      const [kind, task] = key.split('|');
      return {
        type: 'scatter',
        mode: 'markers',
        name: `${kind} ${task}`,
        x: ps.map((p) => p.x),
        y: ps.map((p) => p.y),
        text: ps.map((p) => p.label ?? ''),
        marker: { color: TASK_COLOURS[task] ?? '#17becf', symbol: kind === 'E_txt' ? 'circle' : 'x', size: kind === 'E_txt' ? 8 : 9 },
      };
    }),
    layout: {
      title: { text: opts.title ?? "PCA of E_txt (circles) with E'_txt projected (crosses)" },
      xaxis: { title: { text: `PC 1${pct(0)}` } },
      yaxis: { title: { text: `PC 2${pct(1)}` } },
    },
  };
}

/**
 * (c) Guidance along the straight path E(α) = (1−α)·E_txt + α·E'_txt, the same seed at every α.
 * @param alphas e.g. [0, 0.25, 0.5, 0.75, 1] (0 = raw E_txt, 1 = E'_txt)
 */
export async function interpolateGuidance(model: GuidanceModel, t2i: TextToImage, img: RGBImage, alphas: readonly number[], opts: GuidanceOptions = {}): Promise<Array<{ alpha: number; image: RGBImage }>> {
  const w = await imageWords(model, [img]);
  try {
    const out: Array<{ alpha: number; image: RGBImage }> = [];
    for (const a of alphas) {
      if (!Number.isFinite(a)) throw new Error(`interpolateGuidance: alpha must be finite, got ${a}`);
      const e = tf.tidy(() => tf.add(tf.mul(w.raw, 1 - a), tf.mul(w.clean, a)) as tf.Tensor3D);
      try {
        const [g] = await generateFromWords(model, t2i, e, opts);
        out.push({ alpha: a, image: g });
      } finally {
        e.dispose();
      }
    }
    return out;
  } finally {
    tf.dispose([w.raw, w.clean]);
  }
}
