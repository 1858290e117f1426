/**
 * Data-parallel training on the two (or more) CPU cores: wasm runs on one thread per process, so
 * the loop can hand part of every batch to worker threads, each with its own wasm instance and a
 * replica of the stage. Every step: the main thread sends the current trainable weights first; each
 * worker rebuilds the same batch from (seed, step) — while the main thread builds it too —, takes its
 * shard, computes the gradients and sends them back; the main thread averages them (weighted by shard
 * size) and applies AdamW.
 * The result equals single-worker training with the same global batch up to float rounding
 * (test/train/parallel.test.ts).
 *
 * A stage that can run in workers provides `sliceBatch` (and draws all its randomness in getBatch,
 * not in loss), and the caller passes a `WorkerFactory`: a compiled module + exported function that
 * builds the same stage in the worker (frozen weights included).
 */
import { Worker } from 'node:worker_threads';
import * as path from 'node:path';
import { UserError } from '../util/errors';

export interface WorkerFactory {
  /** absolute path of a compiled module (e.g. `__filename` of a stage file) */
  module: string;
  /** exported async function (args) => Stage */
  fn: string;
  /** JSON-serialisable arguments */
  args: unknown;
}

export interface ShardRequest {
  step: number;
  seed: number;
  /** this worker's shard: `shards(batch size, count)[index]` of the batch it rebuilds (none when past the end) */
  index: number;
  count: number;
  /** trainable weights, concatenated in `names` order */
  weights: Float32Array;
}

export interface ShardResult {
  step: number;
  /** the shard's samples [start, end) (start = end: no shard, zero gradients) */
  start: number;
  end: number;
  /** gradients concatenated in `names` order (zeros where a parameter got none) */
  grads: Float32Array;
  total: number;
  parts: Record<string, number>;
}

interface Pending {
  resolve: (r: ShardResult) => void;
  reject: (e: Error) => void;
}

/** A pool of training workers, each holding a replica of the stage built by `factory`. */
export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<Worker, Pending>();
  private ready: Promise<void>;

  constructor(readonly count: number, factory: WorkerFactory, names: string[]) {
    const script = path.join(__dirname, 'worker.js');
    const readies: Array<Promise<void>> = [];
    for (let i = 0; i < count; i++) {
      const w = new Worker(script, { workerData: { factory, names } });
      this.workers.push(w);
      readies.push(
        new Promise<void>((resolve, reject) => {
          const onMsg = (m: { type: string; error?: string }) => {
            if (m.type === 'ready') {
              w.off('message', onMsg);
              resolve();
            } else if (m.type === 'error') reject(new Error(`training worker ${i}: ${m.error}`));
          };
          w.on('message', onMsg);
          w.once('error', (e) => reject(new Error(`training worker ${i}: ${e.message}`)));
        }),
      );
      w.on('message', (m: { type: string; result?: ShardResult; error?: string }) => {
        const p = this.pending.get(w);
        if (!p) return;
        if (m.type === 'result') {
          this.pending.delete(w);
          p.resolve(m.result!);
        } else if (m.type === 'error') {
          this.pending.delete(w);
          p.reject(new Error(`training worker ${i}: ${m.error}`));
        }
      });
      w.on('error', (e) => {
        const p = this.pending.get(w);
        this.pending.delete(w);
        p?.reject(new Error(`training worker ${i}: ${e.message}`));
      });
    }
    this.ready = Promise.all(readies).then(() => undefined);
  }

  async whenReady(): Promise<void> {
    await this.ready;
  }

  /** Run one shard on worker i. */
  run(i: number, req: ShardRequest): Promise<ShardResult> {
    const w = this.workers[i];
    return new Promise<ShardResult>((resolve, reject) => {
      this.pending.set(w, { resolve, reject });
      const weights = req.weights.slice(); // a copy per worker, transferred
      w.postMessage({ type: 'shard', req: { ...req, weights } }, [weights.buffer]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Split [0, n) into k contiguous shards as equal as possible: [[s0,e0], …]. */
export function shards(n: number, k: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let s = 0;
  for (let i = 0; i < k; i++) {
    const len = Math.floor(n / k) + (i < n % k ? 1 : 0);
    out.push([s, s + len]);
    s += len;
  }
  return out.filter(([a, b]) => b > a);
}

/** How many training workers to use: TDR_WORKERS, else the number of CPU cores (wasm only), at most `cap`. */
export function defaultWorkers(backend: string, cores: number, env = process.env, cap = 8): number {
  const v = env.TDR_WORKERS;
  if (v !== undefined && v !== '') {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UserError(`TDR_WORKERS must be a positive integer, got '${v}'`);
    return Math.min(n, cap);
  }
  return backend === 'wasm' ? Math.max(1, Math.min(cores, cap)) : 1;
}
