/**
 * Degradation sweeps: one photo, one family, several strengths → degraded images + metrics rows.
 * Used by the main job (`tdr report`) and notebooks/01_degradations.ipynb.
 */
import { RGBImage } from '../data/image';
import { degrade, DegradeOptions, Task, DegradeResult } from '../data/degrade';
import { computeMetrics, Metrics } from '../metrics/metrics';
import { hashString } from '../util/rng';

/** The parameter each family is swept over, and its values (weak → strong). */
export const STRENGTHS: { readonly [T in Task]: { param: string; values: readonly number[]; unit: string } } = {
  noise: { param: 'sigma', values: [5, 15, 25, 50], unit: 'σ (0–255 scale)' },
  rain: { param: 'density', values: [0.002, 0.006, 0.012, 0.02], unit: 'streak seed density' },
  haze: { param: 'beta', values: [0.5, 1.0, 2.0, 3.0], unit: 'β (scattering coefficient)' },
  motion: { param: 'length', values: [5, 11, 19, 27], unit: 'trajectory length (px)' },
  defocus: { param: 'radius', values: [1, 2, 4, 6], unit: 'disk radius (px)' },
};

export interface SweepRow extends Metrics {
  task: Task;
  param: string;
  value: number;
  phrase: string;
}

/** Seed of a (photo, task, strength) triple: stable across runs and machines. */
export function sweepSeed(id: string, task: Task, value: number): number {
  return hashString(`${id}:${task}:${value}`);
}

/**
 * Degrade `img` with `task` at every strength of STRENGTHS (other parameters drawn from the seed)
 * and measure PSNR/SSIM against the clean image.
 */
export function sweep(img: RGBImage, id: string, task: Task, values: readonly number[] = STRENGTHS[task].values): Array<{ row: SweepRow; result: DegradeResult }> {
  const param = STRENGTHS[task].param;
  return values.map((value) => {
    const result = degrade(img, { task, seed: sweepSeed(id, task, value), [param]: value } as DegradeOptions);
    const m = computeMetrics(img, result.image);
    return { row: { task, param, value, phrase: result.phrase, ...m }, result };
  });
}
