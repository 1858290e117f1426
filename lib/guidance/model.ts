/**
 * The guidance model: M_i2t (Eq. 2) + the ELITE k/v copies + M_clean (Eq. 3) in one `Params` store
 * (prefixes `mi2t.`, `kv.`, `mclean.`), tied to the text-to-image model it was trained on.
 *
 * Checkpoint (`.tdrc`, kind 'guidance'): the three modules' weights, the resolved config, which
 * stages were trained, and a reference to the T2I checkpoint: its path (relative to the project
 * root when inside it) and `t2iWeightsHash` of its weights. Loading with another T2I model is
 * refused with a message naming both hashes: the pseudo-words only mean something to the text
 * encoder and UNet they were trained against.
 *
 * Data flow (pipeline.ts): τi(X) → `mapper` → E_txt → (`clean` unless raw) → E'_txt →
 * `context(t2i, words)` = τt("a photo of a S" with S := words) → UNet with `kv.map` as kvOverride.
 */
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Params } from '../models/params';
import { TextToImage } from '../t2i/model';
import { PROMPT_TEMPLATE } from '../models/tokenizer';
import { CUTS, ImageFeatures } from '../models/image_encoder';
import { GuidanceConfig, parseGuidanceConfig, checkGuidanceAgainstT2I } from './config';
import { saveCheckpoint, loadCheckpoint, Named, CheckpointError, toFloat16 } from '../util/checkpoint';
import { projectRoot } from '../util/fsx';
import { Rng } from '../util/rng';
import { ImageToTextMapper, KVCopies } from './m_i2t';
import { CleanMapper } from './m_clean';

export type GuidanceStageName = 'i2t' | 'clean';

/** Where a guidance model's T2I model came from. */
export interface T2IReference {
  /** checkpoint path (project-relative when inside the project) or a description */
  path: string;
  /** `t2iWeightsHash` of its weights */
  sha256: string;
}

/**
 * SHA-256 of a T2I model's weights: parameter names, shapes and values rounded to float16 (so the
 * in-memory float32 model and its float16 checkpoint agree), in name order.
 */
export function t2iWeightsHash(t2i: TextToImage): string {
  const h = crypto.createHash('sha256');
  for (const [name, v] of [...t2i.params.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    h.update(`${name}:${v.shape.join('x')};`);
    const half = toFloat16(v.dataSync() as Float32Array);
    h.update(new Uint8Array(half.buffer, half.byteOffset, half.byteLength));
  }
  h.update(`latentScale:${Math.fround(t2i.latentScale)}`);
  return h.digest('hex');
}

/** RMS of the T2I token-embedding table (sets the mapper's output scale at init). */
export function tokenEmbeddingRms(t2i: TextToImage): number {
  return tf.tidy(() => Math.sqrt(tf.mean(tf.square(t2i.text.tokenEmb)).dataSync()[0]));
}

/** A path as stored in a checkpoint: project-relative when inside the project. */
export function portablePath(file: string): string {
  const abs = path.resolve(file);
  const rel = path.relative(projectRoot(), abs);
  return rel.startsWith('..') || path.isAbsolute(rel) ? abs : rel;
}

/** Resolve a stored path (project-relative paths against the project root). */
export function resolveStoredPath(p: string): string {
  return path.isAbsolute(p) ? p : path.join(projectRoot(), p);
}

export class GuidanceModel {
  readonly mapper: ImageToTextMapper;
  readonly kv: KVCopies;
  readonly clean: CleanMapper;
  /** stages whose weights this model holds trained (M_clean is at init after stage 1 only) */
  trainedStages: GuidanceStageName[] = [];
  /** side of the training crops (the T2I's imageSize): inputs are viewed at this size, as in training */
  readonly imageSize: number;

  /**
   * @param t2i the frozen T2I model (text width, cross-attentions to copy, embedding scale)
   * @param t2iRef where the T2I came from (kept in checkpoints); default: its hash, path unknown
   */
  constructor(readonly cfg: GuidanceConfig, t2i: TextToImage, public t2iRef: T2IReference = { path: '(in memory)', sha256: t2iWeightsHash(t2i) }, readonly params: Params = new Params()) {
    checkGuidanceAgainstT2I(cfg, t2i.cfg.text, `guidance preset ${cfg.preset}`);
    this.imageSize = t2i.cfg.imageSize;
    const d = t2i.cfg.text.width;
    const rms = tokenEmbeddingRms(t2i);
    const dim = CUTS[cfg.encoder.cut].dim;
    this.mapper = new ImageToTextMapper(params, 'mi2t', cfg.mapper, dim, d, rms, new Rng(cfg.i2tTrain.seed * 1009 + 1));
    this.kv = new KVCopies(params, 'kv', t2i.unet);
    this.clean = new CleanMapper(params, 'mclean', cfg.clean, cfg.mapper.numWords, d, rms, new Rng(cfg.cleanTrain.seed * 1009 + 2));
  }

  get numWords(): number {
    return this.cfg.mapper.numWords;
  }

  /**
   * E_txt (raw) or E'_txt = M_clean(M_i2t(τi(X))).
   * @param f τi features (tokens already pooled by cfg.mapper.tokenPool; see `mapperFeatures`)
   * @returns [B,N,D]
   */
  words(f: ImageFeatures, opts: { raw?: boolean } = {}): tf.Tensor3D {
    return tf.tidy(() => {
      const e = this.mapper.call(f);
      return opts.raw ? e : this.clean.call(e);
    });
  }

  /** The stage's trainable prefixes (the rest of this store is frozen). */
  static trainablePrefixes(stage: GuidanceStageName): string[] {
    return stage === 'i2t' ? ['mi2t', 'kv'] : ['mclean'];
  }

  /** Freeze everything but `stage`'s modules (stage 2 trains M_clean only; see ./train_clean.ts). */
  setStage(stage: GuidanceStageName): void {
    this.params.unfreeze(['mi2t', 'kv', 'mclean']);
    this.params.freeze(GuidanceModel.trainablePrefixes(stage === 'i2t' ? 'clean' : 'i2t'));
  }

  /** Save weights + config + T2I reference; float16 for shipping. */
  save(file: string, opts: { float16?: boolean; meta?: Record<string, unknown> } = {}): void {
    const tensors: Named = new Map();
    for (const [n, v] of this.params.entries()) tensors.set(n, { shape: [...v.shape], data: v.dataSync() as Float32Array });
    saveCheckpoint(file, { ...opts.meta, kind: 'guidance', config: this.cfg, trainedStages: this.trainedStages, t2i: this.t2iRef }, tensors, { float16: opts.float16 });
  }

  /** The header of a guidance checkpoint (config, T2I reference) without building the model. */
  static readHeader(file: string, loaded = loadCheckpoint(file)): { cfg: GuidanceConfig; t2i: T2IReference; trainedStages: GuidanceStageName[]; meta: Record<string, unknown>; tensors: Named } {
    const { meta, tensors } = loaded;
    if (meta.kind !== 'guidance') throw new CheckpointError(`${file}: not a guidance checkpoint (kind '${String(meta.kind)}'; expected one written by 'tdr train clean')`);
    const cfg = parseGuidanceConfig(meta.config, `${file}: config`);
    const ref = meta.t2i as Partial<T2IReference> | undefined;
    if (!ref || typeof ref.path !== 'string' || typeof ref.sha256 !== 'string') throw new CheckpointError(`${file}: t2i reference missing (expected {path, sha256})`);
    const stages = Array.isArray(meta.trainedStages) ? (meta.trainedStages as GuidanceStageName[]) : [];
    return { cfg, t2i: { path: ref.path, sha256: ref.sha256 }, trainedStages: stages, meta, tensors };
  }

  /**
   * Load a guidance checkpoint for `t2i`; refuses a T2I whose weights differ from the one it was
   * trained on (hash mismatch), naming both.
   */
  static load(file: string, t2i: TextToImage, opts: { t2iLabel?: string } = {}): GuidanceModel {
    const h = GuidanceModel.readHeader(file);
    const got = t2iWeightsHash(t2i);
    if (got !== h.t2i.sha256) {
      throw new CheckpointError(
        `${file}: trained on the text-to-image model ${h.t2i.path} (weights sha256 ${h.t2i.sha256.slice(0, 12)}…), but the given one${opts.t2iLabel ? ` (${opts.t2iLabel})` : ''} has weights sha256 ${got.slice(0, 12)}…; use the T2I checkpoint it was trained on or retrain with 'tdr train i2t'`,
      );
    }
    const m = new GuidanceModel(h.cfg, t2i, h.t2i);
    m.params.assign(h.tensors, { source: file });
    m.trainedStages = h.trainedStages;
    return m;
  }

  dispose(): void {
    this.params.dispose();
  }
}

/** Compact ids of "a photo of a S" for a batch of b rows. */
export function templateIds(t2i: TextToImage, b: number): number[][] {
  return t2i.tokenize(new Array<string>(b).fill(PROMPT_TEMPLATE));
}

/**
 * τt("a photo of a S" with S := words): the context the UNet is conditioned on.
 * @param words [B,N,D] @returns [B,contextLength,D]
 */
export function wordsToContext(t2i: TextToImage, words: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => t2i.text.encodeEmbeddings(splicedEmbeddings(t2i, words)));
}

/**
 * The token embeddings of "a photo of a S" with the N words at the placeholder's position
 * (BOS a photo of a → position 5), EOS after them, PAD to the context length.
 * @param words [B,N,D] @returns [B,contextLength,D]
 */
export function splicedEmbeddings(t2i: TextToImage, words: tf.Tensor3D): tf.Tensor3D {
  const ids = templateIds(t2i, words.shape[0]);
  return tf.tidy(() => t2i.text.spliceAtPlaceholder(t2i.text.embedTokens(ids), ids, words));
}
