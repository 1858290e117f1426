/**
 * Benchmark: one training step of the reference U-Net (below; PyTorch twin: lib/jobs/peer/unet_step.py), plus conv2d micro-timings.
 *
 * The reference U-Net — 15 convs, every 3×3 conv 'same' with bias and ReLU (tf.fused.conv2d):
 *   enc1 3→32→32 [64²], maxPool 2, enc2 32→64→64 [32²], pool, enc3 64→128→128 [16²], pool,
 *   bottleneck 128→128→128 [8²], nearest-up ×2 + concat(enc3) 256→128→128,
 *   up + concat(enc2) 192→64→64, up + concat(enc1) 96→32→32, 1×1 32→3 (bias, no activation).
 * Batch 8, 64×64×3 random input, L1 loss to a random target, Adam lr 1e-3 (the project's AdamW without decay or clipping).
 * Forward ≈ 9.42 GFLOP; a train step ≈ 3× that (forward, dx, dW).
 *
 * Timings are wall-clock medians; on a shared machine they vary with the load of other processes.
 */
import * as tf from '@tensorflow/tfjs';
import { AdamW } from '../train/adamw';
import { initBackend } from '../backend';
import { median } from '../metrics/stats';

export interface BenchOptions {
  /** timed train steps (median reported); default 5 */
  steps?: number;
  /** untimed train steps first (kernel setup, XNNPACK operator caches); default 1 */
  warmup?: number;
  /** conv2d micro-timings (forward, backprop filter, backprop input); default true */
  micro?: boolean;
}

export interface ConvMicro {
  /** x [N,H,W,Ci] of the timed conv */
  x: number[];
  /** filter [fh,fw,Ci,Co] */
  filter: number[];
  /** GFLOP of one forward conv (= of each backward half) */
  gflop: number;
  forwardMs: number;
  backpropFilterMs: number;
  backpropInputMs: number;
  forwardGflops: number;
  backpropFilterGflops: number;
  backpropInputGflops: number;
}

export interface BenchResult {
  backend: string;
  threads: number;
  simd?: boolean;
  /** wasm with the native kernels: OpenBLAS threads per GEMM */
  blasThreads?: number;
  backendDetail: string;
  /** 'native' when the OpenBLAS kernels (lib/backend/native.ts) served conv/matmul, else 'wasm' (or the backend's own) */
  kernels: 'native' | 'wasm' | 'backend';
  tfjsVersion: string;
  batch: number;
  size: number;
  steps: number;
  warmup: number;
  /** median wall time of one train step (forward + backward + Adam update), ms */
  unetStepMs: number;
  /** every timed step, ms */
  unetStepsMs: number[];
  /** median process CPU time (user + system, all threads) of one train step, ms: less sensitive to other processes' load than the wall time */
  unetStepCpuMs: number;
  /** forward GFLOP of the U-Net at this batch and size */
  forwardGflop: number;
  /** 3 × forward GFLOP / median step time */
  stepGflops: number;
  /** L1 loss of the last step */
  finalLoss: number;
  conv?: ConvMicro;
  /** highest process RSS seen while benchmarking, MiB */
  peakRssMiB: number;
  /** tf.memory().numTensors before the bench and after everything it made was disposed */
  tensorsBefore: number;
  tensorsAfter: number;
  /** numTensors after the last step minus after the first one (a leak per step shows here) */
  tensorsPerStepDrift: number;
}

const BATCH = 8;
const SIZE = 64;

/** [in, out, kernel] for the 15 convs, in call order. */
const CONVS: Array<[number, number, number]> = [
  [3, 32, 3], [32, 32, 3],
  [32, 64, 3], [64, 64, 3],
  [64, 128, 3], [128, 128, 3],
  [128, 128, 3], [128, 128, 3],
  [256, 128, 3], [128, 128, 3],
  [192, 64, 3], [64, 64, 3],
  [96, 32, 3], [32, 32, 3],
  [32, 3, 1],
];

/** Spatial size each conv runs at (input 64²): enc 64,32,16; bottleneck 8; dec 16,32,64. */
const CONV_SIZE = [64, 64, 32, 32, 16, 16, 8, 8, 16, 16, 32, 32, 64, 64, 64];

/** GFLOP of the forward pass (2·multiply-adds of the convs; pooling etc. neglected). */
export function unetForwardGflop(batch = BATCH, size = SIZE): number {
  let flop = 0;
  CONVS.forEach(([ci, co, k], i) => {
    const hw = (CONV_SIZE[i] * size) / SIZE;
    flop += 2 * batch * hw * hw * ci * co * k * k;
  });
  return flop / 1e9;
}

interface Layer {
  w: tf.Variable;
  b: tf.Variable;
}

/** Variables for the 15 convs; tidy frees the initial values (a Variable keeps its own ref). */
function makeLayers(): Layer[] {
  return CONVS.map(([ci, co, k], i) => tf.tidy(() => ({
    // He init: N(0, 2/fanIn)
    w: tf.variable(tf.randomNormal([k, k, ci, co], 0, Math.sqrt(2 / (k * k * ci)), 'float32', 100 + i), true, `unet_w${i}`),
    b: tf.variable(tf.zeros([co]), true, `unet_b${i}`),
  })));
}

/**
 * @param x [N,64,64,3]
 * @returns [N,64,64,3]
 */
function unetForward(layers: Layer[], x: tf.Tensor4D): tf.Tensor4D {
  let i = 0;
  const conv = (t: tf.Tensor4D, relu = true): tf.Tensor4D =>
    tf.fused.conv2d({ x: t, filter: layers[i].w as tf.Tensor4D, bias: layers[i++].b, strides: 1, pad: 'same', activation: relu ? 'relu' : 'linear' });
  const pool = (t: tf.Tensor4D): tf.Tensor4D => tf.maxPool(t, 2, 2, 'valid');
  const up = (t: tf.Tensor4D): tf.Tensor4D => tf.image.resizeNearestNeighbor(t, [t.shape[1] * 2, t.shape[2] * 2]);
  const e1 = conv(conv(x)); // [N,64,64,32]
  const e2 = conv(conv(pool(e1))); // [N,32,32,64]
  const e3 = conv(conv(pool(e2))); // [N,16,16,128]
  const bott = conv(conv(pool(e3))); // [N,8,8,128]
  const d3 = conv(conv(tf.concat([up(bott), e3], 3))); // [N,16,16,256] → 128
  const d2 = conv(conv(tf.concat([up(d3), e2], 3))); // [N,32,32,192] → 64
  const d1 = conv(conv(tf.concat([up(d2), e1], 3))); // [N,64,64,96] → 32
  return conv(d1, false); // 1×1 → [N,64,64,3]
}

class RssSampler {
  peak = process.memoryUsage().rss;
  private timer = setInterval(() => this.sample(), 25).unref();
  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
  }
  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }
}

/** Median wall time of `f` (its result awaited then disposed) over `reps` runs after one warm-up. */
async function timeOp(f: () => tf.Tensor, reps: number, rss: RssSampler): Promise<number> {
  const times: number[] = [];
  for (let r = -1; r < reps; r++) {
    const t0 = performance.now();
    const out = f();
    await out.data();
    const dt = performance.now() - t0;
    out.dispose();
    rss.sample();
    if (r >= 0) times.push(dt);
  }
  return median(times);
}

/** conv2d 3×3 64→64 'same' on [8,64,64,64]: forward and both backward kernels. */
async function convMicro(rss: RssSampler, reps = 3): Promise<ConvMicro> {
  const xShape = [BATCH, 64, 64, 64] as [number, number, number, number];
  const fShape = [3, 3, 64, 64] as [number, number, number, number];
  const x = tf.randomNormal(xShape, 0, 1, 'float32', 1) as tf.Tensor4D;
  const f = tf.randomNormal(fShape, 0, 0.05, 'float32', 2) as tf.Tensor4D;
  const dy = tf.randomNormal(xShape, 0, 1, 'float32', 3) as tf.Tensor4D;
  try {
    const attrs = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined };
    const forwardMs = await timeOp(() => tf.conv2d(x, f, 1, 'same'), reps, rss);
    const backpropFilterMs = await timeOp(
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: fShape } as never) as tf.Tensor,
      reps,
      rss,
    );
    const backpropInputMs = await timeOp(
      () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: f }, { ...attrs, inputShape: xShape } as never) as tf.Tensor,
      reps,
      rss,
    );
    const gflop = (2 * BATCH * 64 * 64 * 64 * 64 * 9) / 1e9;
    return {
      x: xShape,
      filter: fShape,
      gflop,
      forwardMs,
      backpropFilterMs,
      backpropInputMs,
      forwardGflops: gflop / (forwardMs / 1e3),
      backpropFilterGflops: gflop / (backpropFilterMs / 1e3),
      backpropInputGflops: gflop / (backpropInputMs / 1e3),
    };
  } finally {
    tf.dispose([x, f, dy]);
  }
}

/**
 * Time train steps of the reference U-Net on the backend `initBackend` picks.
 * @throws Error when steps < 1 or warmup < 0 (or not integers)
 */
export async function runBench(opts: BenchOptions = {}): Promise<BenchResult> {
  const steps = opts.steps ?? 5;
  const warmup = opts.warmup ?? 1;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`runBench: steps must be an integer ≥ 1, got ${steps}`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`runBench: warmup must be an integer ≥ 0, got ${warmup}`);
  const info = await initBackend();
  const rss = new RssSampler();
  const tensorsBefore = tf.memory().numTensors;
  const layers = makeLayers();
  // the project's optimizer (lib/train/adamw.ts, what every training run uses) as plain Adam: no decay,
  // no clipping, PyTorch's defaults — the peer runs torch.optim.Adam(lr 1e-3)
  const optimizer = new AdamW({ beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, clipNorm: 0 });
  const x = tf.randomUniform([BATCH, SIZE, SIZE, 3], 0, 1, 'float32', 11) as tf.Tensor4D;
  const target = tf.randomUniform([BATCH, SIZE, SIZE, 3], 0, 1, 'float32', 12) as tf.Tensor4D;
  const stepsMs: number[] = [];
  const stepsCpuMs: number[] = [];
  let finalLoss = NaN;
  let afterFirst = 0;
  let tensorsPerStepDrift = 0;
  let conv: ConvMicro | undefined;
  try {
    const varList = layers.flatMap((l) => [l.w, l.b]);
    const byName = new Map(varList.map((v) => [v.name, v]));
    for (let s = 0; s < warmup + steps; s++) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const { value, grads } = tf.variableGrads(() => tf.tidy(() => tf.mean(tf.abs(tf.sub(unetForward(layers, x), target)))) as tf.Scalar, varList);
      optimizer.apply(byName, new Map(Object.entries(grads)), 1e-3);
      tf.dispose(Object.values(grads));
      finalLoss = (await value.data())[0];
      value.dispose();
      const dt = performance.now() - t0;
      const dc = process.cpuUsage(c0);
      rss.sample();
      if (s >= warmup) {
        stepsMs.push(dt);
        stepsCpuMs.push((dc.user + dc.system) / 1e3);
      }
      if (s === 0) afterFirst = tf.memory().numTensors;
    }
    tensorsPerStepDrift = tf.memory().numTensors - afterFirst;
    if (opts.micro ?? true) conv = await convMicro(rss);
  } finally {
    optimizer.dispose();
    tf.dispose([x, target]);
    for (const l of layers) tf.dispose([l.w, l.b]);
    rss.stop();
  }
  const unetStepMs = median(stepsMs);
  const forwardGflop = unetForwardGflop();
  return {
    backend: info.name,
    threads: info.threads,
    ...(info.simd != null ? { simd: info.simd } : {}),
    ...(info.blasThreads != null ? { blasThreads: info.blasThreads } : {}),
    backendDetail: info.detail,
    kernels: info.name !== 'wasm' ? 'backend' : info.detail.includes('native kernels') ? 'native' : 'wasm',
    tfjsVersion: tf.version.tfjs,
    batch: BATCH,
    size: SIZE,
    steps,
    warmup,
    unetStepMs,
    unetStepsMs: stepsMs,
    unetStepCpuMs: median(stepsCpuMs),
    forwardGflop,
    stepGflops: (3 * forwardGflop) / (unetStepMs / 1e3),
    finalLoss,
    ...(conv ? { conv } : {}),
    peakRssMiB: rss.peak / 2 ** 20,
    tensorsBefore,
    tensorsAfter: tf.memory().numTensors,
    tensorsPerStepDrift,
  };
}
