/**
 * How the non-local means strength h was chosen: a sweep of h = k·σ on the TRAINING photos (never the
 * validation photos the tables use), with the evaluation's protocol otherwise — centred crops of the
 * photos resized to the demo preset's eval short side, Gaussian noise in 'float' mode with a fixed
 * seed per (photo, σ) (a different seed stream from the evaluation's), output clipped and quantised,
 * BasicSR PSNR on RGB. Run:
 *
 *   node dist/lib/restore/classical/tune.js [limit]
 *
 * It prints mean PSNR per (colour space, k) and σ, and the best k per σ and space. The constants in
 * ./index.ts (`NLM_RULE`) were set from its output (quoted there).
 */
import { RGBImage } from '../../data/image';
import { centerCrop, loadPhotos } from '../../data/patches';
import { degradeWithSpec, TaskSpec } from '../../data/degrade';
import { psnr } from '../../metrics/metrics';
import { hashString } from '../../util/rng';
import { markdownTable, Row } from '../../viz/table';
import { restorePreset } from '../config';
import { NlmColorSpace, nlmDenoise } from './nlm';

export interface NlmTuneRow {
  space: NlmColorSpace;
  k: number;
  sigma: number;
  /** mean PSNR (dB, RGB) over the photos */
  psnr: number;
  photos: number;
}

export const TUNE_KS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2] as const;
export const TUNE_SIGMAS = [15, 25, 50] as const;

/** Centred eval-size crops of the training photos (the demo preset's eval sizes). */
export async function trainingCrops(limit?: number): Promise<Array<{ id: string; clean: RGBImage }>> {
  const ev = restorePreset('demo', { backbone: 'promptir', guidance: false, tasks: 'all-in-one' }).eval;
  const photos = await loadPhotos('train', ev.shortSide, limit);
  return photos.map((p) => ({ id: p.entry.id, clean: centerCrop(p.image, ev.size) }));
}

/** Mean PSNR of NLM with h = k·σ (hColor = h in 'lab') for every (space, k, σ) on the training crops. */
export async function tuneNlm(opts: { limit?: number; ks?: readonly number[]; sigmas?: readonly number[]; spaces?: NlmColorSpace[]; onProgress?: (d: number, t: number) => void } = {}): Promise<NlmTuneRow[]> {
  const crops = await trainingCrops(opts.limit);
  const ks = opts.ks ?? TUNE_KS;
  const sigmas = opts.sigmas ?? TUNE_SIGMAS;
  const spaces = opts.spaces ?? (['rgb', 'lab'] as NlmColorSpace[]);
  const sums = new Map<string, number>();
  const total = crops.length * sigmas.length * spaces.length * ks.length;
  let done = 0;
  for (const c of crops) {
    for (const sigma of sigmas) {
      const spec: TaskSpec = { name: `noise${sigma}`, task: 'noise', params: { sigma } };
      const x = degradeWithSpec(c.clean, spec, hashString(`tune-nlm:${c.id}:${spec.name}`)).image;
      for (const space of spaces) {
        for (const k of ks) {
          const y = nlmDenoise(x, { h: k * sigma, space });
          const key = `${space}:${k}:${sigma}`;
          sums.set(key, (sums.get(key) ?? 0) + psnr(c.clean, y, { quantize: true }));
          opts.onProgress?.(++done, total);
        }
      }
    }
  }
  const rows: NlmTuneRow[] = [];
  for (const space of spaces) for (const k of ks) for (const sigma of sigmas) rows.push({ space, k, sigma, psnr: sums.get(`${space}:${k}:${sigma}`)! / crops.length, photos: crops.length });
  return rows;
}

if (require.main === module) {
  (async () => {
    const limit = process.argv[2] ? Number(process.argv[2]) : undefined;
    const t0 = Date.now();
    const rows = await tuneNlm({ limit, onProgress: (d, t) => d % 20 === 0 && process.stderr.write(`\r${d}/${t}`) });
    process.stderr.write('\n');
    const table: Row[] = [];
    for (const space of ['rgb', 'lab'] as const) {
      for (const k of TUNE_KS) {
        const r: Row = { space, k };
        for (const s of TUNE_SIGMAS) r[`σ${s}`] = rows.find((x) => x.space === space && x.k === k && x.sigma === s)!.psnr;
        table.push(r);
      }
    }
    console.log(markdownTable(table, { digits: { k: 1 }, caption: `NLM (template 7, search 21) mean PSNR (dB) on ${rows[0].photos} training photos, h = k·σ` }));
    for (const space of ['rgb', 'lab'] as const) {
      for (const s of TUNE_SIGMAS) {
        const best = rows.filter((x) => x.space === space && x.sigma === s).sort((a, b) => b.psnr - a.psnr)[0];
        console.log(`best ${space} σ${s}: k = ${best.k} (${best.psnr.toFixed(3)} dB)`);
      }
    }
    console.log(`${((Date.now() - t0) / 1000).toFixed(0)} s`);
  })();
}
