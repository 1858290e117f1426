/**
 * The one training loop every stage uses (T2I autoencoder and UNet, M_i2t, M_clean, restorers).
 * nanoGPT-shaped: getBatch(step) → loss → grads → clip → AdamW at lrAt(step) → EMA → log →
 * checkpoint every K steps. Resumes exactly from the last checkpoint in the run folder: batches and
 * any in-loss randomness are functions of (seed, step) only (see `stepRng`), and the checkpoint holds
 * weights, AdamW moments, EMA weights, the step and the resolved config.
 *
 * Run folder (keep long runs outside the checkout):
 *   checkpoint.tdrc   latest state (atomic)        log.jsonl   one line per logged step
 *   config.json       the resolved config           (log lines past the checkpoint are dropped on resume)
 * Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a checkpoint and returns `interrupted: true`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { Params } from '../models/params';
import { AdamW } from './adamw';
import { loadCheckpoint, saveCheckpoint, Named, CheckpointError } from '../util/checkpoint';
import { lrAt } from './schedule';
import { Progress } from './progress';
import { Rng, hashString } from '../util/rng';
import { writeFileAtomic } from '../util/fsx';
import { WorkerPool, WorkerFactory, ShardResult, shards } from './parallel';
import { TrainConfigSchema } from './config';


/** One step's loss: `total` is optimised; `parts` (l_* names) are logged. All scalars. */
export interface StepLoss {
  total: tf.Scalar;
  parts?: Record<string, tf.Scalar>;
}

export interface Stage<B> {
  /** all parameters of the stage; frozen ones are not optimised */
  readonly params: Params;
  /** the batch for `step`: must depend only on (seed, step) for exact resume */
  getBatch(step: number, rng: Rng): B | Promise<B>;
  /** loss for a batch; synchronous tensor code (runs inside tf.variableGrads) */
  loss(batch: B, step: number, rng: Rng): StepLoss;
  disposeBatch?(batch: B): void;
  /** per-parameter LR multiplier and freezing by step (e.g. a matcher frozen for K iterations: return 0) */
  lrScale?(name: string, step: number): number;
  /**
   * Data-parallel training (./parallel.ts): samples [start, end) of a batch. A stage that has it must
   * draw all its randomness in getBatch (the loss must be a function of the batch alone) and have a
   * loss that is a mean over samples, so that the weighted mean of shard gradients is the batch gradient.
   */
  sliceBatch?(batch: B, start: number, end: number): B;
  /** number of samples in a batch (needed with sliceBatch) */
  batchSize?(batch: B): number;
}

export interface TrainOptions {
  runDir: string;
  /** resolved config of the whole stage, stored in checkpoints and config.json */
  meta: Record<string, unknown>;
  /** label for the progress bar */
  label?: string;
  quiet?: boolean;
  /** called after every logged step (notebooks update a live chart with it) */
  onLog?: (rec: LogRecord) => void | Promise<void>;
  /** stop after this many steps in this call (for tests of resume); default: until cfg.steps */
  maxStepsThisCall?: number;
  /**
   * A snapshot of a longer schedule: train until this absolute step (the LR schedule stays that of
   * cfg.steps) and return `interrupted: false` there. A run already past it is refused.
   */
  stopAt?: number;
  /** set by the caller to stop early (e.g. from a signal); checked after every step */
  shouldStop?: () => boolean;
  /** data-parallel: `workers` replicas in total (the main thread is one of them); needs stage.sliceBatch */
  parallel?: { workers: number; factory: WorkerFactory };
  /**
   * What must not change for a run to resume (stored in the checkpoint; a resume with a different
   * key is refused, naming the fields). Default: `meta.config` without bookkeeping (steps,
   * checkpointEvery, logEvery, sample) — so a run can be extended, never silently mixed.
   */
  resumeKey?: unknown;
  /**
   * Validation during training: every `every` steps (and at the last step) `run` measures the model
   * with its EMA weights (the weights that are shipped; the raw weights when EMA is off), the result is
   * appended to `val.jsonl` in the run folder, and when `best` names one of its numbers, the weights
   * with the best value so far are kept in `best.tdrc` (EMA weights as `param.*`, meta: step, value).
   */
  validate?: { every: number; run: (step: number) => Promise<Record<string, number>>; best?: { key: string; mode: 'max' | 'min' } };
  /**
   * Warm start: a new run (no checkpoint in runDir yet) begins at `step` of the schedule with these
   * weights, its EMA equal to them and fresh AdamW moments; the learning rate ramps linearly from 0 to the
   * schedule's value over `rampSteps` (default 100) so that the fresh moments do not throw the trained
   * weights off. Ignored when the run resumes from its own checkpoint. Used to continue a schedule from
   * a shipped model whose run folder is gone (`tdr train restore --init-from`).
   */
  init?: { params: Named; step: number; source: string; rampSteps?: number };
}

export const VAL_LOG_FILE = 'val.jsonl';
export const BEST_FILE = 'best.tdrc';

/** The validation records of a run folder (`val.jsonl`), in step order. */
export function readValLog(runDir: string): Array<{ step: number } & Record<string, number>> {
  return readJsonl(path.join(runDir, VAL_LOG_FILE));
}

/** The records of a JSON-lines file (none if it does not exist). @throws Error naming the file and line that is not JSON */
function readJsonl<T>(f: string): T[] {
  if (!fs.existsSync(f)) return [];
  return fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l, i) => {
      try {
        return JSON.parse(l) as T;
      } catch {
        throw new Error(`${f}: line ${i + 1} is not JSON`);
      }
    });
}

const BOOKKEEPING = new Set(['steps', 'checkpointEvery', 'logEvery', 'sample']);

/** A copy of `v` without bookkeeping keys at any depth (see TrainOptions.resumeKey). */
export function withoutBookkeeping(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutBookkeeping);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => !BOOKKEEPING.has(k)).map(([k, x]) => [k, withoutBookkeeping(x)]));
  return v;
}

/** Paths where two JSON values differ, e.g. ['text.contextLength: 32 → 48']. */
export function jsonDiff(a: unknown, b: unknown, at = ''): string[] {
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => jsonDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [`${at || '(root)'}: ${JSON.stringify(a)} → ${JSON.stringify(b)}`];
}

export interface LogRecord {
  step: number;
  lr: number;
  gradNorm: number;
  msPerStep: number;
  /**
   * where the step's time went (ms): building the batch on the main thread, the main thread's shard of
   * forward + backward, waiting for the data-parallel workers after it (0 without workers), and the
   * rest: sending the weights to the workers, averaging their gradients, AdamW and EMA
   */
  time?: { batch: number; grads: number; waitWorkers: number; update: number };
  [loss: `l_${string}`]: number;
}

export interface TrainResult {
  step: number;
  interrupted: boolean;
  resumedFrom: number;
  log: LogRecord[];
}

/** EMA decay used after step `step` (0-based): the configured decay, warmed up unless emaWarmup is false. */
export function emaDecayAt(step: number, cfg: { emaDecay: number; emaWarmup: boolean }): number {
  return cfg.emaWarmup ? Math.min(cfg.emaDecay, (1 + step) / (10 + step)) : cfg.emaDecay;
}

/** The RNG for step `step` of a run seeded `seed` (salted per use, e.g. 'batch' / 'loss'). */
export function stepRng(seed: number, step: number, salt: string): Rng {
  return new Rng((hashString(`${salt}:${seed}:${step}`) ^ Math.imul(step + 1, 0x9e3779b1)) >>> 0);
}

export const CHECKPOINT_FILE = 'checkpoint.tdrc';
export const LOG_FILE = 'log.jsonl';

/** Write a trained model's loss log beside it, atomically: `<model>.tdrc` → `<model>.log.jsonl` (notebooks plot it). */
export function writeLogBeside(modelFile: string, records: readonly object[], kind: 'log' | 'val' = 'log'): void {
  writeFileAtomic(logBeside(modelFile, kind), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
}

/** The loss log (`<model>.log.jsonl`) or validation log (`<model>.val.jsonl`) shipped beside a model file. */
export function logBeside(modelFile: string, kind: 'log' | 'val' = 'log'): string {
  return `${modelFile.replace(/\.tdrc$/, '')}.${kind}.jsonl`;
}

/** The records of the log shipped beside a model file (none when there is no such log). */
export function readLogBeside(modelFile: string, kind: 'log' | 'val' = 'log'): Array<{ step: number } & Record<string, number>> {
  return readJsonl(logBeside(modelFile, kind));
}

/** Read a run's log (the JSONL written by `train`). */
export function readLog(runDir: string): LogRecord[] {
  return readJsonl<LogRecord>(path.join(runDir, LOG_FILE));
}

/** Save params (+ optimiser, EMA) of a stage as a checkpoint. */
function saveState(file: string, params: Params, opt: AdamW, ema: Map<string, tf.Variable>, step: number, meta: Record<string, unknown>): void {
  const tensors: Named = new Map();
  for (const [n, v] of params.entries()) tensors.set(`param.${n}`, { shape: [...v.shape], data: v.dataSync() as Float32Array });
  for (const [k, v] of opt.state()) tensors.set(k, v);
  for (const [n, v] of ema) tensors.set(`ema.${n}`, { shape: [...v.shape], data: v.dataSync() as Float32Array });
  saveCheckpoint(file, { ...meta, step, adamT: opt.t, kind: 'train-state' }, tensors);
}

/** Split a train-state checkpoint into params / ema maps (names without prefixes). */
export function splitState(tensors: Named): { params: Named; ema: Named; adam: Named } {
  const params: Named = new Map();
  const ema: Named = new Map();
  const adam: Named = new Map();
  for (const [k, v] of tensors) {
    if (k.startsWith('param.')) params.set(k.slice(6), v);
    else if (k.startsWith('ema.')) ema.set(k.slice(4), v);
    else if (k.startsWith('adam.')) adam.set(k, v);
  }
  return { params, ema, adam };
}

/**
 * Train `stage` per `cfg`, resuming from `runDir/checkpoint.tdrc` when present.
 * The checkpoint's architecture config must match: a checkpoint of another shape fails naming the parameter.
 */
export async function train<B>(stage: Stage<B>, cfgIn: z.input<typeof TrainConfigSchema>, opts: TrainOptions): Promise<TrainResult> {
  const cfg = TrainConfigSchema.parse(cfgIn);
  const resumeKey = opts.resumeKey ?? withoutBookkeeping(opts.meta.config ?? opts.meta);
  fs.mkdirSync(opts.runDir, { recursive: true });
  const ckptFile = path.join(opts.runDir, CHECKPOINT_FILE);
  const logFile = path.join(opts.runDir, LOG_FILE);
  const opt = new AdamW({ beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weightDecay, clipNorm: cfg.clipNorm });
  const ema = new Map<string, tf.Variable>();
  let step = 0;
  // warm start (opts.init): the step it began at and its LR ramp, kept in the checkpoint for resumes
  let warm: { step: number; rampSteps: number; source: string } | undefined;

  // --- resume
  if (fs.existsSync(ckptFile)) {
    const { meta, tensors } = loadCheckpoint(ckptFile);
    if (meta.resumeKey !== undefined) {
      const diff = jsonDiff(meta.resumeKey, JSON.parse(JSON.stringify(resumeKey)));
      if (diff.length) {
        throw new CheckpointError(
          `${ckptFile}: this run was started with another configuration (${diff.slice(0, 5).join('; ')}${diff.length > 5 ? '; …' : ''}); ` +
            'resume it with its own configuration, or train into another --runs folder',
        );
      }
    }
    const s = splitState(tensors);
    stage.params.assign(s.params, { source: ckptFile });
    opt.load(s.adam, Number(meta.adamT ?? 0));
    for (const [n, v] of s.ema) ema.set(n, tf.tidy(() => tf.variable(tf.tensor(v.data, v.shape, 'float32'), false)));
    step = Number(meta.step);
    if (!Number.isInteger(step) || step < 0) throw new CheckpointError(`${ckptFile}: bad step ${String(meta.step)}`);
    const w = meta.warmStart as { step?: unknown; rampSteps?: unknown; source?: unknown } | undefined;
    if (w && typeof w === 'object') warm = { step: Number(w.step), rampSteps: Number(w.rampSteps), source: String(w.source) };
    // drop log lines past the checkpoint: they will be recomputed identically
    const kept = readLog(opts.runDir).filter((r) => r.step < step);
    writeFileAtomic(logFile, kept.map((r) => JSON.stringify(r) + '\n').join(''));
    const keptVal = readValLog(opts.runDir).filter((r) => r.step <= step);
    writeFileAtomic(path.join(opts.runDir, VAL_LOG_FILE), keptVal.map((r) => JSON.stringify(r) + '\n').join(''));
  } else {
    fs.rmSync(logFile, { force: true });
    fs.rmSync(path.join(opts.runDir, VAL_LOG_FILE), { force: true });
    fs.rmSync(path.join(opts.runDir, BEST_FILE), { force: true });
    if (opts.init) {
      if (!Number.isInteger(opts.init.step) || opts.init.step < 0 || opts.init.step >= cfg.steps) {
        throw new RangeError(`train: ${opts.init.source}: a warm start at step ${opts.init.step} is outside the schedule (0 to ${cfg.steps - 1})`);
      }
      stage.params.assign(opts.init.params, { source: opts.init.source });
      step = opts.init.step;
      warm = { step, rampSteps: opts.init.rampSteps ?? 100, source: opts.init.source };
    }
  }
  // warm start: the LR ramps up over rampSteps after the step it began at (a factor in (0, 1])
  const lrRamp = (s: number): number => (!warm || !(warm.rampSteps > 0) ? 1 : Math.min(1, (s - warm.step + 1) / warm.rampSteps));
  const resumedFrom = step;
  const lastStep = Math.min(cfg.steps, opts.stopAt ?? cfg.steps);
  if (opts.stopAt !== undefined && (!Number.isInteger(opts.stopAt) || opts.stopAt < 1)) throw new RangeError(`train: stopAt must be a positive integer, got ${opts.stopAt}`);
  if (step > lastStep) throw new CheckpointError(`${ckptFile}: this run is at step ${step}, past the step to stop at (${lastStep}); train into another --runs folder`);
  writeFileAtomic(path.join(opts.runDir, 'config.json'), JSON.stringify({ ...opts.meta, train: cfg }, null, 2) + '\n');

  const trainable = stage.params.trainable();
  const byVarName = new Map(trainable.map(([n, v]) => [v.name, n]));
  const paramMap = new Map(trainable);
  if (cfg.emaDecay > 0) for (const [n, v] of trainable) if (!ema.has(n)) ema.set(n, tf.tidy(() => tf.variable(v.clone(), false)));

  let stopRequested = false;
  const onSigint = () => {
    stopRequested = true;
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  const progress = new Progress(opts.label ?? 'train', cfg.steps, { startAt: step, quiet: opts.quiet });
  const log: LogRecord[] = [];
  const endStep = Math.min(lastStep, opts.maxStepsThisCall ? step + opts.maxStepsThisCall : lastStep);
  let lastLoss = '';

  // data-parallel workers (./parallel.ts): replicas of the stage in worker threads
  let pool: WorkerPool | null = null;
  const names = trainable.map(([n]) => n);
  const totalSize = trainable.reduce((a, [, v]) => a + v.size, 0);
  if (opts.parallel && opts.parallel.workers > 1) {
    if (!stage.sliceBatch || !stage.batchSize) throw new Error('train: parallel training needs a stage with sliceBatch and batchSize');
    pool = new WorkerPool(opts.parallel.workers - 1, opts.parallel.factory, names);
  }

  /** Gradients of the step's batch (split across the main thread and the workers), and where the time went (ms). */
  async function computeGrads(s: number): Promise<{ named: Map<string, tf.Tensor>; total: number; partValues: Record<string, number>; time: { batch: number; grads: number; waitWorkers: number } }> {
    const time = { batch: 0, grads: 0, waitWorkers: 0 };
    // the workers first: each rebuilds the batch from (seed, step) itself, while this thread builds it too
    let remote: Array<Promise<ShardResult>> = [];
    if (pool) {
      const weights = new Float32Array(totalSize);
      let at = 0;
      for (const [, v] of trainable) {
        weights.set(v.dataSync() as Float32Array, at);
        at += v.size;
      }
      remote = Array.from({ length: pool.count }, (_, i) => pool!.run(i, { step: s, seed: cfg.seed, index: i + 1, count: pool!.count + 1, weights }));
    }
    const tBatch = Date.now();
    const batch = await stage.getBatch(s, stepRng(cfg.seed, s, 'batch'));
    time.batch = Date.now() - tBatch;
    const lossRng = stepRng(cfg.seed, s, 'loss');
    const local = (b: B) => {
      let parts: Record<string, tf.Scalar> = {};
      const { value, grads } = tf.variableGrads(() => {
        const l = stage.loss(b, s, lossRng);
        parts = Object.fromEntries(Object.entries(l.parts ?? {}).map(([k, v]) => [k, tf.keep(v.clone())]));
        return l.total;
      }, trainable.map(([, v]) => v));
      const partValues = Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, v.dataSync()[0]]));
      const total = value.dataSync()[0];
      tf.dispose([value, ...Object.values(parts)]);
      const named = new Map<string, tf.Tensor>();
      for (const [vn, g] of Object.entries(grads)) named.set(byVarName.get(vn)!, g);
      return { named, total, partValues };
    };
    if (!pool) {
      const tGrads = Date.now();
      const r = local(batch);
      time.grads = Date.now() - tGrads;
      stage.disposeBatch?.(batch);
      return { ...r, time };
    }
    const n = stage.batchSize!(batch);
    const parts = shards(n, pool.count + 1);
    const mine = stage.sliceBatch!(batch, parts[0][0], parts[0][1]);
    const tGrads = Date.now();
    const r0 = local(mine);
    time.grads = Date.now() - tGrads;
    if (mine !== batch) stage.disposeBatch?.(mine);
    stage.disposeBatch?.(batch);
    const tWait = Date.now();
    const others = await Promise.all(remote);
    time.waitWorkers = Date.now() - tWait;
    // weighted mean over shards: each shard's loss is a mean over its samples
    const w0 = (parts[0][1] - parts[0][0]) / n;
    const sum = new Float32Array(totalSize);
    let off = 0;
    for (const [name, v] of trainable) {
      const g = r0.named.get(name);
      if (g) {
        const d = g.dataSync() as Float32Array;
        for (let i = 0; i < v.size; i++) sum[off + i] = w0 * d[i];
      }
      off += v.size;
    }
    let total = w0 * r0.total;
    const partValues: Record<string, number> = Object.fromEntries(Object.entries(r0.partValues).map(([k, v]) => [k, w0 * v]));
    others.forEach((o, i) => {
      const [a, b] = parts[i + 1] ?? [0, 0];
      if (o.start !== a || o.end !== b) throw new Error(`train: worker ${i + 1} computed samples [${o.start}, ${o.end}) of step ${s}, expected [${a}, ${b}) (its batch differs from this thread's)`);
      if (b === a) return;
      const w = (b - a) / n;
      for (let j = 0; j < totalSize; j++) sum[j] += w * o.grads[j];
      total += w * o.total;
      for (const [k, v] of Object.entries(o.parts)) partValues[k] = (partValues[k] ?? 0) + w * v;
    });
    tf.dispose([...r0.named.values()]);
    const named = new Map<string, tf.Tensor>();
    off = 0;
    for (const [name, v] of trainable) {
      named.set(name, tf.tensor(sum.subarray(off, off + v.size), v.shape, 'float32'));
      off += v.size;
    }
    return { named, total, partValues, time };
  }

  /** Measure with the EMA weights (swapped in, then back), log to val.jsonl, keep the best weights. */
  async function validate(s: number): Promise<void> {
    const v = opts.validate!;
    const backup = new Map<string, tf.Tensor>();
    for (const [n, e] of ema) {
      const p = paramMap.get(n);
      if (!p) continue;
      backup.set(n, tf.tidy(() => p.clone()));
      p.assign(e);
    }
    let values: Record<string, number>;
    try {
      values = await v.run(s);
    } finally {
      for (const [n, b] of backup) paramMap.get(n)!.assign(b);
      tf.dispose([...backup.values()]);
    }
    fs.appendFileSync(path.join(opts.runDir, VAL_LOG_FILE), JSON.stringify({ step: s, ...values }) + '\n');
    if (!v.best) return;
    const value = values[v.best.key];
    if (!Number.isFinite(value)) return;
    const prev = readValLog(opts.runDir).filter((r) => r.step < s && Number.isFinite(r[v.best!.key])).map((r) => r[v.best!.key]);
    const better = prev.length === 0 || (v.best.mode === 'max' ? value > Math.max(...prev) : value < Math.min(...prev));
    if (!better) return;
    const tensors: Named = new Map();
    for (const [n, p] of stage.params.entries()) {
      const e = ema.get(n) ?? p;
      tensors.set(`param.${n}`, { shape: [...e.shape], data: e.dataSync() as Float32Array });
    }
    saveCheckpoint(path.join(opts.runDir, BEST_FILE), { ...opts.meta, kind: 'train-best', step: s, best: { key: v.best.key, value } }, tensors);
  }

  try {
    if (pool) await pool.whenReady();
    while (step < endStep) {
      const t0 = Date.now();
      const { named, total, partValues, time: spent } = await computeGrads(step);
      const lr = lrAt(step, cfg) * lrRamp(step);
      const scale = stage.lrScale ? (n: string) => stage.lrScale!(n, step) : undefined;
      const gradNorm = opt.apply(paramMap, named, lr, scale);
      tf.dispose([...named.values()]);
      if (cfg.emaDecay > 0) {
        const d = emaDecayAt(step, cfg);
        tf.tidy(() => {
          for (const [n, e] of ema) {
            const p = paramMap.get(n);
            if (p) e.assign(tf.add(tf.mul(e, d), tf.mul(p, 1 - d)));
          }
        });
      }
      if (!Number.isFinite(total)) throw new Error(`train: loss is ${total} at step ${step} (lr ${lr}); last checkpoint is ${ckptFile}`);
      const msPerStep = Date.now() - t0;
      const rec: LogRecord = { step, lr, gradNorm, msPerStep, time: { ...spent, update: msPerStep - spent.batch - spent.grads - spent.waitWorkers }, l_total: total };
      for (const [k, v] of Object.entries(partValues)) rec[k.startsWith('l_') ? (k as `l_${string}`) : (`l_${k}` as const)] = v;
      step += 1;
      if (step % cfg.logEvery === 0 || step === endStep || step === 1) {
        fs.appendFileSync(logFile, JSON.stringify(rec) + '\n');
        log.push(rec);
        lastLoss = `l_total ${total.toFixed(4)}`;
        await opts.onLog?.(rec);
      }
      // let the event loop run: signal events (Ctrl-C, SIGTERM) are macrotasks, and a single-worker
      // step that only awaits resolved promises would otherwise never let them in
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (step % cfg.checkpointEvery === 0 || step === endStep || stopRequested || opts.shouldStop?.()) {
        saveState(ckptFile, stage.params, opt, ema, step, { ...opts.meta, resumeKey, ...(warm ? { warmStart: warm } : {}) });
      }
      if (opts.validate && (step % opts.validate.every === 0 || step === lastStep)) await validate(step);
      progress.update(step, lastLoss);
      if (stopRequested || opts.shouldStop?.()) break;
    }
  } finally {
    await pool?.close();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
    opt.dispose();
    for (const e of ema.values()) e.dispose();
  }
  return { step, interrupted: step < lastStep, resumedFrom, log };
}

/** Load weights from a train-state checkpoint into `params` (EMA weights when `useEma` and present). */
export function loadWeights(
  file: string,
  params: Params,
  opts: { useEma?: boolean; allowMissing?: boolean; only?: readonly string[]; loaded?: ReturnType<typeof loadCheckpoint> } = {},
): Record<string, unknown> {
  const { meta, tensors } = opts.loaded ?? loadCheckpoint(file); // `loaded`: the caller already read `file`
  const s = splitState(tensors);
  let values = s.params.size > 0 ? s.params : tensors;
  if (opts.useEma && s.ema.size > 0) for (const [n, v] of s.ema) values.set(n, v);
  if (opts.only) {
    // load only these modules (e.g. stage 1's M_i2t into a model whose M_clean is another variant):
    // every model parameter under them must be in the file; the rest of the model keeps its values
    const under = (n: string) => opts.only!.some((p) => n === p || n.startsWith(`${p}.`));
    values = new Map([...values].filter(([n]) => under(n)));
    const missing = params.names().filter((n) => under(n) && !values.has(n));
    if (missing.length > 0) throw new CheckpointError(`${file}: missing parameter${missing.length > 1 ? 's' : ''} ${missing.slice(0, 3).map((n) => `'${n}'`).join(', ')}${missing.length > 3 ? ', …' : ''} of ${opts.only.join(', ')}`);
  }
  try {
    params.assign(values, { source: file, allowMissing: opts.allowMissing || !!opts.only });
  } catch (e) {
    // a checkpoint of another shape or model is bad input (one line, exit 2), not an internal error
    throw new CheckpointError((e as Error).message);
  }
  return meta;
}
