/**
 * Helpers shared by the tdr wasm kernels of this folder (one kernel per file; the list, the reasons
 * and the notation are in ../kernels.ts).
 */
import * as tf from '@tensorflow/tfjs';

export type Pair = [number, number];
export type PadSpec = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/** A kernel input as a Tensor: engine calls pass Tensors; a bare TensorInfo gets a tidy-owned wrapper. */
export function asTensor(t: tf.TensorInfo): tf.Tensor {
  if ((t as tf.Tensor).rank != null) return t as tf.Tensor;
  return tf.engine().makeTensorFromTensorInfo(t);
}

export function pair(v: number | number[] | undefined, dflt: number): Pair {
  if (v == null) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  return [v[0], v[1]];
}

export function checkNHWC(kernel: string, dataFormat: unknown): void {
  if (dataFormat != null && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`${kernel} (tdr wasm kernel): dataFormat must be NHWC, got ${String(dataFormat)}`);
  }
}

export function checkDilations(kernel: string, dilations: unknown): void {
  const [dh, dw] = pair(dilations as number | number[] | undefined, 1);
  if (dh !== 1 || dw !== 1) {
    throw new Error(`${kernel} (tdr wasm kernel): dilations must be 1, got [${dh},${dw}]`);
  }
}

export function checkRank(kernel: string, name: string, t: tf.TensorInfo | undefined, rank: number): void {
  if (t == null) throw new Error(`${kernel} (tdr wasm kernel): missing input '${name}'`);
  if (t.shape.length !== rank) {
    throw new Error(`${kernel} (tdr wasm kernel): ${name} must be rank ${rank}, got [${t.shape.join(',')}]`);
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Pad (positive) or crop (negative) axes 1 and 2 of a 4-D tensor: [[top,bottom],[left,right]]. */
export function padOrCrop(t: tf.Tensor4D, hw: [Pair, Pair]): tf.Tensor4D {
  const [n, h, w, c] = t.shape;
  const crop = hw.map((p) => p.map((v) => Math.max(0, -v))) as [Pair, Pair];
  let out = t;
  if (crop[0][0] || crop[0][1] || crop[1][0] || crop[1][1]) {
    out = tf.slice(out, [0, crop[0][0], crop[1][0], 0], [
      n,
      h - crop[0][0] - crop[0][1],
      w - crop[1][0] - crop[1][1],
      c,
    ]);
  }
  const pad = hw.map((p) => p.map((v) => Math.max(0, v))) as [Pair, Pair];
  if (pad[0][0] || pad[0][1] || pad[1][0] || pad[1][1]) {
    out = tf.pad(out, [[0, 0], pad[0], pad[1], [0, 0]]);
  }
  return out;
}

/** Split padding of one axis into (non-negative explicit padding, crop-first); conv2d wants pads ≥ 0. */
export function explicitOrCrop(t: tf.Tensor4D, hw: [Pair, Pair]): { t: tf.Tensor4D; pads: [Pair, Pair] } {
  const crops = hw.map((p) => p.map((v) => Math.min(0, v))) as [Pair, Pair];
  const pads = hw.map((p) => p.map((v) => Math.max(0, v))) as [Pair, Pair];
  return { t: padOrCrop(t, crops), pads };
}

export function convPads(pads: [Pair, Pair]): tf.backend_util.ExplicitPadding {
  return [[0, 0], pads[0], pads[1], [0, 0]];
}

/**
 * Geometry of the transposed convolution along one axis, split into s output phases.
 * dxpad[s·u + r] = Σ_k dy[u − k] · w[s·k + r], k < K = ⌈f/s⌉: a stride-1 correlation of dy with the
 * reversed sub-filter of phase r. Rows u0..u0+U−1 cover dx; `off` is where dx starts after interleaving.
 */
export function phaseAxis(size: number, f: number, s: number, padBefore: number, dySize: number) {
  const k = Math.ceil(f / s);
  const u0 = Math.floor(padBefore / s);
  const u1 = Math.floor((padBefore + size - 1) / s);
  const u = u1 - u0 + 1;
  const before = k - 1 - u0;
  const after = u + k - 1 - dySize - before;
  return { k, u, before, after, off: padBefore - s * u0 };
}

export function kernelTensor(inputs: tf.NamedTensorInfoMap, name: string, kernel: string): tf.Tensor {
  const t = inputs[name];
  if (t == null) throw new Error(`${kernel} (tdr wasm kernel): missing input '${name}'`);
  return asTensor(t);
}

/** The stock wasm kernel a tdr kernel wraps or falls back to (registered by tfjs-backend-wasm). */
export function stockKernel(kernelName: string): tf.KernelConfig {
  const stock = tf.getKernel(kernelName, 'wasm');
  if (stock == null) throw new Error(`tdr: wasm backend has no stock ${kernelName} kernel to wrap`);
  return stock;
}

/**
 * dst[d..d+n) = src[s..s+n): `set` on a subarray for long runs, element-wise for short ones (no
 * subarray object per run — the cost of channel-sized runs on NHWC maps).
 */
export function copyRun(dst: tf.TypedArray, d: number, src: tf.TypedArray, s: number, n: number): void {
  if (n >= 64) dst.set(src.subarray(s, s + n), d);
  else for (let k = 0; k < n; k++) dst[d + k] = src[s + k];
}

/**
 * The wasm backend methods the heap-view kernels (Slice, Concat, ResizeNearestNeighborGrad) use
 * (tfjs-backend-wasm 4.22 BackendWasm).
 */
export interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.backend_util.TypedArray;
}

/**
 * A KernelConfig for one of the four convolution gradients: two rank-4 inputs, a layout/dilation
 * check, one pure-TS kernel run in `tf.tidy`.
 */
export function convGradConfig<A>(
  kernelName: string,
  names: readonly [string, string],
  check: (k: string, a: A) => void,
  fn: (p: tf.Tensor4D, q: tf.Tensor4D, a: A) => tf.Tensor,
): tf.KernelConfig {
  return {
    kernelName,
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      for (const n of names) checkRank(kernelName, n, inputs[n], 4);
      const a = attrs as unknown as A;
      check(kernelName, a);
      return tf.tidy(() => fn(kernelTensor(inputs, names[0], kernelName) as tf.Tensor4D, kernelTensor(inputs, names[1], kernelName) as tf.Tensor4D, a));
    },
  };
}

/**
 * The shared preamble of the four convolution gradient kernels: the forward geometry
 * (`computeConv2DInfo`, depthwise or not), after checking that the filter's in-channels equal the
 * input's and that dy has the forward output's shape [N,Ho,Wo,Co] (depthwise: Co = Ci·M).
 * @param input the forward input: `x` (filter gradients) or `input` (input gradients), for messages
 * @throws Error naming the kernel and the shapes at fault
 */
export function convGradInfo(
  kernel: string,
  depthwise: boolean,
  input: { name: 'x' | 'input'; shape: [number, number, number, number] },
  filterShape: [number, number, number, number],
  dyShape: readonly number[],
  strides: number | Pair,
  pad: PadSpec,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.backend_util.Conv2DInfo {
  const info = tf.backend_util.computeConv2DInfo(input.shape, filterShape, strides, 1, pad, dimRoundingMode, depthwise);
  const [n, , , ci] = input.shape;
  const [, , fci, fco] = filterShape;
  if (fci !== ci) {
    throw new Error(`${kernel} (tdr wasm kernel): filter [${filterShape.join(',')}] in-channels must equal ${input.name} channels ${ci}`);
  }
  const want = [n, info.outHeight, info.outWidth, depthwise ? ci * fco : fco];
  if (!sameShape(dyShape, want)) {
    throw new Error(
      `${kernel} (tdr wasm kernel): dy [${dyShape.join(',')}] must be [${want.join(',')}] for ${input.name} ` +
        `[${input.shape.join(',')}] and filter [${filterShape.join(',')}]`,
    );
  }
  return info;
}
