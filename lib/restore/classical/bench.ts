/**
 * Time per image of the classical references (`tdr bench --classical`): dark channel prior + guided
 * filter and non-local means (RGB, template 7, search 21) on square images of a few sizes. Pure
 * TypeScript on one thread: besides the wall-clock time (which other load on the machine stretches) the
 * process CPU time of each run (`process.cpuUsage`, user + system), which is what the run costs one core.
 */
import { RGBImage, makeImage } from '../../data/image';
import { addGaussianNoise } from '../../data/degrade/noise';
import { addHaze } from '../../data/degrade/haze';
import { Rng } from '../../util/rng';
import { dehazeDcp } from './dcp';
import { nlmDenoise } from './nlm';
import { NLM_RULE, nlmStrength } from './index';
import { median } from '../../metrics/stats';

export interface ClassicalBenchRow {
  method: 'DCP + GF' | 'NLM';
  /** side of the square image, px */
  size: number;
  /** median wall-clock ms per image */
  ms: number;
  /** every timed run, wall-clock ms */
  runs: number[];
  /** median process CPU ms (user + system) per image */
  cpuMs: number;
}

/** A smooth, coloured test scene [size,size,3] with some texture (deterministic). */
export function benchScene(size: number): RGBImage {
  const rng = new Rng(size);
  const d = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      for (let c = 0; c < 3; c++) d[(y * size + x) * 3 + c] = 0.45 + 0.3 * Math.sin((x + 17 * c) / 11) * Math.cos(y / 13) + 0.05 * rng.random();
  return makeImage(size, size, d);
}

/** Median ms of `reps` runs (after one warm-up) of each method at each size. */
export function benchClassical(opts: { sizes?: number[]; reps?: number } = {}): ClassicalBenchRow[] {
  const sizes = opts.sizes ?? [128, 256, 512];
  const reps = opts.reps ?? 3;
  const rows: ClassicalBenchRow[] = [];
  const time = (fn: () => void): { runs: number[]; ms: number; cpuMs: number } => {
    fn();
    const runs: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < reps; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      fn();
      runs.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
    }
    return { runs, ms: median(runs), cpuMs: median(cpu) };
  };
  for (const size of sizes) {
    const clean = benchScene(size);
    const hazy = addHaze(clean, { beta: 1.8, A: 0.85 });
    const noisy = addGaussianNoise(clean, { sigma: 25, mode: 'float' }, new Rng(1));
    rows.push({ method: 'DCP + GF', size, ...time(() => void dehazeDcp(hazy)) });
    rows.push({ method: 'NLM', size, ...time(() => void nlmDenoise(noisy, { h: nlmStrength(25), space: NLM_RULE.space, template: NLM_RULE.template, search: NLM_RULE.search })) });
  }
  return rows;
}
