/**
 * The whole method on a few validation photos, with trained checkpoints — the second half of the main
 * job (`npm start`) and of notebook 00:
 *   clean Y → degrade (seeded, as the evaluation) → X
 *   X → τi → M_i2t → E_txt → text-to-image → G(E_txt)           (Sec. 3.2, no textual restoration)
 *   X → τi → M_i2t → M_clean → E'_txt → text-to-image → G(E'_txt) (Sec. 3.2, Eq. 2–3; the guidance)
 *   X → restorer without guidance → Ŷ_plain;  (X, G(E'_txt)) → guided restorer → Ŷ_guided (Sec. 3.3, Eq. 4)
 *   PSNR / SSIM of X, Ŷ_plain, Ŷ_guided against Y (Y channel for rain, as the evaluation harness)
 *   X → the task's classical method (lib/restore/classical: dark channel prior for haze, non-local means
 *   for noise; none for rain) → Ŷ_classical, a reference with no learned weights
 * Checkpoints: the guidance model (+ the text-to-image model it references) and the all-in-one
 * restorers with and without guidance. A missing one is reported with the command that builds it;
 * the caller decides whether that is an error (`npm start` prints it and still writes the
 * degradation report).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RGBImage, clip01 } from '../data/image';
import { ALL_IN_ONE_TASKS, TaskSpec } from '../data/degrade';
import { psnr, ssim } from '../metrics/metrics';
import { guidanceCheckpoint } from '../guidance/config';
import { shippedCheckpoint, portablePath } from '../util/paths';
import { restoreRunName } from '../restore/config';
import { loadGuidancePair, guidanceCached } from '../guidance/pipeline';
import { loadRestorer, guidanceModelMismatch } from '../restore/train';
import { guidanceModelRef, restorerGuidanceCheckpoint } from './sources';
import { readCheckpointMeta } from '../util/checkpoint';
import { degradeForEval, restoreImage, usesY, validationImages } from '../restore/eval';
import { classicalMethodFor } from '../restore/classical';
import { Row } from '../viz/table';
import { UserError } from '../util/errors';

/**
 * The restorer notebooks and the main job use: $TDR_RESTORE_GUIDED_CHECKPOINT /
 * $TDR_RESTORE_PLAIN_CHECKPOINT if set, else the shipped demo restorer (all-in-one) of the backbone.
 * `source` names a guided restorer trained with another guidance source (e.g. 'clean-oracle', the
 * stand-in upper bound of notebook 06; run name as restoreRunName); the variables apply to 'text' only.
 */
export function restoreCheckpoint(backbone: string, guided: boolean, source = 'text'): string {
  if (!guided && source !== 'text') throw new Error(`restoreCheckpoint: an unguided restorer has no guidance source ('${source}')`);
  const env = source === 'text' ? process.env[guided ? 'TDR_RESTORE_GUIDED_CHECKPOINT' : 'TDR_RESTORE_PLAIN_CHECKPOINT'] : undefined;
  // the shipped pair of data/configs/restore-demo-wide.json (text guidance of the words model, and none);
  // the clean-oracle stand-in stays the demo preset's
  const preset = source === 'text' ? SHIPPED_RESTORE_PRESET : 'demo';
  return env || shippedCheckpoint(restoreRunName({ preset, tasks: 'all-in-one', model: { backbone: { type: backbone }, guidance: guided } }, source));
}

/** The preset (config file) of the shipped restorer pair: data/configs/restore-demo-wide.json. */
export const SHIPPED_RESTORE_PRESET = 'demo-wide';
/**
 * The legs each restorer of the shipped pair was trained in: the step each leg stopped at (`--stop-at`),
 * every leg after the first starting from the model of the one before (`--init-from`, fresh optimizer
 * moments); each ships its best validation checkpoint up to its last step, 9500 of the 10 000-step schedule.
 * Both in two legs, because the first legs' run folders were lost (docs/experiments.md §4); a restorer
 * retrained in one run has one leg (test/data/shipped.test.ts checks these against the legs each shipped
 * model records).
 */
export const SHIPPED_RESTORE_LEGS: { readonly guided: readonly number[]; readonly plain: readonly number[] } = { guided: [4000, 9500], plain: [4000, 9500] };

/**
 * The command that rebuilds a shipped restorer of the pair (`out`), with its legs (SHIPPED_RESTORE_LEGS).
 * @param guidance the guidance model of the guided one (undefined: the unguided one)
 */
export function shippedRestoreRebuild(backbone: string, guidance: string | undefined, out: string): string {
  const base = `npx tdr train restore --backbone ${backbone} --config data/configs/restore-${SHIPPED_RESTORE_PRESET}.json ${guidance ? `--guidance-checkpoint ${guidance}` : '--no-guidance'}`;
  return SHIPPED_RESTORE_LEGS[guidance ? 'guided' : 'plain'].map((stopAt, i) => `${base}${i > 0 ? ` --init-from ${out}` : ''} --stop-at ${stopAt} --out ${out}`).join(' && ');
}

export interface MethodOptions {
  /** validation photos (default 3) */
  limit?: number;
  /** evaluation task names of ALL_IN_ONE_TASKS (default noise25, rain, haze) */
  tasks?: string[];
  backbone?: 'promptir' | 'nafnet' | 'restormer';
  guidanceCheckpoint?: string;
  guidedCheckpoint?: string;
  plainCheckpoint?: string;
  /** generation seed of the guidance (default: the guidance config's, as `tdr guide`) */
  seed?: number;
  /** after each (photo, task) */
  onProgress?: (done: number, total: number) => void;
}

export interface MethodSample {
  id: string;
  task: string;
  clean: RGBImage;
  degraded: RGBImage;
  /** G(E_txt): guidance without textual restoration */
  guidanceRaw: RGBImage;
  /** G(E'_txt): the paper's guidance */
  guidance: RGBImage;
  plain: RGBImage;
  guided: RGBImage;
  /** the task's classical method's output (clipped), null where the task has none (rain) */
  classical: RGBImage | null;
  /** that method's abbreviation ('DCP + GF', 'NLM'), null where none */
  classicalMethod: string | null;
  channel: 'rgb' | 'y';
  /**
   * guidedOther: the guided restorer given ANOTHER photo's guidance (the next photo's G(E'_txt), same
   * task) — a control: if it scores like `guided`, the gain does not come from what G shows. NaN with
   * one photo.
   */
  psnr: { input: number; plain: number; guided: number; guidedOther: number; classical: number };
  ssim: { input: number; plain: number; guided: number; classical: number };
}

export interface MethodResult {
  /** checkpoints that were not found, each with the command that makes it; samples is empty then */
  missing: Array<{ what: string; file: string; command: string }>;
  samples: MethodSample[];
  /** per task: mean PSNR/SSIM of input, unguided and guided restoration, and the guided − unguided gain */
  rows: Row[];
  /**
   * per task: the classical reference (method, PSNR/SSIM) and the networks' PSNR minus it — comparison
   * rows; '—' (NaN) where the task has no classical method
   */
  classicalRows: Row[];
  checkpoints: { guidance: string; guided: string; plain: string };
  /** e.g. the guided restorer was trained with another guidance model than the one that makes G here */
  notes: string[];
}

const DEFAULT_TASKS = ['noise25', 'rain', 'haze'];

/** Which checkpoints the method needs and which of them are missing. */
export function methodCheckpoints(opts: Pick<MethodOptions, 'backbone' | 'guidanceCheckpoint' | 'guidedCheckpoint' | 'plainCheckpoint'> = {}): { files: MethodResult['checkpoints']; missing: MethodResult['missing'] } {
  const b = opts.backbone ?? 'promptir';
  const guided = opts.guidedCheckpoint ?? restoreCheckpoint(b, true);
  // G from the guidance model the guided restorer was trained with, unless told otherwise
  const files = {
    guidance: opts.guidanceCheckpoint ?? (fs.existsSync(guided) ? restorerGuidanceCheckpoint(readCheckpointMeta(guided)) : guidanceCheckpoint()),
    guided,
    plain: opts.plainCheckpoint ?? restoreCheckpoint(b, false),
  };
  const need = [
    { what: 'guidance model (M_i2t + M_clean)', file: files.guidance, command: 'npx tdr train i2t --preset demo && npx tdr train clean --preset demo' },
    { what: `${b} restorer with guidance`, file: files.guided, command: shippedRestoreRebuild(b, portablePath(files.guidance), portablePath(files.guided)) },
    { what: `${b} restorer without guidance`, file: files.plain, command: shippedRestoreRebuild(b, undefined, portablePath(files.plain)) },
  ];
  return { files, missing: need.filter((n) => !fs.existsSync(n.file)) };
}

/** Run degrade → guidance → restoration (with and without guidance) → metrics. */
export async function runMethod(opts: MethodOptions = {}): Promise<MethodResult> {
  const { files, missing } = methodCheckpoints(opts);
  if (missing.length) return { missing, samples: [], rows: [], classicalRows: [], checkpoints: files, notes: [] };
  const specs: TaskSpec[] = (opts.tasks ?? DEFAULT_TASKS).map((name) => {
    const s = ALL_IN_ONE_TASKS.find((t) => t.name === name);
    if (!s) throw new UserError(`unknown task '${name}'; expected one of ${ALL_IN_ONE_TASKS.map((t) => t.name).join(', ')}`);
    return s;
  });
  const guided = loadRestorer(files.guided, { backbone: opts.backbone, guidance: true });
  const plain = loadRestorer(files.plain, { backbone: opts.backbone, guidance: false });
  const pair = loadGuidancePair(files.guidance);
  const mismatch = guidanceModelMismatch(files.guided, guided.meta, { model: guidanceModelRef(files.guidance) });
  const notes = mismatch ? [mismatch] : [];
  try {
    const images = await validationImages(guided.cfg.eval, opts.limit ?? 3);
    const samples: MethodSample[] = [];
    const total = images.length * specs.length;
    for (const img of images) {
      for (const spec of specs) {
        const x = degradeForEval(img, spec);
        const gOpts = opts.seed === undefined ? {} : { seed: opts.seed };
        const raw = (await guidanceCached(pair.guidance, pair.t2i, x, { ...gOpts, raw: true })).image;
        const g = (await guidanceCached(pair.guidance, pair.t2i, x, gOpts)).image;
        const yp = restoreImage(plain.net, x);
        const yg = restoreImage(guided.net, x, g);
        const cm = classicalMethodFor(spec);
        const yc: RGBImage | null = cm ? clip01(cm.restore(x, spec)) : null;
        const mo = { quantize: true, yChannel: usesY(spec) };
        samples.push({
          id: img.id,
          task: spec.name,
          clean: img.clean,
          degraded: x,
          guidanceRaw: raw,
          guidance: g,
          plain: yp,
          guided: yg,
          classical: yc,
          classicalMethod: cm?.short ?? null,
          channel: usesY(spec) ? 'y' : 'rgb',
          psnr: { input: psnr(img.clean, x, mo), plain: psnr(img.clean, yp, mo), guided: psnr(img.clean, yg, mo), guidedOther: NaN, classical: yc ? psnr(img.clean, yc, mo) : NaN },
          ssim: { input: ssim(img.clean, x, mo), plain: ssim(img.clean, yp, mo), guided: ssim(img.clean, yg, mo), classical: yc ? ssim(img.clean, yc, mo) : NaN },
        });
        opts.onProgress?.(samples.length, total);
      }
    }
    // the control: each input restored with the next photo's guidance of the same task (no new generation)
    if (images.length > 1) {
      for (const [i, img] of images.entries()) {
        const next = images[(i + 1) % images.length].id;
        for (const spec of specs) {
          const s = samples.find((x) => x.id === img.id && x.task === spec.name)!;
          const o = samples.find((x) => x.id === next && x.task === spec.name)!;
          s.psnr.guidedOther = psnr(img.clean, restoreImage(guided.net, s.degraded, o.guidance), { quantize: true, yChannel: usesY(spec) });
        }
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const rows: Row[] = specs.map((spec) => {
      const s = samples.filter((x) => x.task === spec.name);
      return {
        task: spec.name,
        channel: s[0].channel,
        images: s.length,
        'PSNR input': mean(s.map((x) => x.psnr.input)),
        'PSNR unguided': mean(s.map((x) => x.psnr.plain)),
        'PSNR guided': mean(s.map((x) => x.psnr.guided)),
        'gain (dB)': mean(s.map((x) => x.psnr.guided - x.psnr.plain)),
        "PSNR guided, another photo's G": mean(s.map((x) => x.psnr.guidedOther)),
        'SSIM unguided': mean(s.map((x) => x.ssim.plain)),
        'SSIM guided': mean(s.map((x) => x.ssim.guided)),
      };
    });
    const classicalRows: Row[] = specs.map((spec) => {
      const s = samples.filter((x) => x.task === spec.name);
      return {
        task: spec.name,
        'classical method': s[0].classicalMethod,
        'PSNR classical': mean(s.map((x) => x.psnr.classical)),
        'SSIM classical': mean(s.map((x) => x.ssim.classical)),
        'unguided − classical (dB)': mean(s.map((x) => x.psnr.plain - x.psnr.classical)),
        'guided − classical (dB)': mean(s.map((x) => x.psnr.guided - x.psnr.classical)),
      };
    });
    return { missing: [], samples, rows, classicalRows, checkpoints: files, notes };
  } finally {
    guided.params.dispose();
    plain.params.dispose();
    pair.guidance.dispose();
    pair.t2i.dispose();
  }
}

/** Table digits of `MethodResult.rows`. */
export const METHOD_DIGITS = { images: 0, 'PSNR input': 2, 'PSNR unguided': 2, 'PSNR guided': 2, 'gain (dB)': 2, "PSNR guided, another photo's G": 2, 'SSIM unguided': 4, 'SSIM guided': 4 };

/** Table digits of `MethodResult.classicalRows`. */
export const CLASSICAL_DIGITS = { 'PSNR classical': 2, 'SSIM classical': 4, 'unguided − classical (dB)': 2, 'guided − classical (dB)': 2 };

/** Labelled images of one sample, in the paper's Fig. 1 / Fig. 3 order, then the classical reference (if any). */
export function methodRow(s: MethodSample): Array<{ image: RGBImage; label: string }> {
  const unit = s.channel === 'y' ? 'dB (Y)' : 'dB';
  return [
    { image: s.degraded, label: `X: ${s.task} ${s.psnr.input.toFixed(2)} ${unit}` },
    { image: s.guidanceRaw, label: 'G(E_txt)' },
    { image: s.guidance, label: "G(E'_txt)" },
    { image: s.plain, label: `unguided ${s.psnr.plain.toFixed(2)}` },
    { image: s.guided, label: `guided ${s.psnr.guided.toFixed(2)}` },
    ...(s.classical ? [{ image: s.classical, label: `classical ${s.classicalMethod} ${s.psnr.classical.toFixed(2)}` }] : []),
    { image: s.clean, label: `Y (${s.id})` },
  ];
}

/** Relative path for messages. */
export function shortPath(file: string): string {
  const r = path.relative(process.cwd(), file);
  return r.startsWith('..') ? file : r;
}
