/**
 * The committed photo corpus: data/corpus (train + val) and data/smoke (10 small CC0 images that
 * need no apt). Each folder has a manifest.json listing every image with its source package,
 * original path, licence, sha256 of the original and of the committed file, size and a short
 * human-written content caption (the text prompt is "a photo of <caption>").
 *
 * - `loadManifest` validates a manifest with zod (strict: unknown fields are errors) and names the
 *   manifest file and the field at fault,
 * - `loadCorpusImage` checks the committed file's sha256 before decoding it,
 * - `verifyCorpus` checks every file of both manifests.
 *
 * The images and manifests are written by lib/data/build_corpus.ts (`npm run corpus:build`,
 * `npm run corpus:build -- --smoke`).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { readImage } from './io';
import { RGBImage } from './image';
import { projectRoot } from '../util/fsx';
import { UserError } from '../util/errors';

export class CorpusError extends UserError {
  override name = 'CorpusError';
}

export const SPLITS = ['train', 'val', 'smoke'] as const;
export type Split = (typeof SPLITS)[number];
/** The splits of real photographs: validation photos (unseen by every stage) and training photos. */
export const PHOTO_SPLITS = ['val', 'train'] as const satisfies readonly Split[];
export type PhotoSplit = (typeof PHOTO_SPLITS)[number];
export type ManifestKind = 'corpus' | 'smoke';

export const MANIFEST_VERSION = 1;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits (sha256)');
const positiveInt = z.number().int().positive();

export const CorpusEntrySchema = z.strictObject({
  /** unique id, also the file's base name: lowercase letters, digits and dashes */
  id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'expected lowercase letters, digits and dashes'),
  split: z.enum(SPLITS),
  /** path relative to the manifest's folder (data/corpus or data/smoke), forward slashes */
  file: z
    .string()
    .regex(/^[a-z]+\/[a-z0-9-]+\.jpg$|^[a-z0-9-]+\.jpg$/, 'expected a relative path like "train/<id>.jpg"'),
  /** Debian package (or npm package@version) the original came from */
  sourcePackage: z.string().min(1),
  /** the original's path (absolute on a Debian system, or inside the npm tarball) */
  originalPath: z.string().min(1),
  /** SPDX-style licence of the original, as stated by the package's copyright/licence file */
  licence: z.string().min(1),
  /** copyright holder / attribution, as stated by the package */
  copyright: z.string().min(1),
  originalSha256: sha256Hex,
  /** sha256 of the committed (downscaled) file */
  sha256: sha256Hex,
  width: positiveInt,
  height: positiveInt,
  /** lowercase content caption, 3–10 words, no trailing period ("a ladybird on a green leaf") */
  caption: z
    .string()
    .min(1)
    .refine((s) => s === s.toLowerCase(), 'caption must be lowercase')
    .refine((s) => !/[.\s]$/.test(s) && !/^\s/.test(s), 'caption must not start/end with spaces or end with a period')
    .refine((s) => {
      const n = s.split(/\s+/).length;
      return n >= 3 && n <= 10;
    }, 'caption must have 3 to 10 words'),
});

export const ManifestSchema = z
  .strictObject({
    version: z.literal(MANIFEST_VERSION),
    description: z.string().min(1),
    /** the command that rebuilds this folder */
    rebuild: z.string().min(1),
    entries: z.array(CorpusEntrySchema).min(1),
  })
  .superRefine((m, ctx) => {
    const seen = new Map<string, number>();
    m.entries.forEach((e, i) => {
      const prev = seen.get(e.id);
      if (prev !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['entries', i, 'id'], message: `duplicate id '${e.id}' (also entries[${prev}])` });
      }
      seen.set(e.id, i);
      const expected = e.split === 'smoke' ? `${e.id}.jpg` : `${e.split}/${e.id}.jpg`;
      if (e.file !== expected) {
        ctx.addIssue({ code: 'custom', path: ['entries', i, 'file'], message: `expected '${expected}' for id '${e.id}' in split '${e.split}'` });
      }
    });
  });

export type CorpusEntry = z.infer<typeof CorpusEntrySchema>;
export type Manifest = z.infer<typeof ManifestSchema>;

/** The folder of a manifest, relative to the project root. */
export function manifestDir(which: ManifestKind): string {
  return which === 'corpus' ? 'data/corpus' : 'data/smoke';
}

/** The manifest file, relative to the project root (forward slashes, for messages). */
export function manifestRelPath(which: ManifestKind): string {
  return `${manifestDir(which)}/manifest.json`;
}

/** The command that rebuilds a manifest's folder. */
export function rebuildCommand(which: ManifestKind): string {
  return which === 'corpus' ? 'npm run corpus:build' : 'npm run corpus:build -- --smoke';
}

function kindOf(entry: CorpusEntry): ManifestKind {
  return entry.split === 'smoke' ? 'smoke' : 'corpus';
}

function formatPath(p: readonly PropertyKey[]): string {
  let s = '';
  for (const k of p) s += typeof k === 'number' ? `[${k}]` : s === '' ? String(k) : `.${String(k)}`;
  return s === '' ? '(root)' : s;
}

/** Validate parsed JSON as a manifest; `label` names the file in errors. */
export function parseManifest(json: unknown, label: string, which?: ManifestKind): Manifest {
  const r = ManifestSchema.safeParse(json);
  if (!r.success) {
    const lines = r.error.issues.slice(0, 10).map((iss) => `  ${formatPath(iss.path)}: ${iss.message}`);
    const more = r.error.issues.length > 10 ? `\n  … and ${r.error.issues.length - 10} more` : '';
    throw new CorpusError(`${label}: invalid manifest\n${lines.join('\n')}${more}`);
  }
  const m = r.data;
  if (which) {
    m.entries.forEach((e, i) => {
      if (kindOf(e) !== which) {
        throw new CorpusError(`${label}: entries[${i}].split: '${e.split}' does not belong in the ${which} manifest`);
      }
    });
  }
  return m;
}

/** Read and validate data/corpus/manifest.json (or data/smoke/manifest.json). */
export function loadManifest(which: ManifestKind = 'corpus', root: string = projectRoot()): Manifest {
  const rel = manifestRelPath(which);
  const file = path.join(root, rel);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CorpusError(`${rel}: ${code === 'ENOENT' ? 'missing' : (e as Error).message} (rebuild with \`${rebuildCommand(which)}\`)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CorpusError(`${rel}: not valid JSON (${(e as Error).message})`);
  }
  return parseManifest(json, rel, which);
}

/**
 * Entries of a split: 'train' or 'val' from the corpus manifest, 'smoke' from the smoke manifest,
 * no split = all corpus entries (train + val).
 */
export function listEntries(split?: Split, root: string = projectRoot()): CorpusEntry[] {
  if (split !== undefined && !(SPLITS as readonly string[]).includes(split)) {
    throw new CorpusError(`listEntries: unknown split '${String(split)}', expected one of ${SPLITS.join(', ')}`);
  }
  const m = loadManifest(split === 'smoke' ? 'smoke' : 'corpus', root);
  return split === undefined ? m.entries : m.entries.filter((e) => e.split === split);
}

/** The committed file of an entry, relative to the project root (forward slashes). */
export function entryRelPath(entry: CorpusEntry): string {
  return `${manifestDir(kindOf(entry))}/${entry.file}`;
}

export function sha256(data: Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** Read an entry's committed file and check its sha256; returns the bytes. */
export function readEntryBytes(entry: CorpusEntry, root: string = projectRoot()): Buffer {
  const rel = entryRelPath(entry);
  const which = kindOf(entry);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(path.join(root, rel));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CorpusError(`${rel}: missing (listed in ${manifestRelPath(which)}; rebuild with \`${rebuildCommand(which)}\`)`);
    }
    throw new CorpusError(`${rel}: ${(e as Error).message}`);
  }
  const actual = sha256(buf);
  if (actual !== entry.sha256) {
    throw new CorpusError(
      `${rel}: sha256 mismatch, expected ${entry.sha256} (from ${manifestRelPath(which)}), got ${actual}; ` +
        `the file was altered or the manifest is stale (rebuild with \`${rebuildCommand(which)}\`)`,
    );
  }
  return buf;
}

/** Decode an entry's image (float RGB [0,1], HWC) after verifying its sha256 and size. */
export async function loadCorpusImage(entry: CorpusEntry, root: string = projectRoot()): Promise<RGBImage> {
  const buf = readEntryBytes(entry, root);
  const rel = entryRelPath(entry);
  const img = await readImage(buf, {}, rel);
  if (img.width !== entry.width || img.height !== entry.height) {
    throw new CorpusError(`${rel}: decoded size ${img.width}x${img.height} differs from the manifest's ${entry.width}x${entry.height}`);
  }
  return img;
}

export interface VerifyResult {
  checked: number;
  problems: string[];
}

/**
 * Check every file of the corpus and smoke manifests (existence + sha256). Throws a CorpusError
 * listing every problem unless `throwOnProblem` is false, in which case the problems are returned.
 */
export function verifyCorpus(
  opts: { which?: ManifestKind | 'all'; root?: string; throwOnProblem?: boolean } = {},
): VerifyResult {
  const root = opts.root ?? projectRoot();
  const kinds: ManifestKind[] = opts.which === undefined || opts.which === 'all' ? ['corpus', 'smoke'] : [opts.which];
  const problems: string[] = [];
  let checked = 0;
  for (const k of kinds) {
    let m: Manifest;
    try {
      m = loadManifest(k, root);
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    for (const e of m.entries) {
      checked++;
      try {
        readEntryBytes(e, root);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
  }
  if (problems.length > 0 && opts.throwOnProblem !== false) {
    throw new CorpusError(`corpus verification failed (${problems.length} problem(s) in ${checked} file(s)):\n  ${problems.join('\n  ')}`);
  }
  return { checked, problems };
}

/** The entry's content caption ("a ladybird on a green leaf"). */
export function captionOf(entry: CorpusEntry): string {
  return entry.caption;
}

/** The entry's text prompt: "a photo of <caption>". */
export function promptOf(entry: CorpusEntry): string {
  return `a photo of ${entry.caption}`;
}
