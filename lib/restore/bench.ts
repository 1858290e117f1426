/**
 * Timing of one restoration train step (forward + ℓ1 loss (Eq. 5) + gradients, no optimiser) per
 * backbone, with and without guidance. Run: `node dist/lib/restore/bench.js [batch] [size] [reps]`.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend';
import { Params } from '../models/params';
import { Rng } from '../util/rng';
import { BackboneConfig, GuidedRestorer } from './guided';
import { median } from '../metrics/stats';

export interface RestoreBenchRow {
  type: BackboneConfig['type'];
  guidance: boolean;
  params: number;
  matcherParams: number;
  forwardMs: number;
  stepMs: number;
}

function randomImages(rng: Rng, shape: [number, number, number, number]): tf.Tensor4D {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor4d(Float32Array.from({ length: n }, () => rng.random()), shape);
}

/** Median ms of `reps` calls after one warm-up. */
function timeIt(fn: () => void, reps: number): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

export function benchRestorers(opts: { batch?: number; size?: number; reps?: number; types?: BackboneConfig['type'][] } = {}): RestoreBenchRow[] {
  const b = opts.batch ?? 4;
  const s = opts.size ?? 64;
  const reps = opts.reps ?? 3;
  const rows: RestoreBenchRow[] = [];
  for (const type of opts.types ?? (['nafnet', 'restormer', 'promptir'] as const)) {
    for (const guidance of [false, true]) {
      const p = new Params();
      const net = new GuidedRestorer(p, 'r', { backbone: { type }, guidance }, new Rng(0));
      const rng = new Rng(1);
      const x = randomImages(rng, [b, s, s, 3]);
      const y = randomImages(rng, [b, s, s, 3]);
      const g = randomImages(rng, [b, s, s, 3]);
      const vars = p.trainable().map(([, v]) => v);
      const forwardMs = timeIt(() => tf.tidy(() => void net.call(x, guidance ? g : undefined).dataSync()), reps);
      const stepMs = timeIt(() => {
        const { value, grads } = tf.variableGrads(() => tf.mean(tf.abs(tf.sub(net.call(x, guidance ? g : undefined), y))) as tf.Scalar, vars);
        value.dataSync();
        tf.dispose([value, ...Object.values(grads)]);
      }, reps);
      rows.push({ type, guidance, params: p.count(), matcherParams: p.count(['r.masa']), forwardMs, stepMs });
      tf.dispose([x, y, g]);
      p.dispose();
    }
  }
  return rows;
}

if (require.main === module) {
  (async () => {
    await initBackend({ quiet: true });
    const [batch, size, reps] = process.argv.slice(2).map(Number);
    const rows = benchRestorers({ batch: batch || 4, size: size || 64, reps: reps || 3 });
    for (const r of rows) {
      console.log(`${r.type.padEnd(9)} guidance=${String(r.guidance).padEnd(5)} params ${r.params} (masa ${r.matcherParams})  forward ${r.forwardMs.toFixed(0)} ms  train step ${r.stepMs.toFixed(0)} ms`);
    }
  })();
}
