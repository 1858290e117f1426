/**
 * Degradation synthesis (the paper's M1 data side): one entry point `degrade`, the all-in-one
 * task sampler `sampleTask`, and every family re-exported.
 *
 * Families (one file each): noise (Gaussian, 'float' or 'uint8' protocol), rain (additive
 * streaks), haze (atmospheric scattering with a depth proxy), motion (random-trajectory PSF),
 * defocus (disk PSF). Each family has `f(img, params, rng)`, `sampleX(rng, ranges?)`,
 * `validateX(params)` and a caption phrase with the key word noisy / rainy / hazy / blurry.
 *
 * Reproducibility: `degrade(img, {task, seed})` makes `new Rng(seed)` and forks two streams from it,
 * the first for the parameters, the second for the image randomness (noise values, rain seeds,
 * trajectory). Every parameter is always drawn (in a fixed order) and then replaced by any
 * override, so overriding one parameter does not change the others, and the same seed gives
 * byte-identical output on every machine.
 */
import { RGBImage } from '../image';
import { Rng } from '../../util/rng';
import { Ranges } from './common';
import { NoiseMode, NoiseParams, addGaussianNoise, noisePhrase, sampleNoise, validateNoise } from './noise';
import { RAIN_KEYS, RainParams, addRain, rainPhrase, sampleRain, validateRain } from './rain';
import { HAZE_KEYS, HazeParams, addHaze, hazePhrase, sampleHaze, validateHaze } from './haze';
import { MOTION_KEYS, MotionParams, motionBlur, motionPhrase, sampleMotion, validateMotion } from './motion';
import { DEFOCUS_KEYS, DefocusParams, defocusBlur, defocusPhrase, sampleDefocus, validateDefocus } from './defocus';

export * from './common';
export * from './noise';
export * from './rain';
export * from './haze';
export * from './motion';
export * from './defocus';

export type Task = 'noise' | 'rain' | 'haze' | 'motion' | 'defocus';
export const TASKS: readonly Task[] = ['noise', 'rain', 'haze', 'motion', 'defocus'];

/** Relative share of each task among a training set's degraded crops (a missing task: 1). */
export type TaskWeights = Partial<Record<Task, number>>;

/** The tasks in turn for degraded training crops: task t appears weights[t] times (default once), in TASKS order. */
export function taskTurn(weights: TaskWeights = {}): Task[] {
  return TASKS.flatMap((t) => Array<Task>(weights[t] ?? 1).fill(t));
}

/** The drawn parameters of each family. */
export interface TaskParams {
  noise: NoiseParams;
  rain: RainParams;
  haze: HazeParams;
  motion: MotionParams;
  defocus: DefocusParams;
}

/** Options of `degrade`: the task, the seed, optional sampling ranges and fixed parameter values. */
export type DegradeOptionsFor<T extends Task> = { task: T; seed: number; ranges?: Ranges<Omit<TaskParams[T], 'mode'>> } & Partial<TaskParams[T]>;
export type DegradeOptions = { [T in Task]: DegradeOptionsFor<T> }[Task];

export interface DegradeResult<T extends Task = Task> {
  /** [H,W,3] float32; in [0,1] except noise mode 'float' */
  image: RGBImage;
  task: T;
  seed: number;
  /** the values actually used (drawn, then overridden) */
  params: TaskParams[T];
  /** short caption phrase, e.g. 'heavily noisy', 'rainy', 'slightly hazy', 'blurry' */
  phrase: string;
}

const PARAM_KEYS: { [T in Task]: readonly string[] } = {
  noise: ['sigma', 'mode'],
  rain: RAIN_KEYS,
  haze: HAZE_KEYS,
  motion: MOTION_KEYS,
  defocus: DEFOCUS_KEYS,
};

/**
 * Degrade an image with one family; parameters drawn from `seed` unless given.
 * Throws (naming the parameter and allowed range) for an unknown task, an unknown parameter or
 * an out-of-range / NaN value.
 *
 * @param img [H,W,3] float32 RGB in [0,1]
 */
export function degrade<T extends Task>(img: RGBImage, opts: DegradeOptionsFor<T>): DegradeResult<T> {
  return degradeAny(img, opts as DegradeOptions) as DegradeResult<T>;
}

function degradeAny(img: RGBImage, opts: DegradeOptions): DegradeResult {
  const { task, seed, ranges, ...overrides } = opts as { task: Task; seed: number; ranges?: Ranges<Record<string, number>> } & Record<string, unknown>;
  if (!TASKS.includes(task)) throw new Error(`degrade: task must be one of ${TASKS.join(', ')}, got ${JSON.stringify(task)}`);
  if (typeof seed !== 'number' || !Number.isFinite(seed)) throw new Error(`degrade: seed must be a finite number, got ${String(seed)}`);
  for (const k of Object.keys(overrides)) {
    if (!PARAM_KEYS[task].includes(k)) throw new Error(`degrade: unknown parameter '${k}' for task ${task} (expected ${PARAM_KEYS[task].join(', ')})`);
  }
  const rng = new Rng(seed);
  const prng = rng.fork();
  const irng = rng.fork();
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  switch (task) {
    case 'noise': {
      const p = validateNoise({ ...sampleNoise(prng, ranges, (defined.mode as NoiseMode | undefined) ?? 'float'), ...defined } as NoiseParams);
      return { image: addGaussianNoise(img, p, irng), task, seed, params: p, phrase: noisePhrase(p) };
    }
    case 'rain': {
      const p = validateRain({ ...sampleRain(prng, ranges), ...defined } as RainParams);
      return { image: addRain(img, p, irng), task, seed, params: p, phrase: rainPhrase(p) };
    }
    case 'haze': {
      const p = validateHaze({ ...sampleHaze(prng, ranges), ...defined } as HazeParams);
      return { image: addHaze(img, p, irng), task, seed, params: p, phrase: hazePhrase(p) };
    }
    case 'motion': {
      const p = validateMotion({ ...sampleMotion(prng, ranges), ...defined } as MotionParams);
      return { image: motionBlur(img, p, irng), task, seed, params: p, phrase: motionPhrase(p) };
    }
    case 'defocus': {
      const p = validateDefocus({ ...sampleDefocus(prng, ranges), ...defined } as DefocusParams);
      return { image: defocusBlur(img, p, irng), task, seed, params: p, phrase: defocusPhrase(p) };
    }
  }
}

/** One entry of an all-in-one task set: a name, a family and its fixed parameters. */
export interface TaskSpec {
  readonly name: string;
  readonly task: Task;
  readonly params: Readonly<Record<string, number | string>>;
}

/**
 * The paper's all-in-one set (official options/train_restoration/001_promptir_all_in_one_restoration.yml,
 * `Dataset_PairedUnifiedWithRef`, uniform among 5): Gaussian noise σ15, σ25, σ50, rain, haze.
 */
export const ALL_IN_ONE_TASKS: readonly TaskSpec[] = [
  { name: 'noise15', task: 'noise', params: { sigma: 15 } },
  { name: 'noise25', task: 'noise', params: { sigma: 25 } },
  { name: 'noise50', task: 'noise', params: { sigma: 50 } },
  { name: 'rain', task: 'rain', params: {} },
  { name: 'haze', task: 'haze', params: {} },
];

/**
 * Draw one task uniformly: index = rng.int(tasks.length), each with probability 1/n.
 *
 * This replaces the official `PairedLQHQDataset` line `random.choice([i in range(len(self.tasks))])`
 * (data/guidance_generation_dataset.py): the list holds ONE boolean (`i`, the dataset index, is in range or not),
 * so the "choice" is deterministic, True → task 1 for the first n indices, False → task 0 for every
 * later index; tasks 2… are never sampled. test/data/degrade_sampler.test.ts checks that our
 * frequencies are uniform and that every task is reachable.
 */
export function sampleTask<T>(rng: Rng, tasks: readonly T[]): T {
  if (!Array.isArray(tasks) || tasks.length === 0) throw new Error('sampleTask: tasks must be a non-empty array');
  return tasks[rng.int(tasks.length)];
}

/** Degrade with a TaskSpec (its fixed params as overrides). */
export function degradeWithSpec(img: RGBImage, spec: TaskSpec, seed: number): DegradeResult {
  return degradeAny(img, { task: spec.task, seed, ...spec.params } as DegradeOptions);
}
