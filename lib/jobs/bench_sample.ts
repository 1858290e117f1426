/**
 * Benchmarks of generation: text-to-image sampling (the project's target: a ≥ 128×128 image in ≤ 10 s
 * on the 2-core machine; load a t2i checkpoint, generate with its preset's DDIM steps and CFG scale,
 * report the median wall time over a few seeds), and one guidance image from one degraded input
 * (`benchGuidance`; target ≤ 2 s per image).
 */
import * as tf from '@tensorflow/tfjs';
import { TextToImage } from '../t2i/model';
import type { GuidanceModel } from '../guidance/model';
import type { RGBImage } from '../data/image';
import { median } from '../metrics/stats';

/** Wall ms of `n` calls of `fn(i)`, one after another, and their median. */
async function timeRuns(n: number, fn: (i: number) => Promise<unknown>): Promise<{ median: number; times: number[] }> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    times.push(performance.now() - t);
  }
  return { median: median(times), times };
}

export interface SampleBench {
  checkpoint: string;
  imageSize: number;
  steps: number;
  cfgScale: number;
  /** median ms per image (text encoding + DDIM loop + decoding), after one warm-up */
  sampleMs: number;
  samplesMs: number[];
  /** the target (10 s) */
  targetMs: number;
}

export async function benchSample(checkpoint: string, opts: { runs?: number } = {}): Promise<SampleBench> {
  const model = TextToImage.load(checkpoint);
  try {
    const prompt = 'a photo of a red apple on a table';
    await model.generate([prompt], { seed: 0, steps: 2 }); // warm-up: kernels compiled, weights on the backend
    const { median: medianMs, times } = await timeRuns(opts.runs ?? 3, (i) => model.generate([prompt], { seed: i + 1 }));
    return {
      checkpoint,
      imageSize: model.cfg.imageSize,
      steps: model.cfg.sample.steps,
      cfgScale: model.cfg.sample.cfgScale,
      sampleMs: medianMs,
      samplesMs: times,
      targetMs: 10_000,
    };
  } finally {
    model.dispose();
  }
}

export interface GuidanceBench {
  checkpoint: string;
  imageSize: number;
  /** DDIM schedule steps, CFG scale and SDEdit start strength (null: from pure noise) of the guidance config */
  steps: number;
  cfgScale: number;
  fromLayout: number | null;
  /** loading the guidance model and its text-to-image model */
  loadMs: number;
  /** the first image of the process (kernels compiled, weights uploaded) */
  firstMs: number;
  /** median ms per image afterwards, and every run */
  guideMs: number;
  guidesMs: number[];
  /** the target of `tdr guide` per image (2 s) */
  targetMs: number;
  /**
   * One DDIM step (the UNet's CFG pair on the input's context) with the sampling memo (what `tdr guide`
   * runs) and without it, timed in alternation (median ms of `pairs` pairs), and the kernels each runs
   * (tf.profile; independent of the machine's load).
   */
  step: { memoMs: number; plainMs: number; pairs: number; memoKernels: number; plainKernels: number };
}

/**
 * Benchmark of one guidance image G(E'_txt) from one degraded input, as `tdr guide` makes it (paper
 * Sec. 3.2): τi → M_i2t (Eq. 2) → M_clean (Eq. 3) → DDIM with classifier-free guidance (the conditional
 * and unconditional passes batched) → decode. Input: the first validation photo's centre crop at the
 * model's size with Gaussian noise σ 25. Reports loading, the first image of the process, and the
 * median over `runs` more (other seeds, so nothing is cached).
 */
export async function benchGuidance(checkpoint: string, opts: { runs?: number } = {}): Promise<GuidanceBench> {
  const { loadGuidancePair, generateGuidance } = await import('../guidance/pipeline');
  const { loadPhotos, centerCrop } = await import('../data/patches');
  const { degrade } = await import('../data/degrade');
  const { clip01 } = await import('../data/image');
  const t0 = performance.now();
  const { guidance, t2i } = loadGuidancePair(checkpoint);
  const loadMs = performance.now() - t0;
  try {
    const [photo] = await loadPhotos('val', t2i.cfg.photoShortSide, 1);
    const x = clip01(degrade(centerCrop(photo.image, t2i.cfg.imageSize), { task: 'noise', sigma: 25, seed: 0 }).image);
    const t1 = performance.now();
    await generateGuidance(guidance, t2i, [x], { seed: 1 });
    const firstMs = performance.now() - t1;
    const { median: medianMs, times } = await timeRuns(opts.runs ?? 3, (i) => generateGuidance(guidance, t2i, [x], { seed: i + 2 }));
    const step = await stepAB(guidance, t2i, x);
    return {
      checkpoint,
      imageSize: t2i.cfg.imageSize,
      steps: guidance.cfg.sample.steps,
      cfgScale: guidance.cfg.sample.cfgScale,
      fromLayout: guidance.cfg.sample.fromLayout ?? null,
      loadMs,
      firstMs,
      guideMs: medianMs,
      guidesMs: times,
      targetMs: 2_000,
      step,
    };
  } finally {
    guidance.dispose();
    t2i.dispose();
  }
}

/** `GuidanceBench.step`: one CFG step of x's context with and without the sampling memo, in alternation. */
async function stepAB(guidance: GuidanceModel, t2i: TextToImage, x: RGBImage, pairs = 10): Promise<GuidanceBench['step']> {
  const { imageWords } = await import('../guidance/pipeline');
  const { wordsToContext } = await import('../guidance/model');
  const { cfgEps } = await import('../models/diffusion');
  const { TensorMemo } = await import('../models/nn');
  const w = await imageWords(guidance, [x]);
  const ctx = wordsToContext(t2i, w.clean);
  const uncond = t2i.context(['']);
  const s = t2i.latentSize;
  const z = tf.randomNormal([1, s, s, t2i.cfg.unet.latentChannels], 0, 1, 'float32', 3) as tf.Tensor4D;
  const memo = new TensorMemo();
  const once = (m?: InstanceType<typeof TensorMemo>) => () => {
    const eps = cfgEps(t2i.unet, z, 500, ctx, uncond, guidance.cfg.sample.cfgScale, { kvOverride: guidance.kv.map, memo: m });
    eps.dataSync();
    eps.dispose();
  };
  try {
    once(memo)();
    once()();
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < pairs; i++) {
      let t = performance.now();
      once(memo)();
      a.push(performance.now() - t);
      t = performance.now();
      once()();
      b.push(performance.now() - t);
    }
    const kernels = async (f: () => void) => (await tf.profile(f)).kernels.length;
    return { memoMs: median(a), plainMs: median(b), pairs, memoKernels: await kernels(once(memo)), plainKernels: await kernels(once()) };
  } finally {
    memo.dispose();
    tf.dispose([w.raw, w.clean, ctx, uncond, z]);
  }
}
