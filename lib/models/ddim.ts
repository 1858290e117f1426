/**
 * DDIM scheduler: the noise schedule of latent diffusion and the deterministic (η = 0) / stochastic
 * (η > 0) reverse step of DDIM.
 *
 * Paper: Song, Meng & Ermon, "Denoising Diffusion Implicit Models", ICLR 2021 (arXiv:2010.02502),
 *   Eq. (12) (the generalised reverse step) and Eq. (16) (σ_t(η)).
 * Reference: huggingface/diffusers `src/diffusers/schedulers/scheduling_ddim.py` (58eb52c), whose
 *   `step`, `set_timesteps`, `add_noise` and `_get_variance` this file follows line by line.
 *   Stable Diffusion's scheduler config is the default here: `beta_schedule="scaled_linear"`,
 *   β 0.00085 → 0.012 over 1000 steps, `set_alpha_to_one=False`, `steps_offset=1`,
 *   `timestep_spacing="leading"`, `clip_sample=False`, `prediction_type="epsilon"`.
 * Deviations: ε-prediction only; no sample clipping / thresholding (SD disables them); the schedule
 *   is computed in float64 JS numbers (diffusers uses float32 torch tensors: ᾱ agrees to ~1e-7).
 *
 * As in diffusers, the scheduler owns no model and no tensors: only its config and the timestep
 * grid. The sampling loop (with classifier-free guidance) is written out in `diffusion.ts`.
 *
 * Notation (paper → code):
 *   T (training steps)     → numTrainSteps          ᾱ_t = Π_{s≤t} (1 − β_s) → alphasCumprod[t]
 *   x_t                    → x (the sample at t)    ε_θ(x_t, t)              → eps
 *   x_{t−1} (prev. step)   → prevSample             f_θ(x_t) = x̂_0          → predX0
 *   σ_t(η)                 → stdDevT                η                        → eta
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

export const BetaScheduleSchema = z.enum(['scaled_linear', 'linear', 'cosine']);
export type BetaSchedule = z.infer<typeof BetaScheduleSchema>;

export const DDIMConfigSchema = z.strictObject({
  numTrainSteps: z.number().int().positive().default(1000).describe('T: diffusion steps the model was trained with (diffusers num_train_timesteps)'),
  betaStart: z.number().positive().lt(1).default(0.00085).describe('β_0 (linear / scaled_linear); SD: 0.00085'),
  betaEnd: z.number().positive().lt(1).default(0.012).describe('β_{T−1} (linear / scaled_linear); SD: 0.012'),
  betaSchedule: BetaScheduleSchema.default('scaled_linear').describe(
    "'scaled_linear' = linspace(√β_start, √β_end, T)² (Stable Diffusion); 'linear' = linspace(β_start, β_end, T) (DDPM, Ho et al. 2020); " +
      "'cosine' = Nichol & Dhariwal 2021 Eq. (17), β capped at 0.999 (diffusers 'squaredcos_cap_v2'; ignores betaStart/betaEnd)",
  ),
  setAlphaToOne: z
    .boolean()
    .default(false)
    .describe('ᾱ used after the last step (t_prev < 0): 1 when true, else ᾱ_0 (SD: false, so the final sample keeps a √(1−ᾱ_0)·ε ≈ 0.03·ε residue)'),
  stepsOffset: z.number().int().nonnegative().default(1).describe("added to every inference timestep (SD: 1, so 'leading' 50 steps end at t = 1, not 0)"),
  timestepSpacing: z
    .enum(['leading', 'trailing'])
    .default('leading')
    .describe("'leading': t = k·⌊T/n⌋ + offset (SD); 'trailing': t = round(T − k·T/n) − 1 (Table 2 of Lin et al., 'Common Diffusion Noise Schedules and Sample Steps are Flawed')"),
});
export type DDIMConfig = z.infer<typeof DDIMConfigSchema>;

/**
 * β_t for t = 0 … T−1 as JS numbers (float64).
 * @param schedule see `DDIMConfigSchema.betaSchedule`
 */
export function betaSchedule(schedule: BetaSchedule, numTrainSteps: number, betaStart: number, betaEnd: number): Float64Array {
  const T = numTrainSteps;
  const betas = new Float64Array(T);
  const lin = (a: number, b: number, i: number) => (T === 1 ? a : a + ((b - a) * i) / (T - 1));
  if (schedule === 'linear') {
    for (let i = 0; i < T; i++) betas[i] = lin(betaStart, betaEnd, i);
  } else if (schedule === 'scaled_linear') {
    for (let i = 0; i < T; i++) betas[i] = lin(Math.sqrt(betaStart), Math.sqrt(betaEnd), i) ** 2;
  } else {
    // ᾱ(s) = cos²((s + 0.008)/1.008 · π/2), β_i = min(1 − ᾱ((i+1)/T) / ᾱ(i/T), 0.999)
    const alphaBar = (s: number) => Math.cos(((s + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
    for (let i = 0; i < T; i++) betas[i] = Math.min(1 - alphaBar((i + 1) / T) / alphaBar(i / T), 0.999);
  }
  return betas;
}

/** ᾱ_t = Π_{s=0..t} (1 − β_s), t = 0 … T−1 (float64). */
export function alphasCumprod(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let p = 1;
  for (let i = 0; i < betas.length; i++) {
    p *= 1 - betas[i];
    out[i] = p;
  }
  return out;
}

export interface DDIMStepOptions {
  /** η of DDIM Eq. (16): 0 = deterministic DDIM, 1 = DDPM-like ancestral sampling */
  eta?: number;
  /** z ~ N(0, I) with x's shape; required when eta > 0 (the scheduler has no RNG of its own) */
  noise?: tf.Tensor;
}

/** (a type alias, not an interface, so that it is a `tf.TensorContainer` and can leave a `tf.tidy`) */
export type DDIMStepOutput<T extends tf.Tensor> = {
  /** x_{t_prev}, same shape as x */
  prevSample: T;
  /** x̂_0 = f_θ(x_t), same shape as x */
  predX0: T;
};

/**
 * DDIM scheduler (config + timestep grid only).
 *
 * Usage (inference): `s.setTimesteps(50)`, then for `t of s.timesteps`: `x = s.step(eps, t, x).prevSample`.
 * Usage (training): `s.addNoise(x0, eps, t)` gives x_t ~ q(x_t | x_0).
 */
export class DDIMScheduler {
  readonly config: DDIMConfig;
  /** β_t, t = 0 … T−1 */
  readonly betas: Float64Array;
  /** ᾱ_t, t = 0 … T−1 */
  readonly alphasCumprod: Float64Array;
  /** ᾱ used when the previous timestep is < 0 (see `setAlphaToOne`) */
  readonly finalAlphaCumprod: number;
  /** inference timesteps, descending; empty until `setTimesteps` */
  timesteps: number[] = [];
  /** n of the last `setTimesteps(n)`, or undefined */
  numInferenceSteps?: number;

  constructor(cfg: z.input<typeof DDIMConfigSchema> = {}) {
    this.config = DDIMConfigSchema.parse(cfg);
    const c = this.config;
    this.betas = betaSchedule(c.betaSchedule, c.numTrainSteps, c.betaStart, c.betaEnd);
    this.alphasCumprod = alphasCumprod(this.betas);
    this.finalAlphaCumprod = c.setAlphaToOne ? 1 : this.alphasCumprod[0];
  }

  /**
   * Choose the n inference timesteps (descending).
   * 'leading' (SD, with stepsOffset = 1): ratio = ⌊T/n⌋, t_k = k·ratio + stepsOffset, k = n−1 … 0;
   *   e.g. T = 1000, n = 10 → [901, 801, …, 1]; n = 50 → [981, 961, …, 1].
   * 'trailing': t_k = round(T − k·T/n) − 1, k = 0 … n−1; e.g. n = 10 → [999, 899, …, 99].
   * @throws when n is not a positive integer or n > numTrainSteps (the message names both)
   */
  setTimesteps(n: number): void {
    const T = this.config.numTrainSteps;
    if (!Number.isInteger(n) || n < 1) throw new Error(`DDIMScheduler.setTimesteps: numSteps must be a positive integer, got ${n}`);
    if (n > T) {
      throw new Error(`DDIMScheduler.setTimesteps: numSteps (${n}) cannot be larger than numTrainSteps (${T}): the model was trained with at most ${T} timesteps`);
    }
    const ts: number[] = [];
    if (this.config.timestepSpacing === 'leading') {
      const ratio = Math.floor(T / n);
      for (let k = n - 1; k >= 0; k--) ts.push(k * ratio + this.config.stepsOffset);
    } else {
      for (let k = 0; k < n; k++) ts.push(Math.round(T - (k * T) / n) - 1);
    }
    const bad = ts.find((t) => t < 0 || t >= T);
    if (bad !== undefined) throw new Error(`DDIMScheduler.setTimesteps: timestep ${bad} (stepsOffset ${this.config.stepsOffset}, numSteps ${n}) is outside [0, ${T})`);
    this.timesteps = ts;
    this.numInferenceSteps = n;
  }

  /**
   * The largest n that `setTimesteps(n)` accepts: numTrainSteps for 'trailing'; for 'leading' the
   * largest n with (n−1)·⌊T/n⌋ + stepsOffset < T (SD's offset 1: 999 of 1000).
   */
  maxInferenceSteps(): number {
    const T = this.config.numTrainSteps;
    if (this.config.timestepSpacing === 'trailing') return T;
    for (let n = T; n >= 1; n--) if ((n - 1) * Math.floor(T / n) + this.config.stepsOffset < T) return n;
    return 0;
  }

  /** ᾱ at t, or the final ᾱ when t < 0. */
  private alphaProd(t: number): number {
    return t >= 0 ? this.alphasCumprod[t] : this.finalAlphaCumprod;
  }

  private checkT(fn: string, t: number): void {
    const T = this.config.numTrainSteps;
    if (!Number.isInteger(t) || t < 0 || t >= T) throw new Error(`DDIMScheduler.${fn}: timestep must be an integer in [0, ${T}), got ${t}`);
  }

  /** The previous timestep of the grid: t − ⌊T/n⌋ (may be < 0 at the last step). */
  prevTimestep(t: number): number {
    if (this.numInferenceSteps == null) throw new Error('DDIMScheduler.prevTimestep: call setTimesteps(numSteps) first');
    return t - Math.floor(this.config.numTrainSteps / this.numInferenceSteps);
  }

  /**
   * σ_t² / η² of DDIM Eq. (16): (1 − ᾱ_prev)/(1 − ᾱ_t) · (1 − ᾱ_t/ᾱ_prev).
   * (diffusers `_get_variance`; its test pins (420, 400) ≈ 0.14771 for the linear 1e-4 → 0.02 schedule.)
   * @param prevT may be < 0 (then ᾱ_prev = finalAlphaCumprod)
   */
  getVariance(t: number, prevT: number): number {
    this.checkT('getVariance', t);
    const aT = this.alphaProd(t);
    const aPrev = this.alphaProd(prevT);
    return ((1 - aPrev) / (1 - aT)) * (1 - aT / aPrev);
  }

  /**
   * One reverse step x_t → x_{t_prev}, t_prev = t − ⌊T/n⌋. See formulas (12) and (16) of the DDIM paper:
   *
   *   x_{t−1} = √ᾱ_{t−1} · ( (x_t − √(1−ᾱ_t) · ε_θ(x_t)) / √ᾱ_t )          "predicted x_0"
   *           + √(1 − ᾱ_{t−1} − σ_t²) · ε_θ(x_t)                          "direction pointing to x_t"
   *           + σ_t · z,   z ~ N(0, I)                                      "random noise"
   *   σ_t(η) = η · √( (1−ᾱ_{t−1})/(1−ᾱ_t) ) · √( 1 − ᾱ_t/ᾱ_{t−1} )            (16)
   *
   * (The paper writes α_t for what is ᾱ_t here.)
   * @param eps ε_θ(x_t, t), same shape as x (e.g. [B,h,w,4] latents)
   * @param t current timestep (integer in [0, T))
   * @param x x_t
   * @param opts.eta η ≥ 0 (default 0); opts.noise z, required when η > 0
   * @returns {prevSample, predX0}, new tensors of x's shape (the caller disposes them)
   * @throws when setTimesteps was not called, shapes disagree, or η > 0 without noise
   */
  step<T extends tf.Tensor>(eps: T, t: number, x: T, opts: DDIMStepOptions = {}): DDIMStepOutput<T> {
    if (this.numInferenceSteps == null) {
      throw new Error('DDIMScheduler.step: number of inference steps is not set; call setTimesteps(numSteps) first');
    }
    this.checkT('step', t);
    const eta = opts.eta ?? 0;
    if (!(eta >= 0 && Number.isFinite(eta))) throw new Error(`DDIMScheduler.step: eta must be a finite number ≥ 0, got ${eta}`);
    if (!sameShape(eps.shape, x.shape)) throw new Error(`DDIMScheduler.step: eps [${eps.shape}] and x [${x.shape}] must have equal shapes`);
    if (eta > 0 && opts.noise == null) {
      throw new Error(`DDIMScheduler.step: eta = ${eta} > 0 needs opts.noise (N(0,I) of shape [${x.shape}]); the scheduler has no random generator`);
    }
    if (opts.noise && !sameShape(opts.noise.shape, x.shape)) {
      throw new Error(`DDIMScheduler.step: noise [${opts.noise.shape}] and x [${x.shape}] must have equal shapes`);
    }
    // 1. get previous step value (= t − T/n)
    const prevT = this.prevTimestep(t);
    // 2. compute alphas, betas
    const alphaProdT = this.alphaProd(t);
    const alphaProdPrev = this.alphaProd(prevT);
    const betaProdT = 1 - alphaProdT;
    // 3. compute predicted original sample from predicted noise, "predicted x_0" of formula (12)
    // 4. (no clipping: SD's clip_sample = False)
    // 5. compute variance σ_t(η)², formula (16)
    const variance = this.getVariance(t, prevT);
    const stdDevT = eta * Math.sqrt(variance);
    // 6. compute "direction pointing to x_t" of formula (12)
    const dirCoef = Math.sqrt(Math.max(0, 1 - alphaProdPrev - stdDevT * stdDevT));
    return tf.tidy(() => {
      const predX0 = tf.div(tf.sub(x, tf.mul(eps, Math.sqrt(betaProdT))), Math.sqrt(alphaProdT)) as T;
      // 7. compute x_{t−1} of formula (12) without, then with, the random noise
      let prevSample = tf.add(tf.mul(predX0, Math.sqrt(alphaProdPrev)), tf.mul(eps, dirCoef)) as T;
      if (eta > 0) prevSample = tf.add(prevSample, tf.mul(opts.noise!, stdDevT)) as T;
      return { prevSample, predX0 };
    });
  }

  /**
   * Forward process q(x_t | x_0) (DDPM Eq. (4)): x_t = √ᾱ_t · x_0 + √(1−ᾱ_t) · ε. Needs no setTimesteps.
   * @param x0 [B, …] clean sample (e.g. latents [B,h,w,4])
   * @param eps [B, …] noise ε ~ N(0, I), same shape
   * @param t one timestep for the whole batch, or one per batch element (length B), integers in [0, T)
   * @returns x_t, a new tensor of x0's shape
   */
  addNoise<T extends tf.Tensor>(x0: T, eps: T, t: number | readonly number[]): T {
    if (!sameShape(x0.shape, eps.shape)) throw new Error(`DDIMScheduler.addNoise: x0 [${x0.shape}] and eps [${eps.shape}] must have equal shapes`);
    if (x0.rank < 1) throw new Error('DDIMScheduler.addNoise: x0 must have a batch axis');
    const ts = typeof t === 'number' ? new Array<number>(x0.shape[0]).fill(t) : [...t];
    if (ts.length !== x0.shape[0]) throw new Error(`DDIMScheduler.addNoise: t has ${ts.length} timesteps, x0 [${x0.shape}] has batch ${x0.shape[0]}`);
    for (const ti of ts) this.checkT('addNoise', ti);
    const bShape = [ts.length, ...new Array<number>(x0.rank - 1).fill(1)];
    const sqrtA = ts.map((ti) => Math.sqrt(this.alphasCumprod[ti]));
    const sqrt1mA = ts.map((ti) => Math.sqrt(1 - this.alphasCumprod[ti]));
    return tf.tidy(() => tf.add(tf.mul(x0, tf.tensor(sqrtA, bShape, 'float32')), tf.mul(eps, tf.tensor(sqrt1mA, bShape, 'float32'))) as T);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
