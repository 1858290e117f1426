/**
 * Entry point of a data-parallel training worker (see ./parallel.ts). Builds its stage replica with
 * the factory, then answers shard requests: set weights → getBatch(step) → slice → loss → gradients.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../backend';
import type { Stage } from './loop';
import { stepRng } from './loop';
import { shards } from './parallel';
import type { ShardRequest, ShardResult, WorkerFactory } from './parallel';

async function main(): Promise<void> {
  const { factory, names } = workerData as { factory: WorkerFactory; names: string[] };
  await initBackend({ quiet: true });
  const mod = require(factory.module);
  const stage: Stage<unknown> = await mod[factory.fn](factory.args);
  if (!stage.sliceBatch) throw new Error(`${factory.module}:${factory.fn} built a stage without sliceBatch`);
  const vars = names.map((n) => stage.params.get(n));
  parentPort!.postMessage({ type: 'ready' });
  parentPort!.on('message', async (m: { type: string; req: ShardRequest }) => {
    if (m.type !== 'shard') return;
    try {
      const { step, seed, index, count, weights } = m.req;
      let off = 0;
      tf.tidy(() => {
        for (const v of vars) {
          v.assign(tf.tensor(weights.subarray(off, off + v.size), v.shape, 'float32'));
          off += v.size;
        }
      });
      const full = await stage.getBatch(step, stepRng(seed, step, 'batch'));
      const shard = shards(stage.batchSize!(full), count)[index];
      const out = new Float32Array(off);
      if (!shard) {
        stage.disposeBatch?.(full);
        const none: ShardResult = { step, start: 0, end: 0, grads: out, total: 0, parts: {} };
        parentPort!.postMessage({ type: 'result', result: none }, [out.buffer]);
        return;
      }
      const [start, end] = shard;
      const batch = stage.sliceBatch!(full, start, end);
      let parts: Record<string, tf.Scalar> = {};
      const { value, grads } = tf.variableGrads(() => {
        const l = stage.loss(batch, step, stepRng(seed, step, 'loss'));
        parts = Object.fromEntries(Object.entries(l.parts ?? {}).map(([k, v]) => [k, tf.keep(v.clone())]));
        return l.total;
      }, vars);
      if (batch !== full) stage.disposeBatch?.(batch);
      stage.disposeBatch?.(full);
      let o = 0;
      for (const v of vars) {
        const g = grads[v.name];
        if (g) out.set(g.dataSync() as Float32Array, o);
        o += v.size;
      }
      const result: ShardResult = {
        step,
        start,
        end,
        grads: out,
        total: value.dataSync()[0],
        parts: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, v.dataSync()[0]])),
      };
      tf.dispose([value, ...Object.values(grads), ...Object.values(parts)]);
      parentPort!.postMessage({ type: 'result', result }, [out.buffer]);
    } catch (e) {
      parentPort!.postMessage({ type: 'error', error: (e as Error).stack ?? String(e) });
    }
  });
}

main().catch((e) => parentPort!.postMessage({ type: 'error', error: (e as Error).stack ?? String(e) }));
