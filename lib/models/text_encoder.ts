/**
 * Text encoder τt, CLIP text-tower style (Radford et al. 2021, "Learning Transferable Visual Models
 * From Natural Language Supervision"; reference: openai/CLIP `model.py` `encode_text`, and HF
 * `CLIPTextTransformer`): token embedding [V,D] + learned positional embedding [T,D] → L pre-LN
 * causal transformer blocks (x += Attn(LN(x)); x += MLP(LN(x)), MLP = Linear(D,4D)·GELU·Linear(4D,D))
 * → final LayerNorm → context [B,T,D] for the UNet's cross-attention. `pooled` = the feature at the
 * EOS token (CLIP's `x[arange(B), text.argmax(-1)]`).
 *
 * Deviations, and why:
 *   - trained from scratch with the T2I model (stage 0; no pretrained CLIP here, docs/notation.md), on a
 *     compact vocabulary (`Vocab` in ./tokenizer: PAD 0, BOS 1, EOS 2, PLACEHOLDER 3, UNK 4, then the
 *     captions' CLIP tokens); no projection head (no contrastive image tower);
 *   - the embedding look-up is oneHot(ids)·E, not tf.gather: the gradient of gather needs the
 *     UnsortedSegmentSum kernel, which tfjs-backend-wasm 4.22 does not register. Cost: a [B·T,V] one-hot,
 *     fine for compact vocabularies (V in the hundreds; the full 49,408 would need B·T·V floats);
 *   - GELU is the tanh approximation (nn.gelu); OpenAI CLIP uses QuickGELU, HF the exact erf form;
 *   - the attention output projection starts at zero (nn.Attention's convention).
 *
 * Placeholder injection (the official `inj_forward_text`, scripts/train/main_train_i2t_mapping.py): the N pseudo-word
 * embeddings of M_i2t replace the placeholder token of "a photo of a S" in the *token* embeddings
 * (before the positional embedding is added), following tokens shift right by N−1; see
 * `spliceAtPlaceholder` / `spliceIds`, and `encodeWithWords` for the whole path.
 *
 * Symbols: τt = TextEncoder, E = `tokenEmb` [V,D], P = `posEmb` [T,D], S* = pseudo-words `words` [B,N,D].
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { Params, init } from './params';
import { Attention, LayerNorm, Linear, causalMask, gelu } from './nn';
import { Rng } from '../util/rng';
import { NUM_SPECIAL, SPECIAL } from './tokenizer';

const posInt = z.number().int().positive();

export const TextEncoderConfigSchema = z
  .strictObject({
    vocabSize: z.number().int().min(NUM_SPECIAL).describe('rows of the token-embedding table = Vocab.size (specials included)'),
    width: posInt.describe('model width D (paper / SD2.1: 1024)'),
    layers: z.number().int().min(0).describe('number of transformer blocks L (SD2.1 OpenCLIP ViT-H text tower: 23 used)'),
    heads: posInt.describe('attention heads; must divide width'),
    contextLength: z.number().int().min(2).describe('T, token positions incl. BOS/EOS (CLIP: 77)'),
    mlpRatio: posInt.default(4).describe('MLP hidden width = mlpRatio·width'),
  })
  .refine((c) => c.width % c.heads === 0, { message: 'width must be divisible by heads', path: ['heads'] });

export type TextEncoderConfig = z.infer<typeof TextEncoderConfigSchema>;
export type TextEncoderConfigInput = z.input<typeof TextEncoderConfigSchema>;

/** Validate a text-encoder config; errors are prefixed by `label` (a file name or preset path). */
export function parseTextEncoderConfig(raw: unknown, label = 'textEncoder'): TextEncoderConfig {
  const r = TextEncoderConfigSchema.safeParse(raw);
  if (!r.success) throw new Error(`${label}: ${z.prettifyError(r.error)}`);
  return r.data;
}

/** Token ids: [B][T] JS arrays or an int32 tensor [B,T] (read synchronously). */
export type TokenIds = readonly (readonly number[])[] | tf.Tensor2D;

function idsToArray(ids: TokenIds, what: string): number[][] {
  const a = ids instanceof tf.Tensor ? (ids.arraySync() as number[][]) : ids.map((r) => [...r]);
  if (a.length === 0) throw new Error(`${what}: ids is empty`);
  const t = a[0].length;
  a.forEach((r, i) => {
    if (r.length !== t) throw new Error(`${what}: ids row ${i} has ${r.length} tokens, row 0 has ${t}`);
  });
  return a;
}

/** One pre-LN transformer block with causal self-attention. */
class Block {
  readonly ln1: LayerNorm;
  readonly attn: Attention;
  readonly ln2: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(p: Params, name: string, d: number, heads: number, mlpRatio: number, layers: number, rng: Rng) {
    this.ln1 = new LayerNorm(p, `${name}.ln1`, d);
    this.attn = new Attention(p, `${name}.attn`, d, d, heads, rng);
    this.ln2 = new LayerNorm(p, `${name}.ln2`, d);
    this.fc1 = new Linear(p, `${name}.fc1`, d, mlpRatio * d, rng);
    this.fc2 = new Linear(p, `${name}.fc2`, mlpRatio * d, d, rng, { std: 1 / Math.sqrt(d * 2 * layers) }); // CLIP's proj_std
  }
  /** @param x [B,T,D] @param mask [T,T] additive causal */
  call(x: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor3D {
    const h = this.ln1.call(x);
    x = tf.add(x, this.attn.call(h, h, { mask }));
    return tf.add(x, this.fc2.call(gelu(this.fc1.call(this.ln2.call(x))))) as tf.Tensor3D;
  }
}

/** Where the pieces of one row go when N words replace its placeholder (see `spliceAtPlaceholder`). */
interface SplicePlan {
  /** placeholder position in the input row */
  p: number;
  /** EOS position in the input row (first EOS after p) */
  e: number;
  /** input tokens p+1 .. p+keep (between placeholder and EOS) kept after the words */
  keep: number;
  /** PAD rows appended after EOS to reach the context length */
  pad: number;
}

export class TextEncoder {
  readonly cfg: TextEncoderConfig;
  /** E: token embedding table [V,D] */
  readonly tokenEmb: tf.Variable;
  /** P: positional embedding [T,D] */
  readonly posEmb: tf.Variable;
  readonly blocks: Block[] = [];
  readonly lnFinal: LayerNorm;

  /**
   * @param params the store the weights are created in (names start with `prefix`)
   * @param prefix parameter-name prefix, e.g. 'text'
   * @param cfg validated with TextEncoderConfigSchema
   * @param rng seeded initialiser: E ~ N(0, 0.02²), P ~ N(0, 0.01²) (CLIP's `initialize_parameters`)
   */
  constructor(params: Params, readonly prefix: string, cfg: TextEncoderConfigInput, rng: Rng) {
    this.cfg = parseTextEncoderConfig(cfg, `TextEncoder '${prefix}' config`);
    const { vocabSize: v, width: d, contextLength: t } = this.cfg;
    this.tokenEmb = params.add(`${prefix}.tok`, [v, d], init.normal(rng, 0.02));
    this.posEmb = params.add(`${prefix}.pos`, [t, d], init.normal(rng, 0.01));
    for (let i = 0; i < this.cfg.layers; i++) this.blocks.push(new Block(params, `${prefix}.block${i}`, d, this.cfg.heads, this.cfg.mlpRatio, this.cfg.layers, rng));
    this.lnFinal = new LayerNorm(params, `${prefix}.lnFinal`, d);
  }

  /**
   * E[ids]: token embeddings, as oneHot(ids)·E (gradient reaches E on every backend, wasm included).
   * @param ids [B,T] compact ids in [0,V), T ≤ contextLength
   * @returns [B,T,D] (no positional embedding yet)
   */
  embedTokens(ids: TokenIds): tf.Tensor3D {
    const a = idsToArray(ids, 'TextEncoder.embedTokens');
    const { vocabSize: v, width: d, contextLength } = this.cfg;
    const b = a.length;
    const t = a[0].length;
    if (t > contextLength) throw new Error(`TextEncoder.embedTokens: ids have ${t} tokens, contextLength is ${contextLength}`);
    a.forEach((r, i) =>
      r.forEach((id, j) => {
        if (!Number.isInteger(id) || id < 0 || id >= v) throw new Error(`TextEncoder.embedTokens: ids[${i}][${j}] = ${id} is outside the vocabulary [0,${v})`);
      }),
    );
    return tf.tidy(() => {
      const oh = tf.oneHot(tf.tensor1d(a.flat(), 'int32'), v); // [B·T,V]
      return tf.matMul(oh, this.tokenEmb as tf.Tensor2D).reshape([b, t, d]) as tf.Tensor3D; // [B,T,D]
    });
  }

  /**
   * τt on token embeddings: + P[0:T], L causal blocks, final LayerNorm.
   * @param emb [B,T,D] token embeddings (from `embedTokens`, possibly spliced), T ≤ contextLength
   * @returns context [B,T,D]
   */
  encodeEmbeddings(emb: tf.Tensor3D): tf.Tensor3D {
    const { width: d, contextLength } = this.cfg;
    if (emb.rank !== 3 || emb.shape[2] !== d) throw new Error(`TextEncoder.encodeEmbeddings: emb must be [B,T,${d}], got [${emb.shape}]`);
    const t = emb.shape[1];
    if (t > contextLength) throw new Error(`TextEncoder.encodeEmbeddings: emb has ${t} positions, contextLength is ${contextLength}`);
    return tf.tidy(() => {
      let x = tf.add(emb, tf.slice(this.posEmb, [0, 0], [t, d])) as tf.Tensor3D; // [B,T,D]
      const mask = causalMask(t);
      for (const blk of this.blocks) x = blk.call(x, mask);
      return this.lnFinal.call(x);
    });
  }

  /**
   * Pooled text feature: context at each row's first EOS (compact id 2), as a one-hot·matMul (no gather).
   * @param context [B,T,D] @param ids [B,T] the ids the context was computed from (spliced ids after a splice)
   * @returns [B,D]
   */
  pool(context: tf.Tensor3D, ids: TokenIds): tf.Tensor2D {
    const a = idsToArray(ids, 'TextEncoder.pool');
    const [b, t, d] = context.shape;
    if (a.length !== b || a[0].length !== t) throw new Error(`TextEncoder.pool: ids [${a.length},${a[0].length}] do not match context [${context.shape}]`);
    const pos = a.map((r, i) => {
      const k = r.indexOf(SPECIAL.EOS);
      if (k < 0) throw new Error(`TextEncoder.pool: ids row ${i} has no EOS (${SPECIAL.EOS})`);
      return k;
    });
    return tf.tidy(() => {
      const sel = tf.oneHot(tf.tensor1d(pos, 'int32'), t).reshape([b, 1, t]); // [B,1,T]
      return tf.matMul(sel, context).reshape([b, d]) as tf.Tensor2D; // [B,D]
    });
  }

  /** τt(ids): context [B,T,D] and pooled [B,D]. */
  encode(ids: TokenIds): { context: tf.Tensor3D; pooled: tf.Tensor2D } {
    return tf.tidy(() => {
      const context = this.encodeEmbeddings(this.embedTokens(ids));
      return { context, pooled: this.pool(context, ids) };
    });
  }

  private plan(row: readonly number[], i: number, n: number, what: string): SplicePlan {
    const L = this.cfg.contextLength;
    const p = row.indexOf(SPECIAL.PLACEHOLDER);
    if (p < 0) throw new Error(`${what}: ids row ${i} has no placeholder (compact id ${SPECIAL.PLACEHOLDER}; encode the prompt with the placeholder word "S")`);
    if (row.indexOf(SPECIAL.PLACEHOLDER, p + 1) >= 0) throw new Error(`${what}: ids row ${i} has more than one placeholder`);
    const e = row.indexOf(SPECIAL.EOS, p + 1);
    if (e < 0) throw new Error(`${what}: ids row ${i} has no EOS (${SPECIAL.EOS}) after the placeholder`);
    if (p + n + 1 > L) throw new Error(`${what}: ${n} words at position ${p} plus EOS need ${p + n + 1} positions, contextLength is ${L}`);
    const keep = Math.min(e - p - 1, L - 1 - p - n); // tokens between placeholder and EOS that still fit
    return { p, e, keep, pad: L - (p + n + keep + 1) };
  }

  /**
   * The ids that go with `spliceAtPlaceholder`'s output (for `pool` and inspection): the placeholder
   * repeated N times, then the following ids, EOS, PAD up to contextLength.
   * @param ids [B,T] compact ids, one placeholder and an EOS after it per row
   * @returns [B][contextLength]
   */
  spliceIds(ids: TokenIds, n: number): number[][] {
    return idsToArray(ids, 'TextEncoder.spliceIds').map((r, i) => {
      const { p, e, keep, pad } = this.plan(r, i, n, 'TextEncoder.spliceIds');
      return [...r.slice(0, p), ...new Array<number>(n).fill(SPECIAL.PLACEHOLDER), ...r.slice(p + 1, p + 1 + keep), r[e], ...new Array<number>(pad).fill(SPECIAL.PAD)];
    });
  }

  /**
   * The paper's "a photo of a S" injection (the official `inj_forward_text`: ELITE's, with N words):
   * row b of the output = tokenEmb[b, 0:p] ‖ words[b] (N rows) ‖ tokenEmb[b, p+1 : e] ‖ tokenEmb[b, e]
   * ‖ E[PAD]×pad, where p is the placeholder's position and e the EOS's: the words start at the
   * placeholder's position and every following token shifts right by N−1.
   *
   * Length: always exactly contextLength L. The spliced sequence has T+N−1 positions; the padding after
   * EOS is dropped or extended (with E[PAD], which equals `embedTokens` of PAD) to reach L. If even
   * the real tokens (BOS … EOS, N words) exceed L, tokens between the words and EOS are dropped and
   * EOS is kept last (CLIP's truncation rule); if the words themselves do not fit, it throws.
   * Differentiable in `tokenEmb` and `words` (slice/concat only; no gather).
   *
   * @param tokenEmb [B,T,D] from `embedTokens(ids)`
   * @param ids [B,T] compact ids: exactly one PLACEHOLDER (3) per row and an EOS (2) after it
   * @param words [B,N,D] pseudo-word embeddings from M_i2t / M_clean
   * @returns [B,L,D] token embeddings for `encodeEmbeddings`; `spliceIds(ids, N)` gives its ids
   */
  spliceAtPlaceholder(tokenEmb: tf.Tensor3D, ids: TokenIds, words: tf.Tensor3D): tf.Tensor3D {
    const what = 'TextEncoder.spliceAtPlaceholder';
    const a = idsToArray(ids, what);
    const d = this.cfg.width;
    const [b, t] = tokenEmb.shape;
    if (tokenEmb.rank !== 3 || tokenEmb.shape[2] !== d) throw new Error(`${what}: tokenEmb must be [B,T,${d}], got [${tokenEmb.shape}]`);
    if (a.length !== b || a[0].length !== t) throw new Error(`${what}: ids [${a.length},${a[0].length}] do not match tokenEmb [${tokenEmb.shape}]`);
    if (words.rank !== 3 || words.shape[0] !== b || words.shape[2] !== d) throw new Error(`${what}: words must be [${b},N,${d}], got [${words.shape}]`);
    const n = words.shape[1];
    if (n < 1) throw new Error(`${what}: words must hold at least one word, got N = 0`);
    const plans = a.map((r, i) => this.plan(r, i, n, what));
    const p0 = plans[0];
    if (plans.every((pl) => pl.p === p0.p && pl.e === p0.e && pl.keep === p0.keep && pl.pad === p0.pad)) {
      // one template for every row (the usual case: wordsContext): the same splice on the whole batch,
      // a handful of ops instead of ~6 per row (and their gradients)
      return tf.tidy(() => {
        const parts: tf.Tensor3D[] = [];
        if (p0.p > 0) parts.push(tf.slice(tokenEmb, [0, 0, 0], [b, p0.p, d]));
        parts.push(words);
        if (p0.keep > 0) parts.push(tf.slice(tokenEmb, [0, p0.p + 1, 0], [b, p0.keep, d]));
        parts.push(tf.slice(tokenEmb, [0, p0.e, 0], [b, 1, d])); // EOS
        if (p0.pad > 0) parts.push(tf.tile(tf.slice(this.tokenEmb, [SPECIAL.PAD, 0], [1, d]).reshape([1, 1, d]), [b, p0.pad, 1]) as tf.Tensor3D);
        return tf.concat(parts, 1) as tf.Tensor3D; // [B,L,D]
      });
    }
    return tf.tidy(() => {
      const padRow = tf.slice(this.tokenEmb, [SPECIAL.PAD, 0], [1, d]); // [1,D]
      const rows = plans.map((pl, i) => {
        const row = tf.squeeze(tf.slice(tokenEmb, [i, 0, 0], [1, t, d]), [0]) as tf.Tensor2D; // [T,D]
        const parts: tf.Tensor2D[] = [];
        if (pl.p > 0) parts.push(tf.slice(row, [0, 0], [pl.p, d]));
        parts.push(tf.squeeze(tf.slice(words, [i, 0, 0], [1, n, d]), [0]) as tf.Tensor2D); // [N,D]
        if (pl.keep > 0) parts.push(tf.slice(row, [pl.p + 1, 0], [pl.keep, d]));
        parts.push(tf.slice(row, [pl.e, 0], [1, d])); // EOS
        if (pl.pad > 0) parts.push(tf.tile(padRow, [pl.pad, 1]) as tf.Tensor2D);
        return tf.concat(parts, 0); // [L,D]
      });
      return tf.stack(rows) as tf.Tensor3D; // [B,L,D]
    });
  }

  /**
   * τt("a photo of a S" with S := words): embed, splice, encode, pool at the shifted EOS.
   * @param ids [B,T] compact ids of the template (one placeholder per row)
   * @param words [B,N,D]
   * @returns context [B,contextLength,D], pooled [B,D]
   */
  encodeWithWords(ids: TokenIds, words: tf.Tensor3D): { context: tf.Tensor3D; pooled: tf.Tensor2D } {
    const spliced = this.spliceIds(ids, words.shape[1]);
    return tf.tidy(() => {
      const context = this.encodeEmbeddings(this.spliceAtPlaceholder(this.embedTokens(ids), ids, words));
      return { context, pooled: this.pool(context, spliced) };
    });
  }
}
