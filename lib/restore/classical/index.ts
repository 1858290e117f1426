/**
 * Classical restoration references (no learned weights): the methods a reader would reach for instead
 * of a network, measured with the same images, seeds and metrics as the networks (lib/restore/eval.ts)
 * so that a table can say whether a trained restorer beats them.
 *
 * - haze → dark channel prior with guided-filter refinement (./dcp.ts; He, Sun, Tang, CVPR 2009 /
 *   TPAMI 2011, and "Guided Image Filtering", ECCV 2010 / TPAMI 2013): patch 15, ω 0.95, t0 0.1, A from
 *   the brightest 0.1 % of the dark channel, guided filter r 20, ε 10⁻³ (the papers' values).
 * - noise → non-local means (./nlm.ts; Buades, Coll, Morel, CVPR 2005) with OpenCV's conventions
 *   (template 7, search 21, weight exp(−d²/h²), d² the template's mean squared difference over all
 *   values), on R, G, B jointly (cv2.fastNlMeansDenoising of the 3-channel image), given the true σ,
 *   h = k(σ)·σ — k chosen per σ on the TRAINING photos (./tune.ts; quoted at `NLM_RULE`).
 * - rain, motion, defocus → none: see `NO_CLASSICAL`.
 */
import { RGBImage } from '../../data/image';
import type { TaskSpec, Task } from '../../data/degrade';
import { DCP_DEFAULTS, dehazeDcp } from './dcp';
import { NlmColorSpace, nlmDenoise } from './nlm';

export * from './filters';
export * from './dcp';
export * from './nlm';

/** A classical method for one kind of degradation. */
export interface ClassicalMethod {
  /** name, e.g. 'dark channel prior + guided filter' */
  name: string;
  /** abbreviation for table rows, e.g. 'DCP + GF' */
  short: string;
  /** the publication(s) it implements */
  citation: string;
  /** its parameters, as text for table notes */
  settings: string;
  /**
   * Restore a degraded image of `spec` (noise: σ from spec.params.sigma).
   * @param x [H,W,3] degraded @returns [H,W,3] float32, not clipped
   */
  restore(x: RGBImage, spec: TaskSpec): RGBImage;
}

/**
 * The NLM strength rule h = k(σ)·σ (σ on the 0–255 scale), chosen on the TRAINING photos with
 * `node dist/lib/restore/classical/tune.js` (38 training photos, 128-px centre crops of the photos at
 * short side 160, float noise; k swept over 0.3–1.2 in steps of 0.1): RGB beat Lab at every σ, and the
 * best k in RGB was 1.0 at σ 15 (30.96 dB), 0.9 at σ 25 (28.43 dB), 0.8 at σ 50 (25.29 dB) — the sweep is
 * in docs/classical_baselines.md. Between those σ, k is interpolated linearly; outside, the end value.
 */
export const NLM_RULE: Readonly<{ space: NlmColorSpace; kAt: ReadonlyArray<readonly [sigma: number, k: number]>; template: number; search: number }> = {
  space: 'rgb',
  kAt: [
    [15, 1.0],
    [25, 0.9],
    [50, 0.8],
  ],
  template: 7,
  search: 21,
};

/** k(σ) of `NLM_RULE`: piecewise linear in σ through its points, constant outside them. */
export function nlmK(sigma: number): number {
  const pts = NLM_RULE.kAt;
  if (sigma <= pts[0][0]) return pts[0][1];
  for (let i = 1; i < pts.length; i++) {
    const [s1, k1] = pts[i];
    if (sigma <= s1) {
      const [s0, k0] = pts[i - 1];
      return k0 + ((k1 - k0) * (sigma - s0)) / (s1 - s0);
    }
  }
  return pts[pts.length - 1][1];
}

/** The NLM strength h = k(σ)·σ of `NLM_RULE` for noise of std σ (0–255 scale). */
export function nlmStrength(sigma: number): number {
  return nlmK(sigma) * sigma;
}

/** Dark channel prior + guided filter (./dcp.ts). */
export const DCP_METHOD: ClassicalMethod = {
  name: 'dark channel prior + guided filter',
  short: 'DCP + GF',
  citation: 'He, Sun, Tang, "Single Image Haze Removal Using Dark Channel Prior", CVPR 2009 / TPAMI 2011; transmission refined by the guided filter (He, Sun, Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013)',
  settings: `patch ${DCP_DEFAULTS.patch}, ω ${DCP_DEFAULTS.omega}, t0 ${DCP_DEFAULTS.t0}, A from the brightest ${DCP_DEFAULTS.topFraction * 100} % of the dark channel, guided filter r ${DCP_DEFAULTS.gfRadius}, ε ${DCP_DEFAULTS.gfEps}`,
  restore: (x) => dehazeDcp(x).image,
};

/** Non-local means with the σ of the task (./nlm.ts, `NLM_RULE`). */
export const NLM_METHOD: ClassicalMethod = {
  name: 'non-local means',
  short: 'NLM',
  citation: 'Buades, Coll, Morel, "A non-local algorithm for image denoising", CVPR 2005 (OpenCV fastNlMeansDenoising conventions)',
  settings: `${NLM_RULE.space.toUpperCase()}, template ${NLM_RULE.template}, search ${NLM_RULE.search}, h = k·σ with σ known and k = ${NLM_RULE.kAt.map(([s, k]) => `${k} at σ${s}`).join(', ')} (chosen on the training photos)`,
  restore: (x, spec) => nlmDenoise(x, { h: nlmStrength(noiseSigma(spec)), space: NLM_RULE.space, template: NLM_RULE.template, search: NLM_RULE.search }),
};

function noiseSigma(spec: TaskSpec): number {
  const s = spec.params.sigma;
  if (typeof s !== 'number' || !(s >= 0)) throw new Error(`non-local means needs the noise σ of task '${spec.name}' (params.sigma), got ${JSON.stringify(s)}`);
  return s;
}

/** Why a task has no classical reference row. */
export const NO_CLASSICAL: Readonly<Partial<Record<Task, string>>> = {
  rain: 'no classical deraining reference: the published priors that are credible baselines (discriminative sparse coding, Luo et al. ICCV 2015; Gaussian-mixture layer priors, Li et al. CVPR 2016) need dictionaries or mixture models learned from external data, and we found no simple filter-based one we could implement as published (docs/classical_baselines.md)',
  motion: 'no classical deblurring reference (a non-blind deconvolution would need the unknown kernel)',
  defocus: 'no classical deblurring reference (a non-blind deconvolution would need the unknown kernel)',
};

/** The classical method for a task spec, or null where there is none (noise needs a fixed σ). */
export function classicalMethodFor(spec: TaskSpec): ClassicalMethod | null {
  if (spec.task === 'haze') return DCP_METHOD;
  if (spec.task === 'noise' && typeof spec.params.sigma === 'number') return NLM_METHOD;
  return null;
}
