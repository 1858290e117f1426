/**
 * Backend resolver: pick, once per process, the backend that trains fastest on this machine.
 *
 * Rule: the `backend` option, else env TDR_BACKEND (tensorflow | wasm | cpu) if set; else this machine's
 * measurement, the record of `tdr bench --choose-backend` (./choice.ts: the backend and thread count
 * whose demo training steps were fastest here; ignored with a reason when it was measured on another
 * machine or its backend no longer starts); else the first of DEFAULT_ORDER that starts:
 *   tensorflow  `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node` (optional dependencies): the
 *               TensorFlow C library, whose addon `npm install` builds offline when it can
 *               (scripts/build_tensorflow.js). Intra-op threads: the `threads` option, else env
 *               TDR_THREADS, else TF_NUM_INTRAOP_THREADS, else one per core — set before tfjs-node is
 *               required, when TensorFlow reads them. It trains the reference U-Net, the demo T2I UNet
 *               and the demo PromptIR faster than wasm, at one thread and at two (README, Backends:
 *               `tdr bench --t2i --promptir` on each), so it comes first.
 *   wasm        tfjs-backend-wasm (SIMD, one thread) with the tdr gradient kernels (./kernels) and, where
 *               they built, the OpenBLAS kernels (./native). Their GEMMs run on one OpenBLAS thread
 *               unless the `threads` option or env TDR_THREADS asks for more (one step on N cores; the
 *               data-parallel training workers use one each).
 *   cpu         the pure-JS backend: slow; the oracle of the gradient tests.
 * The choice is reported once on stderr (`tdr: backend wasm (SIMD, 1 thread)`) unless
 * `{quiet: true}` or env TDR_QUIET=1.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import { registerWasmKernels } from './kernels';
import { registerNativeKernels, setNativeThreads } from './native';
import { registerTensorflowKernels } from './tensorflow';
import { UserError } from '../util/errors';
import { readChoice } from './choice';
import { hugePagesActive } from './hugepages';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  /** tfjs backend name, as `tf.getBackend()` reports it */
  name: BackendName;
  /** threads the backend computes on (wasm in Node: 1; tensorflow: its intra-op threads) */
  threads: number;
  /** wasm only: SIMD build in use */
  simd?: boolean;
  /** wasm with the native kernels only: OpenBLAS threads per GEMM (1 unless asked for) */
  blasThreads?: number;
  /** one human-readable line: package and mode */
  detail: string;
  /** how it was chosen: 'option', 'env' (TDR_BACKEND), 'measured' (this machine's `tdr bench --choose-backend` record) or 'default' (DEFAULT_ORDER) */
  chosenBy?: 'option' | 'env' | 'measured' | 'default';
  /** 'measured': when; 'default': why no record was used */
  choiceNote?: string;
}

const ALLOWED: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

/** The order tried without TDR_BACKEND: fastest training first on this machine (see the module doc). */
export const DEFAULT_ORDER: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];

export interface BackendOptions {
  /** no `tdr: backend …` line on stderr (also env TDR_QUIET=1) */
  quiet?: boolean;
  /**
   * tensorflow: intra-op threads (default env TDR_THREADS, else TF_NUM_INTRAOP_THREADS, else one per
   * core); wasm: OpenBLAS threads of the native kernels' GEMMs (default TDR_THREADS, else 1)
   */
  threads?: number;
  /** this backend instead of env TDR_BACKEND (`tdr bench --backend`) */
  backend?: BackendName;
  /**
   * What the process mostly computes, for this machine's measured choice: 'train' (default) follows the
   * record's training choice; 'generate' (`tdr guide`, `tdr sample`: DDIM steps on 16×16 latents, a
   * batch of 2 per image) its generation choice when it has one — on a 2-core CPU the small kernels of a
   * DDIM step run faster on one TensorFlow thread than on two, while training steps gain from both.
   */
  purpose?: 'train' | 'generate';
}

/**
 * The backend asked for by env TDR_BACKEND, or undefined when unset/empty.
 * @throws Error naming the variable and the allowed values for anything else
 */
export function requestedBackend(env: NodeJS.ProcessEnv = process.env): BackendName | undefined {
  const v = env.TDR_BACKEND;
  if (v == null || v === '') return undefined;
  if (!(ALLOWED as readonly string[]).includes(v)) {
    throw new UserError(`TDR_BACKEND must be one of ${ALLOWED.join(', ')}; got '${v}'`);
  }
  return v as BackendName;
}

let chosen: Promise<BackendInfo> | undefined;

/** Load tfjs-node-gpu or tfjs-node; the names are computed so tsc does not need their types. */
function loadTensorflow(): { pkg: string; version: string } | { error: string } {
  const errors: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      const req: (id: string) => unknown = require;
      req(pkg);
      return { pkg, version: (req(`${pkg}/package.json`) as { version: string }).version };
    } catch (e) {
      errors.push(`${pkg}: ${((e as Error).message ?? String(e)).split('\n')[0]}`);
    }
  }
  return { error: errors.join('; ') };
}

/**
 * Intra-op threads of the tensorflow backend: `threads` if given, else env TDR_THREADS, else env
 * TF_NUM_INTRAOP_THREADS, else one per core.
 * @throws UserError naming the variable when it is not a positive integer
 */
export function tensorflowThreads(threads?: number, env: NodeJS.ProcessEnv = process.env): number {
  const check = (v: number | string, what: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UserError(`${what} must be a positive integer, got '${v}'`);
    return n;
  };
  if (threads != null) return check(threads, 'threads');
  for (const name of ['TDR_THREADS', 'TF_NUM_INTRAOP_THREADS']) {
    const v = env[name];
    if (v != null && v !== '') return check(v, name);
  }
  return os.cpus().length;
}

async function useTensorflow(threads: number): Promise<BackendInfo | string> {
  // TensorFlow reads these once, when tfjs-node creates its eager context while it is required
  process.env.TF_NUM_INTRAOP_THREADS = String(threads);
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';
  const r = loadTensorflow();
  if ('error' in r) return r.error;
  registerTensorflowKernels(); // explicit-padding conv gradients (./tensorflow.ts)
  if (!(await tf.setBackend('tensorflow'))) return `${r.pkg} loaded but tf.setBackend('tensorflow') failed`;
  const gpu = r.pkg.endsWith('-gpu');
  const binding = (tf.backend() as unknown as { binding?: { TF_Version?: string } }).binding;
  return {
    name: 'tensorflow',
    threads,
    detail: `${r.pkg} ${r.version}, TensorFlow ${binding?.TF_Version ?? '?'} C library, ${gpu ? 'CUDA' : 'CPU'}, ${threads} intra-op thread${threads === 1 ? '' : 's'}${hugePagesActive() ? ', huge pages' : ''}`,
  };
}

async function useWasm(blasThreads: number | undefined): Promise<BackendInfo | string> {
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
  const blas = native ? setNativeThreads(blasThreads ?? 1) : undefined;
  return {
    name: 'wasm',
    threads,
    simd,
    ...(blas != null ? { blasThreads: blas } : {}),
    detail: `tfjs-backend-wasm ${tfwasm.version_wasm} (${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}, tdr gradient kernels${native ? `, native kernels: ${native.split(' ').slice(0, 2).join(' ')}, ${blas} OpenBLAS thread${blas === 1 ? '' : 's'} per GEMM` : ''})`,
  };
}

async function useCpu(): Promise<BackendInfo | string> {
  if (!(await tf.setBackend('cpu'))) return `tf.setBackend('cpu') failed`;
  return { name: 'cpu', threads: 1, detail: 'tfjs-backend-cpu (pure JS, slow: for tests and tiny runs)' };
}

async function resolve(opts: BackendOptions): Promise<BackendInfo> {
  if (opts.backend != null && !ALLOWED.includes(opts.backend)) throw new UserError(`backend must be one of ${ALLOWED.join(', ')}; got '${opts.backend}'`);
  const want = opts.backend ?? requestedBackend();
  const threads = tensorflowThreads(opts.threads);
  const explicitThreads = opts.threads != null || (process.env.TDR_THREADS ?? '') !== '' ? threads : undefined;
  const tries: Record<BackendName, () => Promise<BackendInfo | string>> = {
    tensorflow: () => useTensorflow(threads),
    wasm: () => useWasm(explicitThreads),
    cpu: useCpu,
  };
  if (want != null) {
    const r = await tries[want]();
    if (typeof r === 'string') {
      const fix = want === 'tensorflow' ? ' (npm run build:tensorflow builds it; README, Backends)' : '';
      throw new UserError(`${opts.backend != null ? 'backend' : 'TDR_BACKEND'}=${want}, but that backend cannot start: ${r}${fix}`);
    }
    return { ...r, chosenBy: opts.backend != null ? 'option' : 'env' };
  }
  // this machine's measurement (`tdr bench --choose-backend`, ./choice.ts), if there is one
  const rec = readChoice();
  let note: string;
  if ('choice' in rec) {
    const forGeneration = opts.purpose === 'generate' && rec.choice.generation != null;
    const c = forGeneration ? rec.choice.generation! : rec.choice.chosen;
    const t = explicitThreads ?? ((process.env.TF_NUM_INTRAOP_THREADS ?? '') !== '' && c.backend === 'tensorflow' ? threads : c.threads);
    const r = c.backend === 'tensorflow' ? await useTensorflow(t) : c.backend === 'wasm' ? await useWasm(t) : await useCpu();
    if (typeof r !== 'string') return { ...r, chosenBy: 'measured', choiceNote: `measured fastest for ${forGeneration ? 'generating guidance' : 'training'} here on ${rec.choice.measuredAt.slice(0, 10)} (tdr bench --choose-backend)` };
    note = `the measured choice ${c.backend} cannot start now (${r}); default order`;
  } else {
    note = rec.none;
  }
  const failures: string[] = [];
  for (const name of DEFAULT_ORDER) {
    const r = await tries[name]();
    if (typeof r !== 'string') return { ...r, chosenBy: 'default', choiceNote: note };
    failures.push(r);
  }
  throw new Error(`tdr: no tfjs backend could start: ${failures.join('; ')}`);
}

function oneLine(i: BackendInfo): string {
  const why = i.chosenBy === 'measured' ? `; ${i.choiceNote}` : '';
  if (i.name === 'wasm') {
    const blas = i.blasThreads != null && i.blasThreads > 1 ? `, ${i.blasThreads} OpenBLAS threads per GEMM` : '';
    return `tdr: backend wasm (${i.simd ? 'SIMD' : 'no SIMD'}, ${i.threads} thread${i.threads === 1 ? '' : 's'}${blas}${why})`;
  }
  if (i.name === 'tensorflow') return `tdr: backend tensorflow (${i.detail}${why})`;
  return `tdr: backend cpu (pure JS, slow${why})`;
}

/**
 * Choose and activate the backend (see the module doc). Idempotent: later calls return the same
 * info and make that backend current again if something switched away from it.
 * @throws UserError when TDR_BACKEND or TDR_THREADS is invalid, or TDR_BACKEND names a backend that cannot start
 */
export async function initBackend(opts: BackendOptions = {}): Promise<BackendInfo> {
  if (chosen == null) {
    chosen = resolve(opts).then((i) => {
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
export { machineKey, choiceFile, readChoice, writeChoice, pickCandidate, pickGenerationCandidate } from './choice';
export type { BackendChoice, ChoiceCandidate, MachineKey } from './choice';
export { patchCpuResizeNearestNeighborGrad } from './cpu_patch';
export { registerTensorflowKernels, TENSORFLOW_KERNELS } from './tensorflow';
