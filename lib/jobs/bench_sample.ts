/**
 * Benchmark of text-to-image sampling (the project's target: a ≥ 128×128 image in ≤ 10 s on the
 * 2-core machine): load a t2i checkpoint, generate with its preset's DDIM steps and CFG scale,
 * report the median wall time over a few seeds.
 */
import { TextToImage } from '../t2i/model';

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
    const times: number[] = [];
    for (let i = 0; i < (opts.runs ?? 3); i++) {
      const t0 = performance.now();
      await model.generate([prompt], { seed: i + 1 });
      times.push(performance.now() - t0);
    }
    const sorted = [...times].sort((a, b) => a - b);
    return {
      checkpoint,
      imageSize: model.cfg.imageSize,
      steps: model.cfg.sample.steps,
      cfgScale: model.cfg.sample.cfgScale,
      sampleMs: sorted[Math.floor(sorted.length / 2)],
      samplesMs: times,
      targetMs: 10_000,
    };
  } finally {
    model.dispose();
  }
}
