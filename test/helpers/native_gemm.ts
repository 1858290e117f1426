/**
 * Concurrent calls of the native kernels from several worker threads, compared bit for bit with the
 * same calls made by one thread (test/backend/native.test.ts). OpenBLAS's single-threaded sgemm
 * computes every entry in the same order whatever thread calls it, so any difference means that
 * concurrent calls disturbed each other, as a single-threaded OpenBLAS built without USE_LOCKING
 * does when the addon does not serialise its calls (native/src/tdr_native.c).
 *
 * The calls are the GEMM shapes of a demo text-to-image training step (UNet convolutions at 32×32,
 * attention and text-encoder matmuls): many small GEMMs, where calls overlap most often.
 * This file is both the test's helper (runConcurrentGemm) and the worker it starts.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { loadNative, NativeAddon } from '../../lib/backend/native';

interface Call {
  run: (addon: NativeAddon, inputs: Float32Array[], out: Float32Array) => void;
  inputs: number[];
  out: number;
}

const conv = (n: number, h: number, ci: number, co: number): Call[] => {
  const x = n * h * h * ci;
  const f = 9 * ci * co;
  const y = n * h * h * co;
  return [
    { inputs: [x, f], out: y, run: (a, [xs, fs], o) => a.conv2dForward(xs, n, h, h, ci, fs, 3, 3, co, 1, 1, 1, 1, h, h, o) },
    { inputs: [x, y], out: f, run: (a, [xs, dy], o) => a.conv2dBackpropFilter(xs, n, h, h, ci, dy, 3, 3, co, 1, 1, 1, 1, h, h, o) },
    { inputs: [y, f], out: x, run: (a, [dy, fs], o) => a.conv2dBackpropInput(dy, n, h, h, ci, fs, 3, 3, co, 1, 1, 1, 1, h, h, o) },
  ];
};

const matmul = (batch: number, m: number, n: number, k: number, ta: boolean, tb: boolean): Call => ({
  inputs: [batch * m * k, batch * k * n],
  out: batch * m * n,
  run: (a, [A, B], o) => a.matmul(A, B, o, batch, m, n, k, ta, tb, batch, batch),
});

/** The calls of one round: demo-T2I-like shapes (latent 32×32×4 → channels 32/64, attention at 16² and 8²). */
function calls(): Call[] {
  return [
    ...conv(2, 32, 4, 32),
    ...conv(2, 16, 32, 64),
    ...conv(2, 8, 64, 64),
    matmul(8, 256, 48, 16, false, true),
    matmul(8, 48, 16, 64, true, false),
    matmul(8, 64, 16, 64, true, false),
    matmul(8, 64, 64, 16, false, true),
    matmul(1, 2048, 64, 64, false, false),
    matmul(1, 288, 64, 256, true, false),
    matmul(256, 16, 16, 16, false, false), // 256 tiny GEMMs: the most calls per second
    matmul(64, 32, 8, 32, true, true),
  ];
}

/** Deterministic inputs in [-1, 1) for call i, input j. */
function inputsOf(c: Call, i: number): Float32Array[] {
  return c.inputs.map((len, j) => {
    let s = (i * 7919 + j * 104729 + 1) >>> 0;
    const a = new Float32Array(len);
    for (let e = 0; e < len; e++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      a[e] = s / 2 ** 31 - 1;
    }
    return a;
  });
}

function addonOrThrow(): NativeAddon {
  const { addon, reason } = loadNative();
  if (!addon) throw new Error(`native kernels not loaded: ${reason}`);
  return addon;
}

/** One thread's outputs of every call, once. */
function reference(addon: NativeAddon): Float32Array[] {
  return calls().map((c, i) => {
    const out = new Float32Array(c.out);
    c.run(addon, inputsOf(c, i), out);
    return out;
  });
}

/**
 * Start `workers` threads that each make every call `rounds` times at once with the others and count
 * the outputs that differ in any bit from one thread's. Returns the totals over all workers.
 */
export async function runConcurrentGemm(opts: { workers: number; rounds: number }): Promise<{ calls: number; mismatches: number }> {
  const ref = reference(addonOrThrow());
  const start = new Int32Array(new SharedArrayBuffer(4)); // all workers begin together
  const results = await Promise.all(
    Array.from({ length: opts.workers }, () => {
      const w = new Worker(__filename, { workerData: { ref, rounds: opts.rounds, start, workers: opts.workers } });
      return new Promise<{ calls: number; mismatches: number }>((resolve, reject) => {
        w.once('message', (m: { calls: number; mismatches: number } | { error: string }) => ('error' in m ? reject(new Error(m.error)) : resolve(m)));
        w.once('error', reject);
      }).finally(() => w.terminate());
    }),
  );
  return results.reduce((a, r) => ({ calls: a.calls + r.calls, mismatches: a.mismatches + r.mismatches }), { calls: 0, mismatches: 0 });
}

function workerMain(): void {
  const { ref, rounds, start, workers } = workerData as { ref: Float32Array[]; rounds: number; start: Int32Array; workers: number };
  try {
    const addon = addonOrThrow();
    const cs = calls();
    const ins = cs.map((c, i) => inputsOf(c, i));
    const outs = cs.map((c) => new Float32Array(c.out));
    const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    Atomics.add(start, 0, 1);
    while (Atomics.load(start, 0) < workers); // spin until every worker is here
    let mismatches = 0;
    for (let r = 0; r < rounds; r++)
      cs.forEach((c, i) => {
        outs[i].fill(Number.NaN);
        c.run(addon, ins[i], outs[i]);
        if (!same(outs[i], ref[i])) mismatches++;
      });
    parentPort!.postMessage({ calls: rounds * cs.length, mismatches });
  } catch (e) {
    parentPort!.postMessage({ error: (e as Error).stack ?? String(e) });
  }
}

if (!isMainThread && (workerData as { ref?: unknown } | null)?.ref) workerMain();
