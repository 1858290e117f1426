/**
 * A tiny regression stage that can run in training workers (data-parallel tests): all randomness
 * is drawn in getBatch, the loss is a mean over samples, and sliceBatch takes a sub-batch.
 */
import * as tf from '@tensorflow/tfjs';
import { Params, init } from '../../lib/models/params';
import { Stage } from '../../lib/train/loop';
import { Rng } from '../../lib/util/rng';

export interface MlpBatch {
  x: Float32Array;
  y: Float32Array;
  n: number;
}

export async function buildMlpStage(args: { seed: number; batch: number }): Promise<Stage<MlpBatch>> {
  const params = new Params();
  const rng = new Rng(args.seed);
  params.add('l1.w', [4, 16], init.heUniform(rng, 4));
  params.add('l1.b', [16], init.zeros());
  params.add('l2.w', [16, 2], init.heUniform(rng, 16));
  params.add('l2.b', [2], init.zeros());
  return {
    params,
    getBatch(_step, r) {
      const n = args.batch;
      const x = new Float32Array(n * 4).map(() => r.normal());
      const y = new Float32Array(n * 2);
      for (let i = 0; i < n; i++) {
        y[i * 2] = Math.sin(x[i * 4]) - x[i * 4 + 1];
        y[i * 2 + 1] = x[i * 4 + 2] * x[i * 4 + 3];
      }
      return { x, y, n };
    },
    sliceBatch(b, start, end) {
      return { x: b.x.slice(start * 4, end * 4), y: b.y.slice(start * 2, end * 2), n: end - start };
    },
    batchSize(b) {
      return b.n;
    },
    loss(b) {
      const x = tf.tensor2d(b.x, [b.n, 4]);
      const y = tf.tensor2d(b.y, [b.n, 2]);
      const h = tf.relu(tf.add(tf.matMul(x, params.get('l1.w')), params.get('l1.b')));
      const yHat = tf.add(tf.matMul(h, params.get('l2.w')), params.get('l2.b'));
      const l = tf.mean(tf.square(tf.sub(yHat, y))) as tf.Scalar;
      return { total: l, parts: { l_mse: l } };
    },
  };
}
