/**
 * Backend resolver: pick the fastest tfjs backend this machine can run, once per process.
 *
 * Order: env TDR_BACKEND (tensorflow | wasm | cpu) if set; else `@tensorflow/tfjs-node-gpu`, then
 * `@tensorflow/tfjs-node` (optional dependencies: present only where libtensorflow installed),
 * else wasm (with the tdr gradient kernels of ./kernels), else the pure-JS cpu backend.
 * The choice is reported once on stderr (`tdr: backend wasm (SIMD, 1 thread)`) unless
 * `{quiet: true}` or env TDR_QUIET=1.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import { registerWasmKernels } from './kernels';
import { registerNativeKernels } from './native';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** tfjs backend name, as `tf.getBackend()` reports it */
  name: BackendName;
  /** threads the backend computes on (wasm in Node: 1; tensorflow: CPU cores) */
  threads: number;
  /** wasm only: SIMD build in use */
  simd?: boolean;
  /** one human-readable line: package and mode */
  detail: string;
}

const ALLOWED: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/**
 * The backend asked for by env TDR_BACKEND, or undefined when unset/empty.
 * @throws Error naming the variable and the allowed values for anything else
 */
export function requestedBackend(env: NodeJS.ProcessEnv = process.env): BackendName | undefined {
  const v = env.TDR_BACKEND;
  if (v == null || v === '') return undefined;
  if (!(ALLOWED as readonly string[]).includes(v)) {
    throw new Error(`TDR_BACKEND must be one of ${ALLOWED.join(', ')}; got '${v}'`);
  }
  return v as BackendName;
}

let chosen: Promise<BackendInfo> | undefined;

/** Load tfjs-node-gpu or tfjs-node; the names are computed so tsc does not need their types. */
function loadTensorflow(): { pkg: string } | { error: string } {
  const errors: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      const req: (id: string) => unknown = require;
      req(pkg);
      return { pkg };
    } catch (e) {
      errors.push(`${pkg}: ${((e as Error).message ?? String(e)).split('\n')[0]}`);
    }
  }
  return { error: errors.join('; ') };
}

async function useTensorflow(): Promise<BackendInfo | string> {
  const r = loadTensorflow();
  if ('error' in r) return r.error;
  if (!(await tf.setBackend('tensorflow'))) return `${r.pkg} loaded but tf.setBackend('tensorflow') failed`;
  const gpu = r.pkg.endsWith('-gpu');
  return { name: 'tensorflow', threads: os.cpus().length, detail: `${r.pkg} (libtensorflow${gpu ? ', CUDA' : ', CPU'})` };
}

async function useWasm(): Promise<BackendInfo | string> {
  registerWasmKernels();
  const native = registerNativeKernels(); // optional OpenBLAS kernels on top (./native.ts)
  let ok = false;
  try {
    ok = await tf.setBackend('wasm');
  } catch (e) {
    return `tfjs-backend-wasm: ${(e as Error).message}`;
  }
  if (!ok) return `tfjs-backend-wasm: tf.setBackend('wasm') failed`;
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  const threads = tfwasm.getThreadsCount();
  return {
    name: 'wasm',
    threads,
    simd,
    detail: `tfjs-backend-wasm ${tfwasm.version_wasm} (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}, tdr gradient kernels${native ? `, native kernels: ${native.split(' ').slice(0, 2).join(' ')}` : ''})`,
  };
}

async function useCpu(): Promise<BackendInfo | string> {
  if (!(await tf.setBackend('cpu'))) return `tf.setBackend('cpu') failed`;
  return { name: 'cpu', threads: 1, detail: 'tfjs-backend-cpu (pure JS, slow: for tests and tiny runs)' };
}

async function resolve(): Promise<BackendInfo> {
  const want = requestedBackend();
  const tries: Record<BackendName, () => Promise<BackendInfo | string>> = {
    tensorflow: useTensorflow,
    wasm: useWasm,
    cpu: useCpu,
  };
  if (want != null) {
    const r = await tries[want]();
    if (typeof r === 'string') throw new Error(`TDR_BACKEND=${want}, but that backend cannot start: ${r}`);
    return r;
  }
  const failures: string[] = [];
  for (const name of ALLOWED) {
    const r = await tries[name]();
    if (typeof r !== 'string') return r;
    failures.push(r);
  }
  throw new Error(`tdr: no tfjs backend could start: ${failures.join('; ')}`);
}

function oneLine(i: BackendInfo): string {
  if (i.name === 'wasm') return `tdr: backend wasm (${i.simd ? 'SIMD' : 'no SIMD'}, ${i.threads} thread${i.threads === 1 ? '' : 's'})`;
  if (i.name === 'tensorflow') return `tdr: backend tensorflow (${i.detail})`;
  return `tdr: backend cpu (pure JS, slow)`;
}

/**
 * Choose and activate the backend (see the module doc). Idempotent: later calls return the same
 * info and make that backend current again if something switched away from it.
 * @throws Error when TDR_BACKEND is invalid or names a backend that cannot start
 */
export async function initBackend(opts: { quiet?: boolean } = {}): Promise<BackendInfo> {
  if (chosen == null) {
    chosen = resolve().then((i) => {
      if (!opts.quiet && process.env.TDR_QUIET !== '1') process.stderr.write(oneLine(i) + '\n');
      return i;
    });
    chosen.catch(() => {
      chosen = undefined; // a failed resolution can be retried (e.g. after fixing TDR_BACKEND)
    });
  }
  const i = await chosen;
  if (tf.getBackend() !== i.name) await tf.setBackend(i.name);
  return i;
}

export { registerWasmKernels, WASM_KERNELS } from './kernels';
export { patchCpuResizeNearestNeighborGrad } from './cpu_patch';
