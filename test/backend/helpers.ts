/**
 * Helpers for the backend tests: run one computation on the backend under test and on the cpu
 * oracle, compare. The cpu backend's ResizeNearestNeighborGrad is patched first (wrong for batch > 1 in 4.22).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, patchCpuResizeNearestNeighborGrad } from '../../lib/backend';
import { resolvedBackendSync } from '../helpers/backend';

export type CheckedBackend = 'wasm' | 'tensorflow';

/**
 * The backend the gradient suite (gradients.test.ts) checks: the one the resolver picks (TDR_BACKEND,
 * else tensorflow where tfjs-node loads, else wasm with the tdr kernels of lib/backend/kernels.ts and
 * native.ts). `TDR_BACKEND=wasm` checks wasm where tensorflow would be the default.
 */
export const UNDER_TEST: CheckedBackend = checked(process.env.TDR_BACKEND || resolvedBackendSync());

function checked(name: string): CheckedBackend {
  if (name !== 'wasm' && name !== 'tensorflow') throw new Error(`the gradient suite checks wasm or tensorflow against cpu, not ${name}`);
  return name;
}

/** Make `backend` current (wasm: with the tdr kernels) and patch the cpu oracle. */
export async function setupBackendAndOracle(backend: CheckedBackend = UNDER_TEST): Promise<void> {
  process.env.TDR_QUIET = '1';
  process.env.TDR_BACKEND = backend;
  const info = await initBackend({ quiet: true });
  if (info.name !== backend) throw new Error(`backend tests need ${backend}, initBackend chose ${info.name}`);
  patchCpuResizeNearestNeighborGrad();
}

/** Make wasm (with the tdr kernels) current and patch the cpu oracle. */
export function setupWasmAndOracle(): Promise<void> {
  return setupBackendAndOracle('wasm');
}

/** max|a−b| / max|b| (b is the oracle); 0 when both are all zeros. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`relError: lengths ${a.length} and ${b.length} differ`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/**
 * Run `f` (synchronous tensor code; its inputs made inside from plain arrays) on `backend` and on
 * cpu, make `backend` current again, and return the relative error of each output plus the shapes.
 */
export async function backendVsCpu(f: () => tf.Tensor[], backend: CheckedBackend = UNDER_TEST): Promise<{ errors: number[]; shapes: number[][] }> {
  const got: Record<string, { values: Float32Array[]; shapes: number[][] }> = {};
  try {
    for (const be of [backend, 'cpu']) {
      await tf.setBackend(be);
      const outs = tf.tidy(f);
      got[be] = { values: outs.map((t) => t.dataSync() as Float32Array), shapes: outs.map((t) => t.shape) };
      tf.dispose(outs);
    }
  } finally {
    await tf.setBackend(backend);
  }
  const errors = got[backend].values.map((v, i) => relError(v, got.cpu.values[i]));
  got[backend].shapes.forEach((s, i) => {
    if (s.join(',') !== got.cpu.shapes[i].join(',')) {
      throw new Error(`output ${i}: ${backend} shape [${s}] differs from cpu [${got.cpu.shapes[i]}]`);
    }
  });
  return { errors, shapes: got[backend].shapes };
}

/** backendVsCpu on wasm (with the tdr kernels). */
export function wasmVsCpu(f: () => tf.Tensor[]): Promise<{ errors: number[]; shapes: number[][] }> {
  return backendVsCpu(f, 'wasm');
}

/** Deterministic values in [-1, 1) for a shape (a small LCG: no backend involved). */
export function values(shape: number[], seed: number): number[] {
  const n = shape.reduce((p, v) => p * v, 1);
  const out = new Array<number>(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** The largest error seen per kernel, printed by the test file at the end. */
export const maxErrors: Record<string, number> = {};

export function record(kernel: string, err: number): void {
  maxErrors[kernel] = Math.max(maxErrors[kernel] ?? 0, err);
}
