/**
 * Train-step timings of the two demo models the pipeline trains longest, beside the reference U-Net
 * of ./bench_unet.ts (`tdr bench --t2i --promptir`):
 *   t2i       stage 0, the demo text-to-image model: text encoder + latent UNet, the noise-prediction
 *             loss of Eq. (1), gradient clipping, AdamW and EMA — the real training loop
 *             (lib/train/loop.ts) on the real stage (t2iStage), batch 16 of 32×32×4 latents. The
 *             latents and captions are random (the cost of a step does not depend on their values);
 *             the frozen autoencoder is built but not run, as in training from the latent cache.
 *   promptir  stage 3, the demo PromptIR restorer (restore preset demo) on 64-px crops, without and
 *             with guidance: forward + ℓ1 loss (Eq. 5) + gradients, as lib/restore/bench.ts times it
 *             (no optimiser update).
 * Medians of wall-clock times, and of this process's CPU time (user + system, all its threads) per
 * step: on a shared machine the wall time grows with the load of other processes, the CPU time much
 * less (for a one-thread backend it is close to the wall time on a quiet machine).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend';
import { t2iPreset } from '../t2i/presets';
import { TextToImage } from '../t2i/model';
import { LatentCache, t2iStage } from '../t2i/train';
import { buildVocab } from '../models/tokenizer';
import { Params } from '../models/params';
import { loopSettings } from '../train/config';
import { train } from '../train/loop';
import { GuidedRestorer } from '../restore/guided';
import { restorePreset } from '../restore/config';
import { Rng } from '../util/rng';
import { median } from '../metrics/stats';

export interface T2IStepBench {
  preset: string;
  batch: number;
  /** [h,w,C] of one latent */
  latent: [number, number, number];
  trainableParams: number;
  steps: number;
  warmup: number;
  /** median ms of one train step (batch, text encoder, UNet forward + backward, clip, AdamW, EMA) */
  stepMs: number;
  /** every timed step, ms (the loop's own msPerStep) */
  stepsMs: number[];
  /** median process CPU time per step, ms (between the loop's per-step log calls) */
  stepCpuMs: number;
  finalLoss: number;
}

export interface PromptIRStepBench {
  guidance: boolean;
  batch: number;
  size: number;
  params: number;
  reps: number;
  /** median ms of forward + ℓ1 loss + gradients, after one warm-up */
  stepMs: number;
  /** median process CPU time of one step, ms */
  stepCpuMs: number;
  /** median ms of the forward pass alone */
  forwardMs: number;
}

/** Process CPU time (user + system, every thread), ms. */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
}

const WORDS = ['red', 'old', 'small', 'wooden', 'stone', 'house', 'tree', 'boat', 'street', 'river', 'dog', 'garden', 'bridge', 'sky', 'rainy', 'hazy', 'noisy'];

/** `n` random captions "a photo of a w1 w2 w3" from a fixed word list. */
function randomCaptions(n: number, rng: Rng): string[] {
  return Array.from({ length: n }, () => `a photo of a ${Array.from({ length: 3 }, () => WORDS[rng.int(WORDS.length)]).join(' ')}`);
}

/**
 * Time `steps` train steps (after `warmup` untimed ones) of the T2I latent UNet with `preset`'s sizes.
 * @throws Error when steps < 1 or warmup < 0 (or not integers)
 */
export async function benchT2IStep(opts: { preset?: string; batch?: number; steps?: number; warmup?: number } = {}): Promise<T2IStepBench> {
  const steps = opts.steps ?? 5;
  const warmup = opts.warmup ?? 1;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`benchT2IStep: steps must be an integer ≥ 1, got ${steps}`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`benchT2IStep: warmup must be an integer ≥ 0, got ${warmup}`);
  await initBackend();
  const base = t2iPreset(opts.preset ?? 'demo');
  const batch = opts.batch ?? base.unetTrain.batch;
  // the caption path of the step (text encoder + UNet), as the demo preset trains; a preset with `words` (ci) is timed without them
  const cfg = { ...base, words: undefined, cropScales: undefined, unetTrain: { ...base.unetTrain, batch } };
  const rng = new Rng(7);
  const n = 64;
  const captions = randomCaptions(n, rng);
  const model = new TextToImage(cfg, buildVocab(captions), new Params(), 1);
  model.params.freeze(['ae']);
  const s = model.latentSize;
  const c = cfg.autoencoder.latentChannels;
  const z = new Float32Array(n * s * s * c);
  for (let i = 0; i < z.length; i++) z[i] = rng.normal();
  const cache: LatentCache = {
    items: captions.map((caption, i) => ({ photoId: `bench${i}`, crop: 0, task: 'clean', caption, seed: 0 })),
    z,
    shape: [n, s, s, c],
    latentScale: 1,
  };
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdr-bench-t2i-'));
  try {
    const total = warmup + steps;
    const cpu: number[] = [cpuMs()];
    const r = await train(
      t2iStage(model, cfg, cache),
      { ...loopSettings(cfg.unetTrain), steps: total, logEvery: 1, checkpointEvery: total },
      { runDir, meta: { stage: 't2i-bench', config: cfg }, quiet: true, onLog: () => void cpu.push(cpuMs()) },
    );
    const timed = r.log.slice(warmup).map((x) => x.msPerStep);
    const timedCpu = cpu.slice(1).map((c, i) => c - cpu[i]).slice(warmup);
    return {
      preset: cfg.preset,
      batch,
      latent: [s, s, c],
      trainableParams: model.params.trainable().reduce((a, [, v]) => a + v.size, 0),
      steps,
      warmup,
      stepMs: median(timed),
      stepsMs: timed,
      stepCpuMs: median(timedCpu),
      finalLoss: r.log[r.log.length - 1].l_total,
    };
  } finally {
    model.params.dispose();
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

/** Time the demo PromptIR restorer's train step (batch 8, 64 px by default), unguided and guided. */
export async function benchPromptIRStep(opts: { batch?: number; size?: number; reps?: number } = {}): Promise<PromptIRStepBench[]> {
  await initBackend();
  const batch = opts.batch ?? 8;
  const size = opts.size ?? 64;
  const reps = opts.reps ?? 5;
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`benchPromptIRStep: reps must be an integer ≥ 1, got ${reps}`);
  const rows: PromptIRStepBench[] = [];
  for (const guidance of [false, true]) {
    const { model } = restorePreset('demo', { backbone: 'promptir', guidance, tasks: 'all-in-one' });
    const p = new Params();
    const net = new GuidedRestorer(p, 'r', model, new Rng(0));
    const rng = new Rng(1);
    const image = (): tf.Tensor4D => tf.tensor4d(Float32Array.from({ length: batch * size * size * 3 }, () => rng.random()), [batch, size, size, 3]);
    const [x, y, g] = [image(), image(), image()];
    const vars = p.trainable().map(([, v]) => v);
    /** median wall and CPU ms of `reps` calls after one warm-up */
    const time = (fn: () => void): { wall: number; cpu: number } => {
      fn();
      const wall: number[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < reps; i++) {
        const [t0, c0] = [performance.now(), cpuMs()];
        fn();
        wall.push(performance.now() - t0);
        cpu.push(cpuMs() - c0);
      }
      return { wall: median(wall), cpu: median(cpu) };
    };
    try {
      const forward = time(() => tf.tidy(() => void net.call(x, guidance ? g : undefined).dataSync()));
      const step = time(() => {
        const { value, grads } = tf.variableGrads(() => tf.mean(tf.abs(tf.sub(net.call(x, guidance ? g : undefined), y))) as tf.Scalar, vars);
        value.dataSync();
        tf.dispose([value, ...Object.values(grads)]);
      });
      rows.push({ guidance, batch, size, params: p.count(), reps, stepMs: step.wall, stepCpuMs: step.cpu, forwardMs: forward.wall });
    } finally {
      tf.dispose([x, y, g]);
      p.dispose();
    }
  }
  return rows;
}
