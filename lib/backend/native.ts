/**
 * Optional native CPU kernels for the wasm backend: `native/` is a Node-API addon
 * built by `npm install`'s postinstall (scripts/build_native.js, npm's own node-gyp) against
 * Debian's OpenBLAS (`libopenblas-dev`); when it does not build, nothing fails. When it loaded, the GEMM-shaped kernels run there:
 *   Conv2D, FusedConv2D (bias + linear/relu), Conv2DBackpropFilter, Conv2DBackpropInput (im2col /
 *   col2im + sgemm, NHWC, any stride and explicit padding, dilation 1),
 *   BatchMatMul, _FusedMatMul (one sgemm per matrix, transposes as sgemm flags),
 *   DepthwiseConv2dNative, FusedDepthwiseConv2D and both depthwise gradients (direct C loops).
 * They read and write the wasm heap in place (typed-array views; no copies). Anything else
 * (dilations, other activations, broadcasting beyond one side, non-float32) goes to the kernel
 * that was registered before (the tdr wasm kernels). Each worker thread loads its own instance
 * (Node-API addons are context-aware; the im2col scratch is thread-local) and OpenBLAS runs one
 * thread per call: the data-parallel workers use the cores, their GEMMs at once with the pthreads
 * build of OpenBLAS; a build whose concurrent calls are not safe (single-threaded without
 * USE_LOCKING, OpenMP) gets one GEMM at a time per process (`addon.gemmLock()` says which; env
 * TDR_NATIVE_GEMM_LOCK=1|0 forces it, for diagnosis; native/src/tdr_native.c).
 * Off with TDR_NATIVE=0. Gradient-checked against the cpu backend in test/backend/native.test.ts.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';

type KernelArgs = Parameters<tf.KernelFunc>[0];

export interface NativeAddon {
  conv2dForward(x: Float32Array, n: number, h: number, w: number, ci: number, f: Float32Array, fh: number, fw: number, co: number, sy: number, sx: number, pt: number, pl: number, ho: number, wo: number, out: Float32Array): void;
  conv2dBackpropFilter(x: Float32Array, n: number, h: number, w: number, ci: number, dy: Float32Array, fh: number, fw: number, co: number, sy: number, sx: number, pt: number, pl: number, ho: number, wo: number, dw: Float32Array): void;
  conv2dBackpropInput(dy: Float32Array, n: number, h: number, w: number, ci: number, f: Float32Array, fh: number, fw: number, co: number, sy: number, sx: number, pt: number, pl: number, ho: number, wo: number, dx: Float32Array): void;
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, batch: number, m: number, n: number, k: number, transA: boolean, transB: boolean, batchA: number, batchB: number): void;
  depthwiseForward(x: Float32Array, n: number, h: number, w: number, c: number, f: Float32Array, fh: number, fw: number, m: number, sy: number, sx: number, pt: number, pl: number, ho: number, wo: number, out: Float32Array): void;
  depthwiseBackpropFilter(x: Float32Array, n: number, h: number, w: number, c: number, dy: Float32Array, fh: number, fw: number, m: number, sy: number, sx: number, pt: number, pl: number, ho: number, wo: number, dw: Float32Array): void;
  depthwiseBackpropInput(dy: Float32Array, n: number, h: number, w: number, c: number, f: Float32Array, fh: number, fw: number, m: number, sy: number, sx: number, pt: number, pl: number, ho: number, wo: number, dx: Float32Array): void;
  setThreads(n: number): void;
  config(): string;
  /** whether this process serialises its sgemm calls, and why: 'concurrent (…)' or 'serialised (…)' */
  gemmLock(): string;
}

let loaded: { addon: NativeAddon | null; reason: string } | null = null;

/** The addon, or null with the reason (not built, TDR_NATIVE=0, load error). Cached per thread. */
export function loadNative(): { addon: NativeAddon | null; reason: string } {
  if (loaded) return loaded;
  if (process.env.TDR_NATIVE === '0') return (loaded = { addon: null, reason: 'TDR_NATIVE=0' });
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    // dist/lib/backend/native.js → <project>/native/build/Release/tdr_native.node
    const addon = require(path.join(__dirname, '..', '..', '..', 'native', 'build', 'Release', 'tdr_native.node')) as NativeAddon;
    addon.setThreads(1);
    return (loaded = { addon, reason: addon.config() });
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    return (loaded = { addon: null, reason: `native kernels not built (${msg}); run npm install with libopenblas-dev and a C compiler present` });
  }
}

interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.backend_util.TypedArray;
}

type Pair = [number, number];
const pair = (v: number | number[] | undefined, d: number): Pair => (v == null ? [d, d] : typeof v === 'number' ? [v, v] : [v[0], v[1] ?? v[0]]);
const f32 = (...ts: Array<tf.TensorInfo | undefined>) => ts.every((t) => t == null || t.dtype === 'float32');

/** Wrap the kernel registered now for `name` on wasm: `native(args)` returns a result or null (fall back). */
function wrap(name: string, native: (args: KernelArgs) => tf.TensorInfo | null): void {
  const prev = tf.getKernel(name, 'wasm');
  if (prev == null) throw new Error(`tdr-native: no wasm ${name} kernel to wrap`);
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({
    ...prev,
    kernelFunc: (args) => native(args as KernelArgs) ?? (prev.kernelFunc(args) as tf.TensorInfo),
  });
}

function applyBiasActivation(out: Float32Array, bias: Float32Array | null, channels: number, activation: string): void {
  if (bias) for (let i = 0; i < out.length; i++) out[i] += bias[i % channels];
  if (activation === 'relu') for (let i = 0; i < out.length; i++) if (out[i] < 0) out[i] = 0;
}

let registered = false;

/** The kernel names the native path serves (when loaded). */
export const NATIVE_KERNELS = [
  'Conv2D',
  'FusedConv2D',
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'BatchMatMul',
  '_FusedMatMul',
  'DepthwiseConv2dNative',
  'FusedDepthwiseConv2D',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
] as const;

/**
 * Register the native kernels on top of the current wasm kernels (call after registerWasmKernels,
 * before tf.setBackend('wasm')). Returns the addon's description, or null when it is not available.
 */
/**
 * OpenBLAS threads per GEMM of the native kernels in this process (openblas_set_num_threads: one
 * setting per process, so a data-parallel worker that loads the addon resets it to 1). Returns the
 * count set, or null when the addon is not loaded.
 */
export function setNativeThreads(n: number): number | null {
  const { addon } = loadNative();
  if (!addon) return null;
  addon.setThreads(n);
  return n;
}

export function registerNativeKernels(): string | null {
  const { addon, reason } = loadNative();
  if (!addon) return null;
  if (registered) return reason;
  const nat = addon;

  // Conv2D and depthwise (NAFNet, Restormer, PromptIR) share one shape logic: filter [fh,fw,C,K]
  // gives K output channels for a conv, C·K for a depthwise conv; the addon's calls take the same arguments.
  type Attrs = { strides?: number | number[]; pad?: unknown; dilations?: number | number[]; dataFormat?: string; dimRoundingMode?: 'floor' | 'round' | 'ceil'; activation?: string };
  const outChannels = (fs: readonly number[], depthwise: boolean) => (depthwise ? fs[2] * fs[3] : fs[3]);
  const plainNHWC = (a: Attrs) => (a.dataFormat == null || a.dataFormat === 'NHWC') && pair(a.dilations, 1).every((v) => v === 1);
  const info4 = (xs: readonly number[], fs: readonly number[], a: Attrs, depthwise: boolean) =>
    tf.backend_util.computeConv2DInfo(xs as [number, number, number, number], fs as [number, number, number, number], pair(a.strides, 1), 1, a.pad as 'same', a.dimRoundingMode, depthwise);

  const forward = (args: KernelArgs, fused: boolean, depthwise: boolean): tf.TensorInfo | null => {
    const x = args.inputs.x as tf.TensorInfo;
    const filter = args.inputs.filter as tf.TensorInfo;
    const bias = args.inputs.bias as tf.TensorInfo | undefined;
    const a = args.attrs as Attrs;
    const activation = fused ? (a.activation ?? 'linear') : 'linear';
    if (!f32(x, filter, bias) || x.shape.length !== 4 || !plainNHWC(a)) return null;
    if ((activation !== 'linear' && activation !== 'relu') || args.inputs.preluActivationWeights != null) return null;
    const [fh, fw, ci, k] = filter.shape;
    const co = outChannels(filter.shape, depthwise);
    if (x.shape[3] !== ci || (bias && bias.shape.reduce((p, v) => p * v, 1) !== co)) return null;
    const info = info4(x.shape, filter.shape, a, depthwise);
    const [n, h, w] = x.shape;
    const heap = args.backend as WasmHeap;
    const out = heap.makeOutput([n, info.outHeight, info.outWidth, co], 'float32'); // first: growing the heap detaches views
    const ov = heap.typedArrayFromHeap(out) as Float32Array;
    (depthwise ? nat.depthwiseForward : nat.conv2dForward)(heap.typedArrayFromHeap(x) as Float32Array, n, h, w, ci, heap.typedArrayFromHeap(filter) as Float32Array, fh, fw, k, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left, info.outHeight, info.outWidth, ov);
    if (bias || activation !== 'linear') applyBiasActivation(ov, bias ? (heap.typedArrayFromHeap(bias) as Float32Array) : null, co, activation);
    return out;
  };

  const backpropFilter = (args: KernelArgs, depthwise: boolean): tf.TensorInfo | null => {
    const x = args.inputs.x as tf.TensorInfo;
    const dy = args.inputs.dy as tf.TensorInfo;
    const a = args.attrs as Attrs & { filterShape: [number, number, number, number] };
    if (!f32(x, dy) || x.shape.length !== 4 || !plainNHWC(a)) return null;
    const fs = a.filterShape;
    const info = info4(x.shape, fs, a, depthwise);
    const [n, h, w, ci] = x.shape;
    if (fs[2] !== ci || dy.shape[1] !== info.outHeight || dy.shape[2] !== info.outWidth || dy.shape[3] !== outChannels(fs, depthwise)) return null;
    const heap = args.backend as WasmHeap;
    const out = heap.makeOutput([...fs], 'float32');
    (depthwise ? nat.depthwiseBackpropFilter : nat.conv2dBackpropFilter)(heap.typedArrayFromHeap(x) as Float32Array, n, h, w, ci, heap.typedArrayFromHeap(dy) as Float32Array, fs[0], fs[1], fs[3], info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left, info.outHeight, info.outWidth, heap.typedArrayFromHeap(out) as Float32Array);
    return out;
  };

  const backpropInput = (args: KernelArgs, depthwise: boolean): tf.TensorInfo | null => {
    const dy = args.inputs.dy as tf.TensorInfo;
    const filter = args.inputs.filter as tf.TensorInfo;
    const a = args.attrs as Attrs & { inputShape: [number, number, number, number] };
    if (!f32(dy, filter) || dy.shape.length !== 4 || !plainNHWC(a)) return null;
    const is = a.inputShape;
    const [fh, fw, ci, k] = filter.shape;
    const info = info4(is, filter.shape, a, depthwise);
    if (is[3] !== ci || dy.shape[1] !== info.outHeight || dy.shape[2] !== info.outWidth || dy.shape[3] !== outChannels(filter.shape, depthwise)) return null;
    const heap = args.backend as WasmHeap;
    const out = heap.makeOutput([...is], 'float32');
    (depthwise ? nat.depthwiseBackpropInput : nat.conv2dBackpropInput)(heap.typedArrayFromHeap(dy) as Float32Array, is[0], is[1], is[2], ci, heap.typedArrayFromHeap(filter) as Float32Array, fh, fw, k, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left, info.outHeight, info.outWidth, heap.typedArrayFromHeap(out) as Float32Array);
    return out;
  };

  wrap('Conv2D', (args) => forward(args, false, false));
  wrap('FusedConv2D', (args) => forward(args, true, false));
  wrap('Conv2DBackpropFilter', (args) => backpropFilter(args, false));
  wrap('Conv2DBackpropInput', (args) => backpropInput(args, false));
  wrap('DepthwiseConv2dNative', (args) => forward(args, false, true));
  wrap('FusedDepthwiseConv2D', (args) => forward(args, true, true));
  wrap('DepthwiseConv2dNativeBackpropFilter', (args) => backpropFilter(args, true));
  wrap('DepthwiseConv2dNativeBackpropInput', (args) => backpropInput(args, true));

  const matmul = (args: KernelArgs, fused: boolean): tf.TensorInfo | null => {
    const A = args.inputs.a as tf.TensorInfo;
    const B = args.inputs.b as tf.TensorInfo;
    const bias = args.inputs.bias as tf.TensorInfo | undefined;
    const at = args.attrs as { transposeA?: boolean; transposeB?: boolean; activation?: string };
    const activation = fused ? (at.activation ?? 'linear') : 'linear';
    if (!f32(A, B, bias) || A.shape.length < 2 || B.shape.length < 2) return null;
    if (activation !== 'linear' && activation !== 'relu') return null;
    if (args.inputs.preluActivationWeights != null) return null;
    const ta = Boolean(at.transposeA);
    const tb = Boolean(at.transposeB);
    const [ar, ac] = A.shape.slice(-2);
    const [br, bc] = B.shape.slice(-2);
    const m = ta ? ac : ar;
    const k = ta ? ar : ac;
    const n = tb ? br : bc;
    if ((tb ? bc : br) !== k) return null;
    const outerA = A.shape.slice(0, -2);
    const outerB = B.shape.slice(0, -2);
    const batchA = outerA.reduce((p, v) => p * v, 1);
    const batchB = outerB.reduce((p, v) => p * v, 1);
    let outer: number[];
    if (batchA === batchB && outerA.length === outerB.length && outerA.every((v, i) => v === outerB[i])) outer = outerA;
    else if (batchB === 1 && outerB.every((v) => v === 1) && outerB.length <= outerA.length) outer = outerA;
    else if (batchA === 1 && outerA.every((v) => v === 1) && outerA.length <= outerB.length) outer = outerB;
    else return null;
    if (bias && bias.shape.reduce((p, v) => p * v, 1) !== n) return null;
    const heap = args.backend as WasmHeap;
    const out = heap.makeOutput([...outer, m, n], 'float32');
    const ov = heap.typedArrayFromHeap(out) as Float32Array;
    const batch = Math.max(batchA, batchB);
    nat.matmul(heap.typedArrayFromHeap(A) as Float32Array, heap.typedArrayFromHeap(B) as Float32Array, ov, batch, m, n, k, ta, tb, batchA, batchB);
    if (bias || activation !== 'linear') applyBiasActivation(ov, bias ? (heap.typedArrayFromHeap(bias) as Float32Array) : null, n, activation);
    return out;
  };
  wrap('BatchMatMul', (args) => matmul(args, false));
  wrap('_FusedMatMul', (args) => matmul(args, true));

  registered = true;
  return reason;
}
