/**
 * Stage 3 (paper Sec. 3.3): train a restorer — NAFNet, Restormer or PromptIR, with or
 * without guidance (dynamic aggregation + Eq. 4 fusion) — with the shared loop (lib/train/loop.ts):
 *   loss      ℓ1 = ‖Ŷ − Y‖₁, Eq. (5): mean absolute error over the batch (`l1Loss`)
 *   optimiser AdamW (decoupled weight decay), cosine schedule with warm-up (`lrAt`)
 *   groups    every `<prefix>.masa.` parameter (matcher encoder + fusion blocks, the official "masa"
 *             name filter) runs at `refLr` (official `ref_lr`) and is frozen — LR 0, not even weight
 *             decay — for the first `paramFixIterations` steps (official `param_fix_iterations`,
 *             which never took effect there); GuidedRestorer.lrScale implements it, and
 *             test/restore/guided.test.ts shows it working through the loop
 *   data      lib/restore/data.ts (patches, task sampling, guidance crop chosen by feature match)
 *   parallel  data-parallel workers rebuild the same stage (`restoreStageForWorker`); all randomness
 *             is drawn in getBatch, the loss is a mean over samples
 * Checkpoints: the loop's train state in the run folder; `saveRestorer` writes the trained model
 * (EMA weights, float16, resolved config in the meta) and `loadRestorer` reads either kind, refusing a
 * checkpoint of another backbone or shape with the file and the parameter in the message.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { Params } from '../models/params';
import { Rng } from '../util/rng';
import { GuidedRestorer } from './guided';
import { RestoreConfig, parseRestoreConfig, restoreRunName } from './config';
import { train, Stage, TrainResult, loadWeights, splitState, readLog, readValLog, CHECKPOINT_FILE, BEST_FILE, LogRecord } from '../train/loop';
import { UserError } from '../util/errors';
import { portablePath } from '../util/paths';
import { RGBImage } from '../data/image';
import { centerCrop } from '../data/patches';
import { degradeWithSpec } from '../data/degrade';
import { psnr } from '../metrics/metrics';
import { restoreImage, usesY, evalSeed } from './eval';
import { loadCheckpoint, readCheckpointMeta, saveCheckpoint, CheckpointError, Named } from '../util/checkpoint';
import { LoadedPhoto, loadPhotos } from '../data/patches';
import { RestoreBatch, RestoreData, GuidanceImages, buildGuidanceCache, makeRestoreData, restoreBatch, taskSpecs, tryLoadGuidanceCache } from './data';
import { GuidanceSource, GuidanceModelRef, guidanceKey } from './source';
import { loopSettings } from '../train/config';

/** Parameter prefix of the restorer in every checkpoint. */
export const RESTORER_PREFIX = 'restorer';
export const GUIDANCE_CACHE_FILE = 'guidance.tdrc';

/** Build the restorer of a config (parameters under `restorer.`; seeded by train.seed). */
export function buildRestorer(cfg: RestoreConfig, params: Params = new Params()): { params: Params; net: GuidedRestorer } {
  const net = new GuidedRestorer(params, RESTORER_PREFIX, cfg.model, new Rng(cfg.train.seed));
  return { params, net };
}

/**
 * Eq. (5): ℓ1 = mean |Ŷ − Y| over all values of the batch.
 * @param yHat [B,H,W,3] restored; @param y [B,H,W,3] clean in [0,1]
 */
export function l1Loss(yHat: tf.Tensor4D, y: tf.Tensor4D): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(yHat, y))) as tf.Scalar);
}

/** The training stage of a restorer on prepared data. */
export function restoreStage(cfg: RestoreConfig, params: Params, net: GuidedRestorer, data: RestoreData): Stage<RestoreBatch> {
  if (cfg.model.guidance && !data.candidates) throw new Error('restoreStage: a guided model needs guidance candidates (makeRestoreData with a guidance cache)');
  const matcherLr = cfg.train.lr > 0 ? cfg.refLr / cfg.train.lr : 0;
  return {
    params,
    getBatch(_step, rng) {
      const b = restoreBatch(data, cfg.train.batch, rng);
      if (!cfg.model.guidance && b.g) {
        b.g.dispose();
        b.g = undefined;
      }
      return b;
    },
    loss(b) {
      const l = tf.tidy(() => l1Loss(net.call(b.x, cfg.model.guidance ? b.g : undefined), b.y));
      return { total: l, parts: { l_l1: l } };
    },
    disposeBatch(b) {
      tf.dispose([b.x, b.y, ...(b.g ? [b.g] : [])]);
    },
    lrScale(name, step) {
      return net.lrScale(name, step, { matcherLr, freezeMatcherSteps: cfg.paramFixIterations, matcherEncoderLr: cfg.matcherEncoderLr === undefined ? undefined : cfg.train.lr > 0 ? cfg.matcherEncoderLr / cfg.train.lr : 0 });
    },
    sliceBatch(b, start, end) {
      const s = (t: tf.Tensor4D) => t.slice([start], [end - start]);
      return { x: s(b.x), y: s(b.y), g: b.g ? s(b.g) : undefined, tasks: b.tasks.slice(start, end) };
    },
    batchSize(b) {
      return b.x.shape[0];
    },
  };
}

/**
 * The photos of a restorer run: the training photos at photoShortSide (without the validation
 * hold-out: the LAST `validation.holdout` training photos), the same photos at the other `cropScales`,
 * and the held-out photos (at photoShortSide).
 */
export async function restorePhotos(cfg: RestoreConfig, photoLimit?: number): Promise<{ photos: LoadedPhoto[]; moreScales: LoadedPhoto[][]; holdout: LoadedPhoto[] }> {
  const all = await loadPhotos('train', cfg.photoShortSide, photoLimit);
  const h = cfg.validation?.holdout ?? 0;
  if (h >= all.length) throw new UserError(`validation.holdout ${h} leaves no training photo (${all.length} photos)`);
  const keep = all.length - h;
  const moreScales: LoadedPhoto[][] = [];
  for (const s of cfg.cropScales ?? []) {
    if (s === cfg.photoShortSide) continue;
    moreScales.push((await loadPhotos('train', s, photoLimit)).slice(0, keep));
  }
  return { photos: all.slice(0, keep), moreScales, holdout: all.slice(keep) };
}

/**
 * Training data of a config from its photos (multi-scale, task weights, guidance candidates, and the
 * G augmentations `guidanceLowpass` / `guidanceColorJitter`). Exported for the test of this hand-off.
 */
export function restoreData(cfg: RestoreConfig, ph: { photos: LoadedPhoto[]; moreScales: LoadedPhoto[][] }, guidance?: GuidanceImages): RestoreData {
  return makeRestoreData(ph.photos, taskSpecs(cfg.tasks), cfg.patchSize, guidance, { moreScales: ph.moreScales, taskWeights: cfg.taskWeights, guidanceLowpass: cfg.guidanceLowpass, guidanceColorJitter: cfg.guidanceColorJitter });
}

/** Worker factory (lib/train/parallel.ts): the same stage in a training worker. */
export async function restoreStageForWorker(args: { config: RestoreConfig; guidanceFile?: string; photoLimit?: number }): Promise<Stage<RestoreBatch>> {
  const cfg = parseRestoreConfig(args.config, 'worker config');
  const ph = await restorePhotos(cfg, args.photoLimit ?? cfg.photoLimit);
  let cache;
  if (cfg.model.guidance) {
    cache = args.guidanceFile ? tryLoadGuidanceCache(args.guidanceFile) : null;
    if (!cache) throw new Error(`restore worker: cannot read the guidance cache ${args.guidanceFile}`);
  }
  const { params, net } = buildRestorer(cfg);
  return restoreStage(cfg, params, net, restoreData(cfg, ph, cache ?? undefined));
}

/**
 * Validation PSNR of a restorer on the held-out training photos: their centred `validation.size`
 * crops, each task of the task set with a fixed seed (evalSeed), PSNR with the tables' conventions
 * (Y for rain, RGB otherwise); guided nets get G from the run's guidance cache. Returns `v_psnr`
 * (mean over images and tasks) and `v_<task>` per task.
 */
export function validationPsnr(cfg: RestoreConfig, net: GuidedRestorer, holdout: LoadedPhoto[], guidance?: GuidanceImages): Record<string, number> {
  const size = cfg.validation!.size;
  const specs = taskSpecs(cfg.tasks);
  const per: Record<string, number[]> = Object.fromEntries(specs.map((s) => [s.name, []]));
  for (const p of holdout) {
    const y = centerCrop(p.image, size);
    for (const spec of specs) {
      const x = degradeWithSpec(y, spec, evalSeed(`holdout:${p.entry.id}`, spec.name)).image;
      let g: RGBImage | undefined;
      if (cfg.model.guidance) {
        g = guidance?.get(guidanceKey('train', p.entry.id, spec.name));
        if (!g) throw new Error(`validationPsnr: no guidance for held-out photo '${p.entry.id}' × ${spec.name}`);
      }
      const out = restoreImage(net, x, g);
      per[spec.name].push(psnr(y, out, { yChannel: usesY(spec) }));
    }
  }
  const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
  const res: Record<string, number> = { v_psnr: mean(Object.values(per).flat()) };
  for (const [k, v] of Object.entries(per)) res[`v_${k}`] = mean(v);
  return res;
}

export interface TrainRestorerOptions {
  /** the guidance source (guided models); `noGuidance` or omitted for the unguided baseline */
  guidance?: GuidanceSource;
  /** data-parallel workers in total (1 = main thread only) */
  workers?: number;
  quiet?: boolean;
  maxStepsThisCall?: number;
  onLog?: (rec: LogRecord) => void | Promise<void>;
  /** use only the first N training photos (tests) */
  photoLimit?: number;
  /**
   * A snapshot of the schedule: training stops at this step (the learning rate still follows
   * cfg.train.steps) and the model is the best validation checkpoint at or before it. A run already past
   * it gives that model when its validation log has the step and its best checkpoint is not later: a run
   * stopped there would have had the same best (`tdr train restore --stop-at`).
   */
  stopAt?: number;
  /**
   * Warm start from a trained restorer (.tdrc of the same configuration and guidance): a new run begins
   * at that model's step of the schedule (its `bestStep`, else `steps`) with its weights and fresh AdamW
   * moments (the loop's `init`); the run records the file and its sha256 and resumes only with the same
   * one. For continuing a schedule whose run folder is gone.
   */
  initFrom?: string;
}

/** What a warm-started restorer run records of the model it began from. */
export interface InitRef {
  file: string;
  sha256: string;
  step: number;
  rebuild?: string;
}

/**
 * The weights and schedule step of a trained restorer to warm-start `cfg` from, checked against it.
 * @throws UserError naming the file and what differs (kind, configuration, guidance model)
 */
export function restorerInit(file: string, cfg: RestoreConfig, guidanceModel: GuidanceModelRef | null): { params: Named; ref: InitRef } {
  if (!fs.existsSync(file)) throw new UserError(`--init-from ${file}: no such file`);
  const bytes = fs.readFileSync(file);
  const { meta, tensors } = loadCheckpoint(file);
  if (meta.kind !== 'restorer') throw new UserError(`--init-from ${file}: not a trained restorer (kind ${JSON.stringify(meta.kind ?? null)}; expected 'restorer', a file written by 'tdr train restore')`);
  const was = parseRestoreConfig(meta.config, `${file}: config`);
  const strip = (c: RestoreConfig) => JSON.stringify({ ...c, train: { ...c.train, checkpointEvery: 0, logEvery: 0 } });
  if (strip(was) !== strip(cfg)) {
    const diff = Object.keys({ ...was, ...cfg }).filter((k) => JSON.stringify((was as unknown as Record<string, unknown>)[k]) !== JSON.stringify((cfg as unknown as Record<string, unknown>)[k]));
    throw new UserError(`--init-from ${file}: trained with another configuration (differs in ${diff.join(', ')}); warm-start a run of the same --config, backbone, tasks and guidance`);
  }
  const wasModel = (meta.guidanceModel ?? null) as GuidanceModelRef | null;
  if ((wasModel?.sha256 ?? null) !== (guidanceModel?.sha256 ?? null)) {
    throw new UserError(`--init-from ${file}: trained with the guidance of ${wasModel ? `${wasModel.file} (sha256 ${wasModel.sha256.slice(0, 12)}…)` : 'no guidance model'}, not of ${guidanceModel ? `${guidanceModel.file} (${guidanceModel.sha256.slice(0, 12)}…)` : 'none'}`);
  }
  const step = Number(meta.bestStep ?? meta.steps);
  if (!Number.isInteger(step) || step < 1 || step >= cfg.train.steps) throw new UserError(`--init-from ${file}: its step ${String(meta.bestStep ?? meta.steps)} is not inside the schedule (1 to ${cfg.train.steps - 1})`);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { params: tensors, ref: { file: portablePath(file), sha256, step, ...(typeof meta.rebuild === 'string' ? { rebuild: meta.rebuild } : {}) } };
}

/**
 * Train (or resume) the restorer of `cfg` in `runDir`; returns the model with its EMA weights loaded.
 * Guided training first builds (or reloads) `<runDir>/guidance.tdrc`: G for every training photo × task.
 */
export async function trainRestorer(cfg: RestoreConfig, runDir: string, opts: TrainRestorerOptions = {}): Promise<{ params: Params; net: GuidedRestorer; result: TrainResult; guidance: string; guidanceModel: GuidanceModelRef | null; bestStep?: number; initFrom?: InitRef }> {
  const source = opts.guidance;
  if (cfg.model.guidance && (!source || source.name === 'none')) throw new Error('trainRestorer: a guided model (model.guidance = true) needs a guidance source');
  if (!cfg.model.guidance && source && source.name !== 'none') throw new Error(`trainRestorer: the model is unguided (model.guidance = false) but a guidance source '${source.name}' was given`);
  const guidanceName = cfg.model.guidance ? source!.name : 'none';
  // A run resumes only with the guidance it started with (checked before the guidance cache, which
  // another source would overwrite). The run name separates sources by default (restoreRunName).
  const ckpt = path.join(runDir, CHECKPOINT_FILE);
  const guidanceModel = cfg.model.guidance ? (source!.model ?? null) : null;
  const meta = fs.existsSync(ckpt) ? readCheckpointMeta(ckpt) : undefined;
  const init = opts.initFrom !== undefined ? restorerInit(opts.initFrom, cfg, guidanceModel) : undefined;
  if (meta) {
    const wasInit = (meta.initFrom ?? null) as InitRef | null;
    if ((wasInit?.sha256 ?? null) !== (init?.ref.sha256 ?? null)) {
      throw new CheckpointError(
        `${ckpt}: this run ${wasInit ? `was warm-started from ${wasInit.file} (sha256 ${wasInit.sha256.slice(0, 12)}…)` : 'was not warm-started'}, ${init ? `not from ${init.ref.file} (${init.ref.sha256.slice(0, 12)}…)` : 'and --init-from is not given'}; resume it with the same --init-from, or train into another --runs folder`,
      );
    }
    const was = meta.guidance;
    if (was !== undefined && was !== guidanceName) {
      throw new CheckpointError(`${ckpt}: this run was trained with guidance '${String(was)}', not '${guidanceName}'; resume it with its own guidance, or train into another --runs folder`);
    }
    const wasModel = meta.guidanceModel as GuidanceModelRef | null | undefined;
    if (wasModel && guidanceModel && wasModel.sha256 !== guidanceModel.sha256) {
      throw new CheckpointError(
        `${ckpt}: this run was trained with the guidance of ${wasModel.file} (sha256 ${wasModel.sha256.slice(0, 12)}…), not of ${guidanceModel.file} (${guidanceModel.sha256.slice(0, 12)}…); resume it with that guidance model, or train into another --runs folder`,
      );
    }
  }
  const stopAt = opts.stopAt;
  if (stopAt !== undefined && (!Number.isInteger(stopAt) || stopAt < 1 || stopAt > cfg.train.steps)) throw new UserError(`stop at step ${stopAt}: expected a step of the schedule, 1 to ${cfg.train.steps}`);
  const best = path.join(runDir, BEST_FILE);
  if (stopAt !== undefined && meta && Number(meta.step) > stopAt) {
    const at = Number(meta.step);
    const bestStep = fs.existsSync(best) ? Number(readCheckpointMeta(best).step) : NaN;
    const validatedThere = readValLog(runDir).some((r) => r.step === stopAt);
    if (!cfg.validation || !validatedThere || !(bestStep <= stopAt)) {
      throw new CheckpointError(
        `${ckpt}: this run is at step ${at}, past --stop-at ${stopAt}, and its best validation checkpoint ${Number.isFinite(bestStep) ? `is from step ${bestStep}` : 'is missing'}${validatedThere ? '' : ` (no validation at step ${stopAt})`}; train into another --runs folder`,
      );
    }
    const { params, net } = buildRestorer(cfg);
    loadWeights(best, params);
    const log = readLog(runDir).filter((r) => r.step <= stopAt);
    return { params, net, result: { step: stopAt, interrupted: false, resumedFrom: at, log }, guidance: guidanceName, guidanceModel, bestStep, ...(init ? { initFrom: init.ref } : {}) };
  }
  fs.mkdirSync(runDir, { recursive: true });
  const photoLimit = opts.photoLimit ?? cfg.photoLimit;
  const ph = await restorePhotos(cfg, photoLimit);
  const specs = taskSpecs(cfg.tasks);
  const guidanceFile = path.join(runDir, GUIDANCE_CACHE_FILE);
  // G of every training photo × task, and of the held-out validation photos (generated from the text side as any input)
  const cache = cfg.model.guidance ? await buildGuidanceCache([...ph.photos, ...ph.holdout], specs, source!, cfg.patchSize, guidanceFile, { quiet: opts.quiet, steps: cfg.guidanceSteps }) : undefined;
  const { params, net } = buildRestorer(cfg);
  const stage = restoreStage(cfg, params, net, restoreData(cfg, ph, cache));
  const trainCfg = loopSettings(cfg.train);
  const workers = opts.workers ?? 1;
  const result = await train(stage, trainCfg, {
    runDir,
    meta: { stage: 'restore', config: cfg, guidance: guidanceName, guidanceStandIn: cfg.model.guidance ? (source!.standIn ?? null) : null, guidanceModel, ...(init ? { initFrom: init.ref } : {}) },
    init: init ? { params: init.params, step: init.ref.step, source: init.ref.file } : undefined,
    label: restoreRunName(cfg, guidanceName),
    quiet: opts.quiet,
    maxStepsThisCall: opts.maxStepsThisCall,
    stopAt,
    onLog: opts.onLog,
    parallel: workers > 1 ? { workers, factory: { module: __filename, fn: 'restoreStageForWorker', args: { config: cfg, guidanceFile: cache ? guidanceFile : undefined, photoLimit } } } : undefined,
    validate: cfg.validation && ph.holdout.length ? { every: cfg.validation.every, best: { key: 'v_psnr', mode: 'max' }, run: async () => validationPsnr(cfg, net, ph.holdout, cache) } : undefined,
  });
  // the shipped weights: the best validation checkpoint when the run validates, else the final EMA weights
  const fromBest = cfg.validation && fs.existsSync(best) && !result.interrupted;
  if (fromBest) loadWeights(best, params);
  else loadWeights(path.join(runDir, CHECKPOINT_FILE), params, { useEma: true });
  return { params, net, result, guidance: guidanceName, guidanceModel, bestStep: fromBest ? Number(readCheckpointMeta(best).step) : undefined, ...(init ? { initFrom: init.ref } : {}) };
}

/**
 * A one-line note when a guided restorer may meet G from another guidance than it was trained with:
 *  - another source than its training one (e.g. a restorer trained on the 'clean-oracle' stand-in fed
 *    the 'text' guidance);
 *  - another guidance model than the one it records (e.g. after the text-to-image model or the guidance
 *    was retrained);
 *  - a guidance model, while the restorer records none (saved before models were recorded): which one
 *    it was trained with is unknown.
 * Null when they match, or when nothing is compared (`source` undefined: G given as an image).
 * @param source the source's name (if known) and the model it generates G with
 */
export function guidanceModelMismatch(file: string, meta: Record<string, unknown>, source: (Pick<GuidanceSource, 'model'> & { name?: string }) | undefined): string | null {
  if (!source) return null;
  const wasName = typeof meta.guidance === 'string' ? meta.guidance : undefined;
  const was = meta.guidanceModel as GuidanceModelRef | null | undefined;
  const now = source.model;
  const from = now ? `${now.file} (sha256 ${now.sha256.slice(0, 12)}…)` : `source '${source.name}'`;
  if (wasName && source.name && wasName !== source.name) {
    return `note: ${file} was trained with the guidance source '${wasName}' but gets G from '${source.name}'${now ? ` (${now.file})` : ''}; its results are not those of a restorer trained on this guidance — retrain it for the paper's setting`;
  }
  if (!now) return null;
  if (!was) return `note: ${file} does not record which guidance model it was trained with; it gets G from ${from} — if it was trained with another, retrain it for the paper's setting`;
  if (was.sha256 === now.sha256) return null;
  return `note: ${file} was trained with the guidance of ${was.file} (sha256 ${was.sha256.slice(0, 12)}…) but gets G from ${now.file} (${now.sha256.slice(0, 12)}…); retrain it for the paper's setting`;
}

/** Write a trained restorer (current weights, float16 by default) with its resolved config. */
export function saveRestorer(file: string, params: Params, cfg: RestoreConfig, meta: Record<string, unknown> = {}, opts: { float16?: boolean } = {}): void {
  saveCheckpoint(file, { ...meta, kind: 'restorer', config: cfg }, params.snapshot(), { float16: opts.float16 ?? true });
}

/**
 * Load a restorer from a `saveRestorer` file or a training run's checkpoint (EMA weights when
 * present). `expect` refuses a checkpoint of another backbone or guidance setting; a parameter of
 * another shape fails naming the file and the parameter. All errors are user-facing.
 */
export function loadRestorer(file: string, expect: { backbone?: string; guidance?: boolean } = {}): { params: Params; net: GuidedRestorer; cfg: RestoreConfig; meta: Record<string, unknown> } {
  const { meta, tensors } = loadCheckpoint(file);
  if (meta.kind !== 'restorer' && meta.stage !== 'restore') throw new CheckpointError(`${file}: not a restorer checkpoint (kind ${JSON.stringify(meta.kind ?? meta.stage ?? null)})`);
  let cfg: RestoreConfig;
  try {
    cfg = parseRestoreConfig(meta.config, `${file}: config`);
  } catch (e) {
    throw new CheckpointError((e as Error).message);
  }
  const type = cfg.model.backbone.type;
  if (expect.backbone !== undefined && expect.backbone !== type) throw new CheckpointError(`${file}: a ${type} checkpoint, but backbone ${expect.backbone} was asked for`);
  if (expect.guidance !== undefined && expect.guidance !== cfg.model.guidance) {
    throw new CheckpointError(`${file}: ${cfg.model.guidance ? 'a guided' : 'an unguided'} checkpoint, but ${expect.guidance ? 'a guided' : 'an unguided'} model was asked for${expect.guidance ? '' : ' (--no-guidance)'}`);
  }
  let values: Named = tensors;
  if (meta.kind !== 'restorer') {
    const s = splitState(tensors);
    values = s.params;
    for (const [n, v] of s.ema) values.set(n, v);
  }
  const { params, net } = buildRestorer(cfg);
  try {
    params.assign(values, { source: file });
  } catch (e) {
    params.dispose();
    throw new CheckpointError((e as Error).message);
  }
  return { params, net, cfg, meta };
}
