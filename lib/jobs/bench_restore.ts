/**
 * `tdr bench --restore`: how long restoring a user's photo takes and how much memory it needs, at
 * 512², 1024², 3 Mpixel and 12 Mpixel, with the shipped restorers (`restoreCheckpoint`: the dim-24 PromptIR
 * pair of data/configs/restore-demo-wide.json; guided: G generated once from the whole image by the
 * guidance model the restorer records, then tiled restoration; and the unguided baseline). Each size runs in
 * a fresh child process, as `tdr restore` would: its peak RSS is that size's alone, and the wasm heap
 * grows from nothing (on this kind of machine first-touching memory is a real cost).
 *
 * The input: a validation photo resized (Lanczos) to the size, with Gaussian noise σ = 25 (seeded).
 * Reported per run: decoding, guidance generation (model loading included; the guidance cache is an
 * empty temporary folder, so G is really generated), restoration (all tiles of all passes), encoding,
 * the tile plan and the peak RSS.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../backend';
import { withHugePages } from '../backend/hugepages';
import { readImage, resizeImage, writeImage } from '../data/io';
import { loadPhotos } from '../data/patches';
import { degrade } from '../data/degrade';
import { loadRestorer } from '../restore/train';
import { planTiles, restoreTiledAsync, DEFAULT_TILE_BUDGET_MIB } from '../restore/tiled';
import { guidanceKey } from '../restore/source';
import { restorerGuidanceCheckpoint, textGuidance } from './sources';
import { restoreCheckpoint } from './method';
import { UserError } from '../util/errors';
import { textTable } from '../viz/table';

/** The sizes of the benchmark: [label, width, height]. */
export const RESTORE_BENCH_SIZES: Array<[string, number, number]> = [
  ['512²', 512, 512],
  ['1024²', 1024, 1024],
  ['3 Mpx', 2048, 1536],
  ['12 Mpx', 4000, 3000],
];

/**
 * `--sizes` of `tdr bench --restore`: comma-separated 512 | 1024 | 3mp | 12mp (the benchmark's sizes)
 * or WxH (e.g. 640x480; 16 to 8000 px a side).
 * @throws UserError naming the bad entry
 */
export function parseRestoreBenchSizes(spec: string): Array<[string, number, number]> {
  const named: Record<string, [string, number, number]> = { '512': RESTORE_BENCH_SIZES[0], '1024': RESTORE_BENCH_SIZES[1], '3mp': RESTORE_BENCH_SIZES[2], '12mp': RESTORE_BENCH_SIZES[3] };
  return spec.split(',').map((s) => {
    const t = s.trim().toLowerCase();
    if (named[t]) return named[t];
    const m = /^(\d+)x(\d+)$/.exec(t);
    const [w, h] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
    if (!(w >= 16 && h >= 16 && w <= 8000 && h <= 8000)) throw new UserError(`--sizes: '${s}' is not 512, 1024, 3mp, 12mp or WxH with sides of 16 to 8000 px`);
    return [`${w}x${h}`, w, h];
  });
}

export interface RestoreBenchArgs {
  label: string;
  width: number;
  height: number;
  guided: boolean;
  /** restorer checkpoint (default: the shipped PromptIR pair's, guided or plain: `restoreCheckpoint`) */
  checkpoint?: string;
  budgetMiB?: number;
  tile?: number;
}

export interface RestoreBenchRow extends Omit<RestoreBenchArgs, 'tile'> {
  backend: string;
  megapixels: number;
  /** seconds */
  decodeS: number;
  guidanceS: number;
  restoreS: number;
  encodeS: number;
  totalS: number;
  /** CPU seconds (user + system) of the whole child, the machine's load aside */
  cpuS: number;
  tiles: number;
  tile: string;
  passes: number;
  predictedTileMiB: number;
  peakRssMiB: number;
  /** minor page faults of the whole child (first touches of fresh memory; far fewer with huge pages) */
  minorFaults: number;
}

/** One run in this process (the child's body). `input` is the degraded photo, written by the parent. */
export async function benchRestoreOnce(args: RestoreBenchArgs & { input: string }): Promise<RestoreBenchRow> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const info = await initBackend({ quiet: true });
  const ckpt = args.checkpoint ?? restoreCheckpoint('promptir', args.guided);
  const { net, params, meta } = loadRestorer(ckpt, { guidance: args.guided });
  try {
    const ta = performance.now();
    const x = await readImage(args.input);
    const tb = performance.now();
    let g;
    if (args.guided) g = await textGuidance({ checkpoint: restorerGuidanceCheckpoint(meta) }).get(x, guidanceKey('bench', args.label, 'noise25'));
    const tc = performance.now();
    const plan = planTiles(net, x.height, x.width, { tile: args.tile, budgetMiB: args.budgetMiB, guidance: g ? [g.height, g.width] : undefined });
    const y = await restoreTiledAsync(net, x, g, { tile: args.tile, budgetMiB: args.budgetMiB });
    const td = performance.now();
    const out = path.join(path.dirname(args.input), 'restored.png');
    await writeImage(out, y);
    const te = performance.now();
    const cpu = process.cpuUsage(cpu0);
    const { input: _input, tile: _tile, ...shown } = args;
    return {
      ...shown,
      backend: info.detail,
      megapixels: (x.width * x.height) / 1e6,
      decodeS: (tb - ta) / 1000,
      guidanceS: (tc - tb) / 1000,
      restoreS: (td - tc) / 1000,
      encodeS: (te - td) / 1000,
      totalS: (te - t0) / 1000,
      cpuS: (cpu.user + cpu.system) / 1e6,
      tiles: plan.count,
      tile: `${plan.tileHeight}x${plan.tileWidth}`,
      passes: plan.count > 1 ? 2 : 1,
      predictedTileMiB: plan.predictedBytes / 2 ** 20,
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      minorFaults: process.resourceUsage().minorPageFault,
    };
  } finally {
    params.dispose();
  }
}

/** The degraded test photo of a size (a validation photo resized, noise σ 25, seed 0). */
async function makeInput(file: string, width: number, height: number): Promise<void> {
  const [photo] = await loadPhotos('val', 512, 1);
  const clean = await resizeImage(photo.image, width, height, 'lanczos3');
  await writeImage(file, degrade(clean, { task: 'noise', seed: 0, sigma: 25, mode: 'uint8' }).image);
}

/**
 * Every size × guided/unguided, each in a child process. `onRow` after each.
 * @throws UserError when the shipped checkpoints are missing
 */
export async function runRestoreBench(opts: { sizes?: Array<[string, number, number]>; guided?: boolean[]; budgetMiB?: number; tile?: number; onRow?: (r: RestoreBenchRow) => void } = {}): Promise<RestoreBenchRow[]> {
  const guided = opts.guided ?? [true, false];
  for (const gd of guided) {
    const f = restoreCheckpoint('promptir', gd);
    if (!fs.existsSync(f)) throw new UserError(`${f}: missing (the restore benchmark uses the shipped PromptIR checkpoints)`);
  }
  const rows: RestoreBenchRow[] = [];
  for (const [label, width, height] of opts.sizes ?? RESTORE_BENCH_SIZES) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdr-bench-restore-'));
    try {
      const input = path.join(dir, 'degraded.png');
      await makeInput(input, width, height);
      for (const gd of guided) {
        const args: RestoreBenchArgs & { input: string } = { label, width, height, guided: gd, budgetMiB: opts.budgetMiB, tile: opts.tile, input };
        const r = spawnSync(process.execPath, [__filename, JSON.stringify(args)], {
          encoding: 'utf8',
          env: { ...withHugePages(process.env), TDR_QUIET: '1', TDR_GUIDANCE_CACHE: path.join(dir, `cache-${gd}`) },
          maxBuffer: 1 << 24,
        });
        const line = r.stdout.trim().split('\n').pop() ?? '';
        if (r.status !== 0 || !line.startsWith('{')) throw new Error(`restore benchmark at ${label}${gd ? ' (guided)' : ''} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
        const row = JSON.parse(line) as RestoreBenchRow;
        rows.push(row);
        opts.onRow?.(row);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}

/** The table `tdr bench --restore` prints. */
export function formatRestoreBench(rows: RestoreBenchRow[]): string {
  const head = ['size', 'model', 'tiles', 'guidance s', 'restore s', 'total s', 'CPU s', 'peak RSS MiB', 'page faults'];
  const body = rows.map((r) => [
    `${r.label} (${r.width}x${r.height})`,
    r.guided ? 'PromptIR + guidance' : 'PromptIR',
    r.tiles > 1 ? `${r.tiles} × ${r.tile}, ${r.passes} passes` : `1 (${r.tile})`,
    r.guided ? r.guidanceS.toFixed(1) : '–',
    r.restoreS.toFixed(1),
    r.totalS.toFixed(1),
    r.cpuS.toFixed(1),
    r.peakRssMiB.toFixed(0),
    String(r.minorFaults),
  ]);
  const backend = rows[0]?.backend ?? '';
  return [
    `backend: ${backend}; tile budget ${rows[0]?.budgetMiB ?? DEFAULT_TILE_BUDGET_MIB} MiB; each run in a fresh process (decode, guidance, restoration, PNG encode); targets: 512² guided ≤ 5 s, 12 Mpx ≤ 2048 MiB peak RSS`,
    textTable(head, body),
  ].join('\n');
}

if (require.main === module) {
  benchRestoreOnce(JSON.parse(process.argv[2]) as RestoreBenchArgs & { input: string }).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (e) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
