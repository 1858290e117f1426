/**
 * Latent diffusion around the UNet: the training loss of Eq. (1), classifier-free guidance and the
 * unrolled DDIM sampling loop. The scheduler (ddim.ts) and the model (unet.ts) stay apart; this file
 * joins them, as diffusers' pipelines do (`pipelines/ddim/pipeline_ddim.py`: a plain loop over
 * `scheduler.timesteps`, UNet, then `step(...).prev_sample`).
 *
 * Paper: "Improving Image Restoration through Removing Degradations in Textual Representations"
 * (CVPR 2024), Sec. 3.1, Eq. (1):
 *   L_LDM = E_{z∼E(X), p, ε∼N(0,1), t} [ ‖ε − ε_θ(z_t, t, τ_θ^t(p))‖²₂ ]
 * Classifier-free guidance: Ho & Salimans 2021, ε̃ = ε_θ(z_t, ∅) + s·(ε_θ(z_t, c) − ε_θ(z_t, ∅)).
 *
 * Notation (paper → code):
 *   z (= E(X), latents [B,h,w,C])  → z0        τ_θ^t(p) (text context [B,T,D])  → ctx
 *   ε ∼ N(0, I)                    → eps       ε_θ(z_t, t, c)                   → unet.call(zt, t, ctx)
 *   t ∼ U{0, …, T−1}               → t         s (guidance scale)               → cfgScale / scale
 *   ∅ (empty prompt's context)     → uncondCtx
 */
import * as tf from '@tensorflow/tfjs';
import { UNet } from './unet';
import { DDIMScheduler } from './ddim';
import { Linear, TensorMemo } from './nn';
import { Rng } from '../util/rng';

type KVOverride = Map<string, { k: Linear; v: Linear }>;

export interface DiffusionLossOptions {
  /** T: t is drawn uniformly from {0, …, T−1}; default: the scheduler's (1000) */
  numTrainSteps?: number;
  /** supplies ᾱ_t for z_t (default: a new `DDIMScheduler` with SD's schedule and numTrainSteps) */
  scheduler?: DDIMScheduler;
  /** ELITE-style k/v copies for the UNet's cross-attentions (M_i2t stage) */
  kvOverride?: KVOverride;
}

/**
 * Eq. (1): mean over all elements of (ε − ε_θ(z_t, t, c))², one t and one ε per sample.
 * (As diffusers' `F.mse_loss`: the mean, i.e. the paper's ‖·‖²₂ divided by h·w·C.)
 *
 * Randomness comes only from `rng`, in this order: B timesteps `rng.int(T)`, then B·h·w·C normals
 * for ε (row-major over z0's shape). So the same rng seed gives the same loss on every backend.
 * Synchronous: use it inside `tf.variableGrads` (the training loop's `Stage.loss`).
 * @param z0 [B,h,w,C] clean latents z = E(X) (already scaled to ≈ unit variance)
 * @param ctx [B,T,D] text context c = τ_θ^t(p)
 * @returns scalar loss
 */
export function diffusionLoss(unet: UNet, z0: tf.Tensor4D, ctx: tf.Tensor3D, rng: Rng, opts: DiffusionLossOptions = {}): tf.Scalar {
  const scheduler = opts.scheduler ?? new DDIMScheduler({ numTrainSteps: opts.numTrainSteps ?? 1000 });
  const T = opts.numTrainSteps ?? scheduler.config.numTrainSteps;
  if (T !== scheduler.config.numTrainSteps) {
    throw new Error(`diffusionLoss: numTrainSteps (${T}) differs from the scheduler's numTrainSteps (${scheduler.config.numTrainSteps})`);
  }
  if (z0.rank !== 4) throw new Error(`diffusionLoss: z0 must be [B,h,w,C], got [${z0.shape}]`);
  return diffusionLossWith(unet, z0, ctx, drawDiffusionNoise(rng, z0.shape, T), { ...opts, scheduler });
}

/** The random part of Eq. (1) for a batch of shape [B,h,w,C]: B timesteps t ∼ U{0…T−1}, then ε ∼ N(0, I) (row-major). */
export function drawDiffusionNoise(rng: Rng, shape: readonly number[], numTrainSteps: number, offsetNoise = 0): { t: number[]; eps: Float32Array } {
  const t = Array.from({ length: shape[0] }, () => rng.int(numTrainSteps)); // t ∼ U{0, …, T−1}
  const eps = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < eps.length; i++) eps[i] = rng.normal(); // ε ∼ N(0, I)
  if (offsetNoise > 0) {
    // "offset noise" (Guttenberg 2023): ε += s·δ, δ ∼ N(0, 1) per sample and channel, the same at every
    // position. A schedule whose ᾱ_T > 0 leaks each latent's mean into z_T, so a model trained on plain ε
    // keeps the mean of pure-noise samples near the data average (washed-out images, weak global tone
    // such as haze or darkness); the offset lets it move an image's mean colour.
    const c = shape[shape.length - 1];
    const per = eps.length / shape[0];
    for (let b = 0; b < shape[0]; b++) {
      const d = Array.from({ length: c }, () => offsetNoise * rng.normal());
      for (let i = 0; i < per; i++) eps[b * per + i] += d[i % c];
    }
  }
  return { t, eps };
}

/**
 * Eq. (1) with the timesteps and noise given (drawn beforehand, e.g. in the training loop's
 * getBatch, so that a batch can be split across workers and still see the same t and ε).
 */
export function diffusionLossWith(unet: UNet, z0: tf.Tensor4D, ctx: tf.Tensor3D, noise: { t: readonly number[]; eps: Float32Array }, opts: DiffusionLossOptions = {}): tf.Scalar {
  const scheduler = opts.scheduler ?? new DDIMScheduler({ numTrainSteps: opts.numTrainSteps ?? 1000 });
  if (noise.t.length !== z0.shape[0] || noise.eps.length !== z0.size) {
    throw new Error(`diffusionLossWith: noise for ${noise.t.length} samples / ${noise.eps.length} values does not match z0 [${z0.shape}]`);
  }
  return tf.tidy(() => {
    const eps = tf.tensor(noise.eps, z0.shape) as tf.Tensor4D;
    const zt = scheduler.addNoise(z0, eps, [...noise.t]); // z_t = √ᾱ_t·z0 + √(1−ᾱ_t)·ε
    const epsHat = unet.call(zt, tf.tensor1d([...noise.t], 'int32'), ctx, { kvOverride: opts.kvOverride }); // ε_θ(z_t, t, c)
    return tf.mean(tf.squaredDifference(eps, epsHat)) as tf.Scalar;
  });
}

/**
 * Classifier-free guidance: ε̃ = ε_u + s·(ε_c − ε_u), with ε_u = ε_θ(x, t, ∅) and ε_c = ε_θ(x, t, c)
 * computed in ONE UNet call on a batch of 2B (unconditional first, as diffusers).
 * @param x [B,h,w,C] z_t
 * @param t a timestep for the whole batch, or [B]
 * @param ctx [B,T,D] conditional context
 * @param uncondCtx [B,T,D] or [1,T,D] (broadcast) unconditional context (the empty prompt's)
 * @param scale s (1 = conditional prediction only; SD uses 7.5, the paper 5)
 * @returns ε̃ [B,h,w,C]
 */
export function cfgEps(
  unet: UNet,
  x: tf.Tensor4D,
  t: number | tf.Tensor1D,
  ctx: tf.Tensor3D,
  uncondCtx: tf.Tensor3D,
  scale: number,
  opts: { kvOverride?: KVOverride; memo?: TensorMemo } = {},
): tf.Tensor4D {
  const b = x.shape[0];
  if (!Number.isFinite(scale)) throw new Error(`cfgEps: scale must be finite, got ${scale}`);
  if (ctx.rank !== 3 || ctx.shape[0] !== b) throw new Error(`cfgEps: ctx must be [${b},T,D] (batch of x [${x.shape}]), got [${ctx.shape}]`);
  if (uncondCtx.rank !== 3 || (uncondCtx.shape[0] !== b && uncondCtx.shape[0] !== 1) || uncondCtx.shape[1] !== ctx.shape[1] || uncondCtx.shape[2] !== ctx.shape[2]) {
    throw new Error(`cfgEps: uncondCtx must be [${b} or 1,${ctx.shape[1]},${ctx.shape[2]}] like ctx [${ctx.shape}], got [${uncondCtx.shape}]`);
  }
  if (typeof t !== 'number' && (t.rank !== 1 || t.shape[0] !== b)) throw new Error(`cfgEps: t must be a number or [${b}], got [${t.shape}]`);
  return tf.tidy(() => {
    const tB = (typeof t === 'number' ? tf.fill([b], t, 'int32') : t) as tf.Tensor1D;
    // the [uncond; cond] context pair, once per sampling run with a memo (its id then keys the UNet's memo)
    const pair = () => tf.concat([uncondCtx.shape[0] === b ? uncondCtx : tf.tile(uncondCtx, [b, 1, 1]), ctx]) as tf.Tensor3D;
    const ctx2 = opts.memo ? opts.memo.get(`cfg:${uncondCtx.id}:${ctx.id}`, pair) : pair();
    const eps2 = unet.call(tf.concat([x, x]), tf.concat([tB, tB]), ctx2, opts); // [2B,h,w,C]
    const [epsU, epsC] = tf.split(eps2, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
    return tf.add(epsU, tf.mul(tf.sub(epsC, epsU), scale)) as tf.Tensor4D;
  });
}

export interface SampleOptions {
  /** DDIM inference steps n (paper: 100) */
  steps: number;
  /** guidance scale s (paper: 5); 1 = no guidance (then uncondCtx may be null and is not evaluated) */
  cfgScale: number;
  /** DDIM η (0 = deterministic) */
  eta?: number;
  /** seed of x_T and of the η > 0 noise */
  seed: number;
  /** latent shape [B,h,w,C] */
  shape: [number, number, number, number];
  /** ELITE-style k/v copies (guidance generation with M_i2t) */
  kvOverride?: KVOverride;
  /**
   * SDEdit start (Meng et al., "SDEdit", ICLR 2022, §3): instead of x_T ∼ N(0, I), noise this x0
   * estimate [B,h,w,C] to the first timestep t ≤ strength·T of the grid (x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε,
   * ε from `seed`) and run only the remaining DDIM steps. strength 1 = all steps from a noised x0.
   */
  init?: { x0: tf.Tensor4D; strength: number };
  /**
   * One seed per row: row i's x_T is drawn from its own generator seeded rowSeeds[i], so a row of a
   * batch starts from the same noise as that input alone with the same seed (row 0 of a batch is
   * always what `seed` alone gives). Without it the whole batch's x_T comes from `seed`.
   */
  rowSeeds?: readonly number[];
  /**
   * Called after every step with the new sample and x̂_0 (disposed right after the call returns or
   * resolves: `clone()` what you keep). `step` counts from 0.
   */
  onStep?: (s: { step: number; t: number; x: tf.Tensor4D; predX0: tf.Tensor4D }) => void | Promise<void>;
}

/**
 * DDIM sampling with classifier-free guidance, written out:
 *   x_T ∼ N(0, I) (from `seed`); for t in scheduler.timesteps: ε̃ = cfgEps(x_t, t); x ← step(ε̃, t, x).prevSample.
 * Deterministic for a seed (η > 0 noise comes from the same seeded generator, after x_T).
 * Each step runs in its own tf.tidy; only the current x is alive between steps.
 * @param ctx [B,T,D] conditional context; @param uncondCtx [B|1,T,D] or null when cfgScale = 1
 * @returns z_0 [B,h,w,C] (the caller disposes it)
 */
export async function sampleLatents(unet: UNet, scheduler: DDIMScheduler, ctx: tf.Tensor3D, uncondCtx: tf.Tensor3D | null, opts: SampleOptions): Promise<tf.Tensor4D> {
  const { steps, cfgScale, seed, shape } = opts;
  const eta = opts.eta ?? 0;
  if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d > 0)) throw new Error(`sampleLatents: shape must be [B,h,w,C] of positive integers, got [${shape}]`);
  if (ctx.shape[0] !== shape[0]) throw new Error(`sampleLatents: ctx [${ctx.shape}] and shape [${shape}] must have the same batch`);
  if (uncondCtx == null && cfgScale !== 1) throw new Error(`sampleLatents: cfgScale = ${cfgScale} needs uncondCtx (the empty prompt's context); only cfgScale = 1 runs without it`);
  scheduler.setTimesteps(steps);
  const rng = new Rng(seed);
  const n = shape.reduce((a, d) => a * d, 1);
  const normals = () => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = rng.normal();
    return a;
  };
  if (opts.rowSeeds && opts.rowSeeds.length !== shape[0]) throw new Error(`sampleLatents: rowSeeds has ${opts.rowSeeds.length} seeds for a batch of ${shape[0]}`);
  const xT = (): Float32Array => {
    if (!opts.rowSeeds) return normals();
    const per = n / shape[0];
    const a = new Float32Array(n);
    opts.rowSeeds.forEach((sd, i) => {
      const r = new Rng(sd);
      for (let k = 0; k < per; k++) a[i * per + k] = r.normal();
    });
    return a;
  };
  let x = tf.tensor4d(xT(), shape); // x_T ∼ N(0, I)
  let grid = scheduler.timesteps;
  if (opts.init) {
    const { x0, strength } = opts.init;
    if (!(strength > 0 && strength <= 1)) throw new Error(`sampleLatents: init.strength must be in (0, 1], got ${strength}`);
    if (x0.shape.join() !== shape.join()) throw new Error(`sampleLatents: init.x0 must be [${shape}], got [${x0.shape}]`);
    const tMax = strength * scheduler.config.numTrainSteps;
    grid = grid.filter((t) => t <= tMax);
    if (grid.length === 0) grid = [scheduler.timesteps[scheduler.timesteps.length - 1]];
    const eps = x;
    x = scheduler.addNoise(x0, eps, grid[0]);
    eps.dispose();
  }
  // what the UNet computes from the context alone, once for all steps (same function: test/models/ddim)
  const memo = new TensorMemo();
  const callOpts = { kvOverride: opts.kvOverride, memo };
  try {
    for (const [i, t] of grid.entries()) {
      const noise = eta > 0 ? normals() : undefined;
      const { prevSample, predX0 } = tf.tidy(() => {
        const eps = cfgScale === 1 ? unet.call(x, tf.fill([shape[0]], t, 'int32') as tf.Tensor1D, ctx, callOpts) : cfgEps(unet, x, t, ctx, uncondCtx!, cfgScale, callOpts);
        return scheduler.step(eps, t, x, { eta, noise: noise && tf.tensor4d(noise, shape) });
      });
      x.dispose();
      x = prevSample;
      try {
        await opts.onStep?.({ step: i, t, x, predX0 });
      } finally {
        predX0.dispose();
      }
      // let the event loop run between steps: a Ctrl-C (SIGINT handler) is seen within one step,
      // not after the last one
      await new Promise((resolve) => setImmediate(resolve));
    }
    return x;
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    memo.dispose();
  }
}
