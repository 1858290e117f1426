/**
 * The guidance sources the jobs and the command line choose from, as one explicit, typed map
 * (`GUIDANCE_SOURCES`: text, text-raw, clean-oracle, none), handed to lib/restore by name.
 *
 * 'text' is the paper's guidance: G = the text-to-image model's image from E'_txt = M_clean(M_i2t(τi(X)))
 * (Sec. 3.2), generated once per input and cached (outputs/guidance); the default of guided commands.
 *
 * Checkpoint: $TDR_GUIDANCE_CHECKPOINT, else data/checkpoints/guidance-demo.tdrc; for Table 9's
 * other N, data/checkpoints/guidance-demo-n<N>.tdrc (trained with `tdr train i2t|clean` and
 * mapper.numWords = N). The official generation uses one fixed seed (42) for every input; so does this,
 * unless the request names another (`tdr restore --seed N`).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { GuidanceSource, GuidanceModelRef, GuidanceSourceMap, GuidanceFactoryEntry, pickGuidanceSource, cleanOracleGuidance, noGuidance, CLEAN_ORACLE_NOTE, CLEAN_THUMB_SIDES, cleanThumbGuidance, cleanThumbNote } from '../restore/source';
import { guidanceCheckpoint } from '../guidance/config';
import { shippedCheckpoint } from '../util/paths';
import { loadGuidancePair, guidanceCached, guidanceCachedBatch } from '../guidance/pipeline';
import { portablePath, resolveStoredPath, type GuidanceModel } from '../guidance/model';
import type { TextToImage } from '../t2i/model';
import { UserError } from '../util/errors';

/** The checkpoint for N words (undefined N: the default one). */
export function guidanceCheckpointForWords(words?: number): string {
  if (words === undefined) return guidanceCheckpoint();
  const file = shippedCheckpoint(`guidance-demo-n${words}`);
  if (fs.existsSync(file)) return file;
  const def = guidanceCheckpoint();
  if (fs.existsSync(def)) {
    const h = loadGuidancePair(def);
    const n = h.guidance.cfg.mapper.numWords;
    h.guidance.dispose();
    h.t2i.dispose();
    if (n === words) return def;
  }
  throw new UserError(`no guidance checkpoint with N = ${words} words: expected ${file} (train it with 'tdr train i2t --preset demo --words ${words}' then 'tdr train clean --preset demo --words ${words}')`);
}

/** What a restorer records of the guidance model it was trained with: the file as given and its sha256. */
export function guidanceModelRef(file: string): GuidanceModelRef {
  return { file: portablePath(file), sha256: createHashOf(file) };
}

/**
 * The guidance model a guided restorer records (`meta.guidanceModel`, written by `tdr train restore`)
 * when that file is still there with the same bytes (sha256); else undefined.
 */
export function recordedGuidanceCheckpoint(meta: Record<string, unknown>): string | undefined {
  const rec = meta.guidanceModel as Partial<GuidanceModelRef> | null | undefined;
  if (!rec || typeof rec.file !== 'string' || typeof rec.sha256 !== 'string') return undefined;
  const file = resolveStoredPath(rec.file);
  if (!fs.existsSync(file)) return undefined;
  return createHashOf(file) === rec.sha256 ? file : undefined;
}

/**
 * Which guidance model a guided restorer gets G from, for a text source: `explicit` (a
 * --guidance-checkpoint option) if given; else $TDR_GUIDANCE_CHECKPOINT if set; else the one the
 * restorer was trained with (`recordedGuidanceCheckpoint`); else undefined = the default model.
 */
export function guidanceCheckpointForRestorer(meta: Record<string, unknown>, sourceName: string, explicit?: string): string | undefined {
  if (explicit !== undefined) return explicit;
  if (process.env.TDR_GUIDANCE_CHECKPOINT || GUIDANCE_SOURCES.get(sourceName)?.dependsOnN !== true) return undefined;
  return recordedGuidanceCheckpoint(meta);
}

/**
 * The guidance model a text-guided restorer gets G from by default (`tdr restore`, `tdr eval`, the
 * notebooks): $TDR_GUIDANCE_CHECKPOINT if set, else the one the restorer records having been trained with
 * (when that file is there unchanged), else the default guidance-demo.tdrc.
 */
export function restorerGuidanceCheckpoint(meta: Record<string, unknown>): string {
  return guidanceCheckpointForRestorer(meta, 'text') ?? guidanceCheckpoint();
}

function createHashOf(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** G(E'_txt) from the trained text side, cached per input; `checkpoint`: this guidance model instead of the default. */
export function textGuidance(opts: { words?: number; raw?: boolean; checkpoint?: string } = {}): GuidanceSource {
  // fail before any training or evaluation starts when there is no checkpoint
  const file = opts.checkpoint ?? guidanceCheckpointForWords(opts.words);
  if (!fs.existsSync(file)) throw new UserError(`${file}: no guidance checkpoint (train one with 'tdr train i2t --preset demo' then 'tdr train clean --preset demo')`);
  let pair: { guidance: GuidanceModel; t2i: TextToImage } | null = null;
  return {
    name: opts.raw ? 'text-raw' : 'text',
    model: guidanceModelRef(file),
    async get(degraded, _key, request) {
      if (!pair) pair = loadGuidancePair(file);
      const r = await guidanceCached(pair.guidance, pair.t2i, degraded, { raw: opts.raw, seed: request?.seed, steps: request?.steps });
      return r.image;
    },
    async prefetch(items, request, onProgress) {
      if (!pair) pair = loadGuidancePair(file);
      await guidanceCachedBatch(pair.guidance, pair.t2i, items.map((i) => i.degraded), { raw: opts.raw, seed: request?.seed, steps: request?.steps, onBatch: onProgress });
    },
  };
}

/** Every guidance source by name: what `--guidance NAME` accepts. */
export const GUIDANCE_SOURCES: GuidanceSourceMap = new Map<string, GuidanceFactoryEntry>([
  ['text', { description: "the paper's guidance G(E'_txt): degraded image → M_i2t → M_clean → text-to-image (cached)", dependsOnN: true, create: ({ words, checkpoint }) => textGuidance({ words, checkpoint }) }],
  ['text-raw', { description: 'guidance without textual restoration, G(E_txt) (ablation)', dependsOnN: true, create: ({ words, checkpoint }) => textGuidance({ words, checkpoint, raw: true }) }],
  ['clean-oracle', { description: CLEAN_ORACLE_NOTE, dependsOnN: false, create: () => cleanOracleGuidance() }],
  ...CLEAN_THUMB_SIDES.map((k): [string, GuidanceFactoryEntry] => [`clean-thumb-${k}`, { description: cleanThumbNote(k), dependsOnN: false, create: () => cleanThumbGuidance(k) }]),
  ['none', { description: 'no guidance (the unguided baseline)', dependsOnN: false, create: () => noGuidance }],
]);

/** The names of `GUIDANCE_SOURCES`. */
export function guidanceSourceNames(): string[] {
  return [...GUIDANCE_SOURCES.keys()];
}

/** The guidance source `name` (N = `words`, or the guidance model `checkpoint`, for the text sources); an unknown name lists the known ones. */
export function guidanceSourceByName(name: string, opts: { words?: number; checkpoint?: string } = {}): { source: GuidanceSource; entry: GuidanceFactoryEntry } {
  return pickGuidanceSource(GUIDANCE_SOURCES, name, opts);
}
