/**
 * Guidance sources of guided restoration (stage 3; paper Sec. 3.3): the `GuidanceSource` interface,
 * the unguided baseline's `noGuidance` and the `clean-oracle` stand-in. The paper's own source (the
 * text side, lib/guidance) is built in the job layer, lib/jobs/sources.ts, which also holds the
 * named map the command line picks from.
 */
import { RGBImage, makeImage } from '../data/image';
import { resizeImage } from '../data/io';
import { crop } from '../data/patches';
import { Rng, hashString } from '../util/rng';
import { UserError } from '../util/errors';
import { areaResize } from './tiled';

/** A trained guidance model: its checkpoint (project-relative when inside the project) and the sha256 of the file. */
export interface GuidanceModelRef {
  file: string;
  sha256: string;
}

/**
 * Where guidance images G come from. The paper's source is the text-side pipeline (Sec. 3.2,
 * lib/guidance): X → τi → M_i2t → M_clean → T2I → G. Everything in lib/restore takes a source, so the
 * same training and evaluation code runs with the real one and with the stand-ins below. The job
 * layer (lib/jobs/sources.ts) hands the command line an explicit, named map of them.
 */
export interface GuidanceSource {
  /** shown in tables and checkpoints, e.g. 'text-N20', 'clean-oracle' */
  readonly name: string;
  /**
   * Set on stand-ins that are NOT the paper's guidance (the reason, printed beside every table that
   * uses them). A real source leaves it undefined.
   */
  readonly standIn?: string;
  /**
   * The trained model that produces G (real sources: the guidance checkpoint, project-relative, and
   * the sha256 of its file). A restorer trained on it records it; a run's guidance cache made by
   * another model is rebuilt, and a run started with another model is not resumed.
   */
  readonly model?: GuidanceModelRef;
  /**
   * The guidance image for a degraded image.
   * @param degraded [H,W,3] float32 RGB in [0,1] (float-noise inputs may leave [0,1])
   * @param key stable identity of the degraded image (`guidanceKey`), for the source's cache and seed
   * @param opts `clean`: the clean image, offered ONLY for oracle stand-ins (a real source must
   *   ignore it); `seed`: the seed of a generating source (default: its own, e.g. the checkpoint's)
   * @returns [Hg,Wg,3] float32 RGB in [0,1], any size
   */
  get(degraded: RGBImage, key: string, opts?: GuidanceRequest): Promise<RGBImage>;
  /**
   * Optional: make the guidance of many inputs at once (a generating source batches them; later
   * `get` calls for the same inputs and request are then cache hits). Callers that know all their
   * inputs in advance (tables, training data) call it first; a source without it is asked one by one.
   */
  prefetch?(items: ReadonlyArray<{ degraded: RGBImage; key: string }>, opts?: GuidanceRequest, onProgress?: (done: number, total: number) => void): Promise<void>;
}

/** What a caller may add to a guidance request. */
export interface GuidanceRequest {
  /** the clean image (oracle stand-ins only) */
  clean?: RGBImage;
  /** seed of the generation (sources that generate G); default: the source's own */
  seed?: number;
  /** DDIM steps of the generation (sources that generate G); default: the source's own */
  steps?: number;
}

/** Key of a degraded image: `<split>:<photo id>:<task name>` (e.g. 'val:opencv-lena:noise25'). */
export function guidanceKey(split: string, id: string, task: string): string {
  return `${split}:${id}:${task}`;
}

/** The unguided baseline: no guidance at all. Calling `get` is a bug. */
export const noGuidance: GuidanceSource = {
  name: 'none',
  async get(_d, key) {
    throw new Error(`guidance source 'none' was asked for guidance (${key}): the unguided baseline takes none`);
  },
};

/** The clean image a stand-in source `name` is made from: `oracle.clean`, which must exist and match X's size. */
function cleanImageOf(name: string, degraded: RGBImage, key: string, oracle?: GuidanceRequest): RGBImage {
  if (!oracle?.clean) throw new Error(`${name}: no clean image offered for '${key}' (this stand-in only works inside training/evaluation, where the clean image is known)`);
  const c = oracle.clean;
  if (c.height !== degraded.height || c.width !== degraded.width) {
    throw new Error(`${name}: clean ${c.height}x${c.width} and degraded ${degraded.height}x${degraded.width} differ for '${key}'`);
  }
  return c;
}

export const CLEAN_ORACLE_NOTE =
  "STAND-IN 'clean-oracle': G is another crop/rescale of the CLEAN photo — for testing the plumbing only; it is NOT the paper's guidance and its numbers must never be reported as such";

/**
 * A stand-in for testing the plumbing: G = a different random crop (70–90 % of each side, seeded by
 * the key) of the CLEAN image, rescaled back to the clean image's size. It sees the clean image, so
 * it is an oracle; never report its numbers as the paper's guidance (`standIn` says so in tables).
 */
export function cleanOracleGuidance(): GuidanceSource {
  return {
    name: 'clean-oracle',
    standIn: CLEAN_ORACLE_NOTE,
    async get(degraded, key, oracle) {
      const c = cleanImageOf('clean-oracle', degraded, key, oracle);
      const rng = new Rng(hashString(`clean-oracle:${key}`));
      const h = Math.max(1, Math.round(c.height * rng.uniform(0.7, 0.9)));
      const w = Math.max(1, Math.round(c.width * rng.uniform(0.7, 0.9)));
      const part = crop(c, rng.int(c.height - h + 1), rng.int(c.width - w + 1), h, w);
      return clampImage(await resizeImage(part, c.width, c.height, 'cubic'));
    },
  };
}

/** The thumbnail sides of the `clean-thumb-<k>` stand-ins (GUIDANCE_SOURCES). */
export const CLEAN_THUMB_SIDES = [4, 8, 16, 32] as const;

export function cleanThumbNote(k: number): string {
  return `STAND-IN 'clean-thumb-${k}': G is the CLEAN photo reduced to ${k} pixels on its short side (area averaging) and enlarged back (bilinear) — a diagnostic of how much detail G must show, NOT the paper's guidance; its numbers must never be reported as such`;
}

/**
 * A diagnostic stand-in (issue: what detail must G carry for the restorer to use it?): G = the CLEAN
 * image area-averaged to k pixels on its short side (the long side in proportion), enlarged back to
 * its size bilinearly (an image no larger than k is G as it is). k = 4 keeps only a colour layout — about what G(E'_txt) of the demo text side
 * shows — and larger k more of the scene. An oracle (it sees Y); never the paper's guidance.
 */
export function cleanThumbGuidance(k: number): GuidanceSource {
  if (!Number.isInteger(k) || k < 1) throw new Error(`cleanThumbGuidance: k must be a positive integer, got ${k}`);
  const name = `clean-thumb-${k}`;
  return {
    name,
    standIn: cleanThumbNote(k),
    async get(degraded, key, oracle) {
      const c = cleanImageOf(name, degraded, key, oracle);
      const s = k / Math.min(c.height, c.width);
      if (s >= 1) return clampImage(makeImage(c.height, c.width, c.data.slice())); // already k px or smaller
      const small = areaResize(c, Math.max(1, Math.round(c.height * s)), Math.max(1, Math.round(c.width * s)));
      return clampImage(await resizeImage(small, c.width, c.height, 'linear'));
    },
  };
}

/** Clip every value of `img` to [0,1] in place. */
export function clampImage(img: RGBImage): RGBImage {
  const d = img.data;
  for (let i = 0; i < d.length; i++) d[i] = d[i] < 0 ? 0 : d[i] > 1 ? 1 : d[i];
  return img;
}

export interface GuidanceFactoryEntry {
  /** one line for --help */
  description: string;
  /** true if the source depends on N (words of E_txt), as Table 9 needs */
  dependsOnN: boolean;
  create(opts: { words?: number; checkpoint?: string }): GuidanceSource;
}

/** Named guidance sources, as the job layer builds them (lib/jobs/sources.ts: text, text-raw, clean-oracle, none). */
export type GuidanceSourceMap = ReadonlyMap<string, GuidanceFactoryEntry>;

/** The source `name` of `sources`; an unknown name is a UserError listing the known ones. */
export function pickGuidanceSource(sources: GuidanceSourceMap, name: string, opts: { words?: number; checkpoint?: string } = {}): { source: GuidanceSource; entry: GuidanceFactoryEntry } {
  const entry = sources.get(name);
  if (!entry) throw new UserError(`unknown guidance source '${name}'; sources: ${[...sources.keys()].join(', ')}`);
  return { source: entry.create(opts), entry };
}
