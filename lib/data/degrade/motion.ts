/**
 * Camera-shake motion blur from random trajectories (Boracchi & Foi, "Modeling the performance of
 * image restoration from motion blur", IEEE TIP 2012), following the description of DeblurGAN's
 * KupynOrest/DeblurGAN `motion_blur/generate_trajectory.py` + `generate_PSF.py`; re-written, not copied.
 *
 * Trajectory (`generateTrajectory`), `iters` = 2000 points x_t ∈ ℂ, step s = length/(iters−1):
 *   v_0 = e^{i·angle}·(expl > 0 ? expl : s)
 *   for t = 0 … iters−2:
 *     big  = 2·v·e^{i(π + (u − 0.5))}  with probability bigShakeProb·expl (u ~ U[0,1)), else 0
 *     dv   = big + expl·(gaussianShake·(n₁ + i·n₂) − centripetal·x_t)·s,   n₁,n₂ ~ N(0,1)
 *     v    = (v + dv)/|v + dv|·s          (every step has length s: total path length = `length`)
 *     x_{t+1} = x_t + v
 * PSF (`trajectoryToPsf`): every point is splatted bilinearly with weight 1 (full exposure; the
 * reference also builds partial-exposure PSFs, which we do not use) into an odd square grid centred
 * on the trajectory's bounding box, then normalised to sum 1. Its size is
 * 2·ceil(max(extent_x, extent_y)/2) + 3 ≤ length + 4 — at most 31 px for the default length ≤ 27.
 *
 * The image is convolved with the PSF (replicate border).
 * Parameters: length (path length, px), expl (exploration/shake amount), centripetal, gaussianShake,
 * bigShakeProb, angle (initial direction, degrees). The trajectory's per-step noise comes from the
 * `rng` passed to `motionBlur`, so a seed fixes the kernel too.
 */
import { RGBImage } from '../image';
import { Rng } from '../../util/rng';
import { Kernel, Range, Ranges, checkParam, convolve, drawIn, mergeRanges, normaliseKernel, qualifier } from './common';
import { splat } from './rain';

export interface MotionParams {
  /** total trajectory length in pixels (DeblurGAN max_len) */
  length: number;
  /** exploration: how much the direction wanders (DeblurGAN expl) */
  expl: number;
  /** pull back towards the start point */
  centripetal: number;
  /** weight of the Gaussian random term of the direction update */
  gaussianShake: number;
  /** probability (times expl) of a sudden big direction change */
  bigShakeProb: number;
  /** initial direction in degrees */
  angle: number;
}

export const MOTION_KEYS = ['length', 'expl', 'centripetal', 'gaussianShake', 'bigShakeProb', 'angle'] as const;

export const MOTION_LIMITS: { readonly [K in keyof MotionParams]: Range } = {
  length: [1, 64],
  expl: [0, 1],
  centripetal: [0, 1],
  gaussianShake: [0, 20],
  bigShakeProb: [0, 1],
  angle: [0, 360],
};
/**
 * DeblurGAN's ranges except `length` (theirs: max_len 60 on a 64 canvas; ours ≤ 27 so kernels stay
 * ≤ 31 px) and `expl` (their recommended values 0.003–0.01; default 0.1·U if unset).
 */
export const MOTION_DEFAULTS: { readonly [K in keyof MotionParams]: Range } = {
  length: [5, 27],
  expl: [0.003, 0.01],
  centripetal: [0, 0.7],
  gaussianShake: [0, 10],
  bigShakeProb: [0, 0.2],
  angle: [0, 360],
};

export const TRAJECTORY_ITERS = 2000;

export function validateMotion(p: MotionParams): MotionParams {
  for (const k of MOTION_KEYS) checkParam('motion', k, p[k], MOTION_LIMITS[k]);
  return p;
}

/** Draw the parameters in MOTION_KEYS order, uniformly from their ranges. */
export function sampleMotion(rng: Rng, ranges?: Ranges<MotionParams>): MotionParams {
  const r = mergeRanges('motion', MOTION_LIMITS, MOTION_DEFAULTS, ranges);
  const out = {} as MotionParams;
  for (const k of MOTION_KEYS) out[k] = drawIn(rng, r[k]!);
  return out;
}

/** The random camera trajectory: `iters` points (x, y) in pixels, starting at the origin. */
export function generateTrajectory(params: MotionParams, rng: Rng, iters = TRAJECTORY_ITERS): { x: Float64Array; y: Float64Array } {
  const { length, expl, centripetal, gaussianShake, bigShakeProb, angle } = validateMotion(params);
  const s = length / (iters - 1);
  const a = (angle * Math.PI) / 180;
  const m0 = expl > 0 ? expl : s;
  let vx = Math.cos(a) * m0;
  let vy = Math.sin(a) * m0;
  const x = new Float64Array(iters);
  const y = new Float64Array(iters);
  for (let t = 0; t < iters - 1; t++) {
    let bx = 0;
    let by = 0;
    if (rng.random() < bigShakeProb * expl) {
      const phi = Math.PI + (rng.random() - 0.5);
      // 2·v·e^{iφ}
      bx = 2 * (vx * Math.cos(phi) - vy * Math.sin(phi));
      by = 2 * (vx * Math.sin(phi) + vy * Math.cos(phi));
    }
    const n1 = rng.normal();
    const n2 = rng.normal();
    vx += bx + expl * (gaussianShake * n1 - centripetal * x[t]) * s;
    vy += by + expl * (gaussianShake * n2 - centripetal * y[t]) * s;
    const norm = Math.hypot(vx, vy);
    if (norm > 0) {
      vx = (vx / norm) * s;
      vy = (vy / norm) * s;
    } else {
      vx = s;
      vy = 0;
    }
    x[t + 1] = x[t] + vx;
    y[t + 1] = y[t] + vy;
  }
  return { x, y };
}

/** Rasterise a trajectory into a normalised, odd-sized square PSF centred on its bounding box. */
export function trajectoryToPsf(traj: { x: Float64Array; y: Float64Array }): Kernel {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < traj.x.length; i++) {
    x0 = Math.min(x0, traj.x[i]);
    x1 = Math.max(x1, traj.x[i]);
    y0 = Math.min(y0, traj.y[i]);
    y1 = Math.max(y1, traj.y[i]);
  }
  const radius = Math.ceil(Math.max(x1 - x0, y1 - y0) / 2) + 1;
  const size = 2 * radius + 1;
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const w = new Float64Array(size * size);
  for (let i = 0; i < traj.x.length; i++) splat(w, size, radius + traj.x[i] - cx, radius + traj.y[i] - cy, 1);
  return normaliseKernel('trajectoryToPsf', { size, weights: w });
}

/** The PSF for these parameters (trajectory noise from `rng`). */
export function motionKernel(params: MotionParams, rng: Rng): Kernel {
  return trajectoryToPsf(generateTrajectory(params, rng));
}

/**
 * Blur with a random-trajectory PSF.
 * @param img [H,W,3] float32 RGB in [0,1]
 * @returns [H,W,3] float32 in [0,1] (a convex combination of input values)
 */
export function motionBlur(img: RGBImage, params: MotionParams, rng: Rng): RGBImage {
  return convolve(img, motionKernel(params, rng), 'replicate');
}

/** 'slightly blurry' (length < 8 px), 'blurry', 'heavily blurry' (length > 20 px). */
export function motionPhrase(p: MotionParams): string {
  return `${qualifier(p.length, 8, 20)}blurry`;
}
