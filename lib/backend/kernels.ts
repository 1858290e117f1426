/**
 * Gradient kernels for the tfjs 4.22 `wasm` backend, composed from its fast XNNPACK kernels.
 *
 * Why: wasm 4.22 has no Conv2DBackpropFilter, no depthwise backprop kernels and no
 * UnsortedSegmentSum (gradient of `tf.gather`); its Conv2DBackpropInput is a naive loop (≈1.5 s per
 * 3×3 64→64 layer at 8×64×64) and its BatchMatMul with `transposeA`/`transposeB` takes a naive path
 * (10–14× slower than an explicit Transpose followed by a plain matMul), and a batched matMul is
 * ≈8× slower than a loop of 2-D ones; its Slice copies the WHOLE input out of the heap first
 * (≈1 ms per slice of an 8 MB tensor, whatever the slice size); its MaxPoolGrad drops the
 * gradient of windows whose values are all negative; and its forward convs with pad 'same' and
 * stride > 1 are wrong when an axis needs no padding (e.g. H=8, fh=1, s=2): they get the
 * explicit padding computed by tfjs instead. Each kernel below is a
 * short composition of stock kernels (conv2d, depthwiseConv2d, transpose, pad, depthToSpace, …),
 * checked against the cpu backend in test/backend/gradients.test.ts.
 *
 * Layout: NHWC only; dilation 1 only (tfjs-core's own conv gradients refuse dilation > 1 too).
 * Notation (one spatial axis; the other is the same):
 *   x [N,H,W,Ci], filter [fh,fw,Ci,Co], dy [N,Ho,Wo,Co], stride s, padding (pt, pb) on top/bottom,
 *   xpad = x padded, y[i] = Σ_a xpad[s·i + a] · w[a].
 *
 * Memory: each kernel runs in `tf.tidy` and returns one new tensor; intermediates are freed.
 * The kernels run inside the engine's kernel scope, so the ops they call are not taped.
 */
import * as tf from '@tensorflow/tfjs';

type Pair = [number, number];
type PadSpec = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/** Names of the kernels this module registers for 'wasm' (replacing any stock one). */
export const WASM_KERNELS = [
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'UnsortedSegmentSum',
  'BatchMatMul',
  '_FusedMatMul',
  'Slice',
  'MaxPoolGrad',
  'Conv2D',
  'FusedConv2D',
  'DepthwiseConv2dNative',
  'FusedDepthwiseConv2D',
  'SplitV',
  'ResizeNearestNeighborGrad',
  'Concat',
] as const;

// ---------------------------------------------------------------------------------------------
// helpers

/** A kernel input as a Tensor: engine calls pass Tensors; a bare TensorInfo gets a tidy-owned wrapper. */
function asTensor(t: tf.TensorInfo): tf.Tensor {
  if ((t as tf.Tensor).rank != null) return t as tf.Tensor;
  return tf.engine().makeTensorFromTensorInfo(t);
}

function pair(v: number | number[] | undefined, dflt: number): Pair {
  if (v == null) return [dflt, dflt];
  if (typeof v === 'number') return [v, v];
  return [v[0], v[1]];
}

function checkNHWC(kernel: string, dataFormat: unknown): void {
  if (dataFormat != null && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`${kernel} (tdr wasm kernel): dataFormat must be NHWC, got ${String(dataFormat)}`);
  }
}

function checkDilations(kernel: string, dilations: unknown): void {
  const [dh, dw] = pair(dilations as number | number[] | undefined, 1);
  if (dh !== 1 || dw !== 1) {
    throw new Error(`${kernel} (tdr wasm kernel): dilations must be 1, got [${dh},${dw}]`);
  }
}

function checkRank(kernel: string, name: string, t: tf.TensorInfo | undefined, rank: number): void {
  if (t == null) throw new Error(`${kernel} (tdr wasm kernel): missing input '${name}'`);
  if (t.shape.length !== rank) {
    throw new Error(`${kernel} (tdr wasm kernel): ${name} must be rank ${rank}, got [${t.shape.join(',')}]`);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Pad (positive) or crop (negative) axes 1 and 2 of a 4-D tensor: [[top,bottom],[left,right]]. */
function padOrCrop(t: tf.Tensor4D, hw: [Pair, Pair]): tf.Tensor4D {
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
function explicitOrCrop(t: tf.Tensor4D, hw: [Pair, Pair]): { t: tf.Tensor4D; pads: [Pair, Pair] } {
  const crops = hw.map((p) => p.map((v) => Math.min(0, v))) as [Pair, Pair];
  const pads = hw.map((p) => p.map((v) => Math.max(0, v))) as [Pair, Pair];
  return { t: padOrCrop(t, crops), pads };
}

function convPads(pads: [Pair, Pair]): tf.backend_util.ExplicitPadding {
  return [[0, 0], pads[0], pads[1], [0, 0]];
}

/**
 * Geometry of the transposed convolution along one axis, split into s output phases.
 * dxpad[s·u + r] = Σ_k dy[u − k] · w[s·k + r], k < K = ⌈f/s⌉: a stride-1 correlation of dy with the
 * reversed sub-filter of phase r. Rows u0..u0+U−1 cover dx; `off` is where dx starts after interleaving.
 */
function phaseAxis(size: number, f: number, s: number, padBefore: number, dySize: number) {
  const k = Math.ceil(f / s);
  const u0 = Math.floor(padBefore / s);
  const u1 = Math.floor((padBefore + size - 1) / s);
  const u = u1 - u0 + 1;
  const before = k - 1 - u0;
  const after = u + k - 1 - dySize - before;
  return { k, u, before, after, off: padBefore - s * u0 };
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropInput

/**
 * dx of conv2d: one stride-1 conv2d of dy with the reversed, transposed filter, all stride phases
 * at once as extra output channels, then depthToSpace and a crop.
 * @param dy [N,Ho,Wo,Co]
 * @param filter [fh,fw,Ci,Co]
 * @param inputShape [N,H,W,Ci]
 * @returns dx [N,H,W,Ci]
 */
export function conv2dBackpropInput(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: [number, number, number, number],
  strides: number | Pair,
  pad: PadSpec,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape, strides, 1, pad, dimRoundingMode);
  const [n, h, w, ci] = inputShape;
  const [fh, fw, , co] = filter.shape;
  if (!sameShape(dy.shape, [n, info.outHeight, info.outWidth, co])) {
    throw new Error(
      `Conv2DBackpropInput (tdr wasm kernel): dy [${dy.shape.join(',')}] must be ` +
        `[${[n, info.outHeight, info.outWidth, co].join(',')}] for input [${inputShape.join(',')}] ` +
        `and filter [${filter.shape.join(',')}]`,
    );
  }
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const ah = phaseAxis(h, fh, sh, info.padInfo.top, info.outHeight);
  const aw = phaseAxis(w, fw, sw, info.padInfo.left, info.outWidth);
  return tf.tidy(() => {
    // F[k'h,k'w,co,(rh,rw,ci)] = w[sh·(Kh−1−k'h)+rh, sw·(Kw−1−k'w)+rw, ci, co], zero past fh/fw.
    let f: tf.Tensor = filter;
    if (ah.k * sh !== fh || aw.k * sw !== fw) {
      f = tf.pad(filter, [[0, ah.k * sh - fh], [0, aw.k * sw - fw], [0, 0], [0, 0]]);
    }
    f = tf.reverse(f.reshape([ah.k, sh, aw.k, sw, ci, co]), [0, 2]);
    f = tf.transpose(f, [0, 2, 5, 1, 3, 4]).reshape([ah.k, aw.k, co, sh * sw * ci]); // [Kh,Kw,Co,sh·sw·Ci]
    const { t, pads } = explicitOrCrop(dy, [
      [ah.before, ah.after],
      [aw.before, aw.after],
    ]);
    let y: tf.Tensor4D = tf.conv2d(t, f as tf.Tensor4D, 1, convPads(pads)); // [N,U,V,sh·sw·Ci]
    if (sh === 1 && sw === 1) return y; // U = H, V = W, off = 0
    if (sh === sw) {
      y = tf.depthToSpace(y, sh); // [N,U·s,V·s,Ci]
    } else {
      y = y
        .reshape([n, ah.u, aw.u, sh, sw, ci])
        .transpose([0, 1, 3, 2, 4, 5])
        .reshape([n, ah.u * sh, aw.u * sw, ci]) as tf.Tensor4D;
    }
    if (ah.off === 0 && aw.off === 0 && ah.u * sh === h && aw.u * sw === w) return y;
    return tf.slice(y, [0, ah.off, aw.off, 0], [n, h, w, ci]);
  });
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropFilter

/**
 * dW of conv2d as ONE valid conv2d (XNNPACK): batch and channels of x swap roles, dy is the filter.
 * dW[a,b,ci,co] = Σ_{n,i,j} xpad[n, s·i+a, s·j+b, ci] · dy[n,i,j,co].
 * Stride s: space-to-depth of xpad (phases (rh,rw) become extra "batch" rows), so that
 * dW[s·p+rh, s·q+rw] = Σ xs2d[n, i+p, j+q, (rh,rw,ci)] · dy[n,i,j] is a stride-1 correlation.
 * @param x [N,H,W,Ci]
 * @param dy [N,Ho,Wo,Co]
 * @param filterShape [fh,fw,Ci,Co]
 * @returns dW [fh,fw,Ci,Co]
 */
export function conv2dBackpropFilter(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | Pair,
  pad: PadSpec,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode);
  const [n, h, w, ci] = x.shape;
  const [fh, fw, fci, co] = filterShape;
  if (fci !== ci) {
    throw new Error(`Conv2DBackpropFilter (tdr wasm kernel): filterShape [${filterShape.join(',')}] in-channels must equal x channels ${ci}`);
  }
  if (!sameShape(dy.shape, [n, info.outHeight, info.outWidth, co])) {
    throw new Error(
      `Conv2DBackpropFilter (tdr wasm kernel): dy [${dy.shape.join(',')}] must be ` +
        `[${[n, info.outHeight, info.outWidth, co].join(',')}] for x [${x.shape.join(',')}] ` +
        `and filter [${filterShape.join(',')}]`,
    );
  }
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const ho = info.outHeight;
  const wo = info.outWidth;
  const { top, bottom, left, right } = info.padInfo;
  return tf.tidy(() => {
    const dyT = tf.transpose(dy, [1, 2, 0, 3]); // [Ho,Wo,N,Co] used as the filter
    if (sh === 1 && sw === 1) {
      // rows needed: Ho + fh − 1 = top + H + bottom for stride 1.
      const xT = tf.transpose(x, [3, 1, 2, 0]); // [Ci,H,W,N]
      const { t, pads } = explicitOrCrop(xT, [
        [top, ho + fh - 1 - h - top],
        [left, wo + fw - 1 - w - left],
      ]);
      const out = tf.conv2d(t, dyT as tf.Tensor4D, 1, convPads(pads)); // [Ci,fh,fw,Co]
      return tf.transpose(out, [1, 2, 0, 3]);
    }
    const kh = Math.ceil(fh / sh);
    const kw = Math.ceil(fw / sw);
    const hs = ho + kh - 1;
    const ws = wo + kw - 1;
    void bottom;
    void right;
    const xp = padOrCrop(x, [
      [top, sh * hs - h - top],
      [left, sw * ws - w - left],
    ]); // [N, sh·Hs, sw·Ws, Ci]
    const xs = xp
      .reshape([n, hs, sh, ws, sw, ci])
      .transpose([2, 4, 5, 1, 3, 0]) // [sh,sw,Ci,Hs,Ws,N]
      .reshape([sh * sw * ci, hs, ws, n]) as tf.Tensor4D;
    const out = tf.conv2d(xs, dyT as tf.Tensor4D, 1, 'valid'); // [sh·sw·Ci,Kh,Kw,Co]
    const dw = out
      .reshape([sh, sw, ci, kh, kw, co])
      .transpose([3, 0, 4, 1, 2, 5]) // [Kh,sh,Kw,sw,Ci,Co]
      .reshape([kh * sh, kw * sw, ci, co]) as tf.Tensor4D;
    if (kh * sh === fh && kw * sw === fw) return dw;
    return tf.slice(dw, [0, 0, 0, 0], [fh, fw, ci, co]);
  });
}

// ---------------------------------------------------------------------------------------------
// depthwise

/**
 * dx of depthwiseConv2d: one stride-1 depthwiseConv2d of dy with the reversed filter, the stride
 * phases as channel multiplier, a sum over the multiplier M, then interleave and crop.
 * @param dy [N,Ho,Wo,Ci·M]
 * @param filter [fh,fw,Ci,M]
 * @param inputShape [N,H,W,Ci]
 * @returns dx [N,H,W,Ci]
 */
export function depthwiseConv2dBackpropInput(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: [number, number, number, number],
  strides: number | Pair,
  pad: PadSpec,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape, strides, 1, pad, dimRoundingMode, true);
  const [n, h, w, ci] = inputShape;
  const [fh, fw, , m] = filter.shape;
  if (!sameShape(dy.shape, [n, info.outHeight, info.outWidth, ci * m])) {
    throw new Error(
      `DepthwiseConv2dNativeBackpropInput (tdr wasm kernel): dy [${dy.shape.join(',')}] must be ` +
        `[${[n, info.outHeight, info.outWidth, ci * m].join(',')}] for input [${inputShape.join(',')}] ` +
        `and filter [${filter.shape.join(',')}]`,
    );
  }
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const ah = phaseAxis(h, fh, sh, info.padInfo.top, info.outHeight);
  const aw = phaseAxis(w, fw, sw, info.padInfo.left, info.outWidth);
  return tf.tidy(() => {
    let f: tf.Tensor = filter;
    if (ah.k * sh !== fh || aw.k * sw !== fw) {
      f = tf.pad(filter, [[0, ah.k * sh - fh], [0, aw.k * sw - fw], [0, 0], [0, 0]]);
    }
    f = tf.reverse(f.reshape([ah.k, sh, aw.k, sw, ci * m]), [0, 2]);
    f = tf.transpose(f, [0, 2, 4, 1, 3]).reshape([ah.k, aw.k, ci * m, sh * sw]); // [Kh,Kw,Ci·M,sh·sw]
    const { t, pads } = explicitOrCrop(dy, [
      [ah.before, ah.after],
      [aw.before, aw.after],
    ]);
    let y: tf.Tensor = tf.depthwiseConv2d(t, f as tf.Tensor4D, 1, convPads(pads)); // [N,U,V,(ci,m,rh,rw)]
    if (m > 1) y = tf.sum(y.reshape([n, ah.u, aw.u, ci, m, sh * sw]), 4); // [N,U,V,Ci,sh·sw]
    if (sh === 1 && sw === 1) return y.reshape([n, h, w, ci]) as tf.Tensor4D;
    y = y
      .reshape([n, ah.u, aw.u, ci, sh, sw])
      .transpose([0, 1, 4, 2, 5, 3]) // [N,U,sh,V,sw,Ci]
      .reshape([n, ah.u * sh, aw.u * sw, ci]);
    if (ah.off === 0 && aw.off === 0 && ah.u * sh === h && aw.u * sw === w) return y as tf.Tensor4D;
    return tf.slice(y as tf.Tensor4D, [0, ah.off, aw.off, 0], [n, h, w, ci]);
  });
}

/**
 * dW of depthwiseConv2d, one filter tap at a time: dW[a,b,c,m] = Σ_{n,i,j} xpad[n,s·i+a,s·j+b,c] ·
 * dy[n,i,j,c·M+m] — a multiply and a reduction per tap (fh·fw taps).
 * @param x [N,H,W,Ci]
 * @param dy [N,Ho,Wo,Ci·M]
 * @param filterShape [fh,fw,Ci,M]
 * @returns dW [fh,fw,Ci,M]
 */
export function depthwiseConv2dBackpropFilter(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | Pair,
  pad: PadSpec,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, true);
  const [n, h, w, ci] = x.shape;
  const [fh, fw, fci, m] = filterShape;
  if (fci !== ci) {
    throw new Error(
      `DepthwiseConv2dNativeBackpropFilter (tdr wasm kernel): filterShape [${filterShape.join(',')}] in-channels must equal x channels ${ci}`,
    );
  }
  if (!sameShape(dy.shape, [n, info.outHeight, info.outWidth, ci * m])) {
    throw new Error(
      `DepthwiseConv2dNativeBackpropFilter (tdr wasm kernel): dy [${dy.shape.join(',')}] must be ` +
        `[${[n, info.outHeight, info.outWidth, ci * m].join(',')}] for x [${x.shape.join(',')}] ` +
        `and filter [${filterShape.join(',')}]`,
    );
  }
  const sh = info.strideHeight;
  const sw = info.strideWidth;
  const ho = info.outHeight;
  const wo = info.outWidth;
  const { top, left } = info.padInfo;
  return tf.tidy(() => {
    const xp = padOrCrop(x, [
      [top, sh * (ho - 1) + fh - h - top],
      [left, sw * (wo - 1) + fw - w - left],
    ]); // [N, s·(Ho−1)+fh, s·(Wo−1)+fw, Ci]
    const dyM = m > 1 ? dy.reshape([n, ho, wo, ci, m]) : dy;
    const taps: tf.Tensor[] = [];
    for (let a = 0; a < fh; a++) {
      for (let b = 0; b < fw; b++) {
        let xs: tf.Tensor =
          sh === 1 && sw === 1
            ? tf.slice(xp, [0, a, b, 0], [n, ho, wo, ci])
            : tf.stridedSlice(xp, [0, a, b, 0], [n, a + sh * (ho - 1) + 1, b + sw * (wo - 1) + 1, ci], [1, sh, sw, 1]);
        if (m > 1) xs = xs.reshape([n, ho, wo, ci, 1]);
        taps.push(tf.sum(tf.mul(xs, dyM), [0, 1, 2])); // [Ci] or [Ci,M]
      }
    }
    return tf.stack(taps).reshape([fh, fw, ci, m]) as tf.Tensor4D;
  });
}

// ---------------------------------------------------------------------------------------------
// UnsortedSegmentSum (gradient of gather)

/**
 * out[k, ...] = Σ_{i : ids[i] = k} x[i, ...]; ids outside [0, numSegments) are dropped (as in TF).
 * A float64 accumulation in JS over the data read back from the backend: O(size of x).
 * @param x [...ids.shape, ...rest]
 * @param segmentIds int32, a prefix of x's shape
 * @returns [numSegments, ...rest], dtype of x
 */
export function unsortedSegmentSum(x: tf.Tensor, segmentIds: tf.Tensor, numSegments: number): tf.Tensor {
  const idShape = segmentIds.shape;
  if (!sameShape(x.shape.slice(0, idShape.length), idShape)) {
    throw new Error(
      `UnsortedSegmentSum (tdr wasm kernel): segmentIds [${idShape.join(',')}] must be a prefix of x [${x.shape.join(',')}]`,
    );
  }
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`UnsortedSegmentSum (tdr wasm kernel): numSegments must be an integer ≥ 0, got ${numSegments}`);
  }
  const rest = x.shape.slice(idShape.length);
  const inner = rest.reduce((p, v) => p * v, 1);
  const xv = x.dataSync();
  const ids = segmentIds.dataSync();
  const acc = new Float64Array(numSegments * inner);
  for (let i = 0; i < ids.length; i++) {
    const k = ids[i];
    if (k < 0 || k >= numSegments) continue;
    const src = i * inner;
    const dst = k * inner;
    for (let j = 0; j < inner; j++) acc[dst + j] += xv[src + j];
  }
  const dtype = x.dtype === 'int32' ? 'int32' : 'float32';
  const out = dtype === 'int32' ? Int32Array.from(acc) : Float32Array.from(acc);
  return tf.tensor(out, [numSegments, ...rest], dtype);
}

// ---------------------------------------------------------------------------------------------
// registration

let registered = false;

function kernelTensor(inputs: tf.NamedTensorInfoMap, name: string, kernel: string): tf.Tensor {
  const t = inputs[name];
  if (t == null) throw new Error(`${kernel} (tdr wasm kernel): missing input '${name}'`);
  return asTensor(t);
}

/** The stock wasm kernel a tdr kernel wraps or falls back to (registered by tfjs-backend-wasm). */
function stockKernel(kernelName: string): tf.KernelConfig {
  const stock = tf.getKernel(kernelName, 'wasm');
  if (stock == null) throw new Error(`tdr: wasm backend has no stock ${kernelName} kernel to wrap`);
  return stock;
}

/**
 * dst[d..d+n) = src[s..s+n): `set` on a subarray for long runs, element-wise for short ones (no
 * subarray object per run — the cost of channel-sized runs on NHWC maps).
 */
function copyRun(dst: tf.TypedArray, d: number, src: tf.TypedArray, s: number, n: number): void {
  if (n >= 64) dst.set(src.subarray(s, s + n), d);
  else for (let k = 0; k < n; k++) dst[d + k] = src[s + k];
}

/** Smallest per-matrix work M·K·N for which a loop of 2-D matMuls beats wasm's batched loop. */
const LOOP_MIN_WORK = 65536;

/**
 * Wrap a stock matMul kernel of wasm 4.22, whose fast XNNPACK path covers only batch 1 without
 * transposes: transposes become explicit Transpose kernels, and (BatchMatMul) a batch of
 * big-enough matrices becomes a loop of 2-D matMuls (≈8× faster than the stock batched loop).
 */
function wrapMatMul(kernelName: 'BatchMatMul' | '_FusedMatMul'): tf.KernelConfig {
  const stock = stockKernel(kernelName);
  const stockFunc = stock.kernelFunc;
  const lastTwo = (t: tf.Tensor): tf.Tensor => {
    const perm = t.shape.map((_, i) => i);
    perm.splice(-2, 2, t.rank - 1, t.rank - 2);
    return tf.transpose(t, perm);
  };
  return {
    kernelName,
    backendName: 'wasm',
    setupFunc: stock.setupFunc,
    kernelFunc: (args) => {
      const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
      const made: tf.Tensor[] = [];
      const inputs = { ...args.inputs };
      try {
        if (attrs.transposeA) made.push((inputs.a = tf.tidy(() => lastTwo(kernelTensor(args.inputs, 'a', kernelName)))));
        if (attrs.transposeB) made.push((inputs.b = tf.tidy(() => lastTwo(kernelTensor(args.inputs, 'b', kernelName)))));
        const plain = { ...args, inputs, attrs: { ...args.attrs, transposeA: false, transposeB: false } };
        if (kernelName !== 'BatchMatMul') return stockFunc(plain);
        const a = inputs.a as tf.TensorInfo;
        const b = inputs.b as tf.TensorInfo;
        const outerA = a.shape.slice(0, -2);
        const outerB = b.shape.slice(0, -2);
        const batchA = outerA.reduce((p, v) => p * v, 1);
        const batchB = outerB.reduce((p, v) => p * v, 1);
        const [m, k] = a.shape.slice(-2);
        const n = b.shape[b.shape.length - 1];
        const batch = Math.max(batchA, batchB);
        const simple = batchA === 1 || batchB === 1 || sameShape(outerA, outerB);
        if (batch === 1 || !simple || m * k * n < LOOP_MIN_WORK || a.dtype !== 'float32' || b.dtype !== 'float32') {
          return stockFunc(plain);
        }
        return tf.tidy(() => {
          const outer = batchA >= batchB ? outerA : outerB;
          const rows = (t: tf.TensorInfo, count: number, r: number, c: number): tf.Tensor2D[] => {
            const flat = asTensor(t).reshape([count * r, c]) as tf.Tensor2D;
            return Array.from({ length: count }, (_, i) => tf.slice(flat, [i * r, 0], [r, c]));
          };
          const as = batchA === 1 ? null : rows(a, batchA, m, k);
          const bs = batchB === 1 ? null : rows(b, batchB, k, n);
          const a2 = as ? null : asTensor(a).reshape([m, k]);
          const b2 = bs ? null : asTensor(b).reshape([k, n]);
          const outs: tf.Tensor[] = [];
          for (let i = 0; i < batch; i++) {
            outs.push(tf.matMul((as ? as[i] : a2) as tf.Tensor2D, (bs ? bs[i] : b2) as tf.Tensor2D)); // [M,N], batch 1: stock fast path
          }
          return tf.stack(outs).reshape([...outer, m, n]);
        });
      } finally {
        tf.dispose(made);
      }
    },
  };
}

/** The wasm backend methods the Slice kernel uses (tfjs-backend-wasm 4.22 BackendWasm). */
interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): tf.backend_util.TypedArray;
}

/**
 * Slice reading the input through a heap view (the stock kernel copies all of x first), so the
 * cost is O(size of the slice): contiguous runs of the last axes are copied with `set`.
 */
function fastSlice(): tf.KernelConfig {
  const stock = stockKernel('Slice');
  return {
    kernelName: 'Slice',
    backendName: 'wasm',
    setupFunc: stock.setupFunc,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === 'string') return stock.kernelFunc(args);
      const a = args.attrs as unknown as tf.SliceAttrs;
      const [begin, size] = tf.slice_util.parseSliceParams(x, a.begin, a.size);
      const heap = args.backend as unknown as WasmHeap;
      const out = heap.makeOutput(size, x.dtype); // allocate first: growing the heap detaches views
      const xv = heap.typedArrayFromHeap(x);
      const ov = heap.typedArrayFromHeap(out);
      const rank = x.shape.length;
      if (rank === 0 || ov.length === 0) return out;
      // merge the trailing axes taken whole into one contiguous run
      let run = 1;
      let axis = rank - 1;
      while (axis > 0 && begin[axis] === 0 && size[axis] === x.shape[axis]) run *= x.shape[axis--];
      run *= size[axis];
      const strides = tf.util.computeStrides(x.shape);
      const stride = (i: number): number => (i === rank - 1 ? 1 : strides[i]);
      const idx = new Array<number>(axis).fill(0); // position over axes 0..axis-1
      let o = 0;
      for (;;) {
        let off = begin[axis] * stride(axis);
        for (let i = 0; i < axis; i++) off += (begin[i] + idx[i]) * stride(i);
        copyRun(ov, o, xv, off, run);
        o += run;
        let i = axis - 1;
        while (i >= 0 && ++idx[i] === size[i]) idx[i--] = 0;
        if (i < 0) break;
      }
      return out;
    },
  };
}

/**
 * MaxPoolGrad (wasm's stock kernel skips windows whose values are all negative): dx[argmax] += dy
 * per window, argmax = first maximum in row-major order (as the cpu backend and TF).
 */
function maxPoolGrad(): tf.KernelConfig {
  return {
    kernelName: 'MaxPoolGrad',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      const k = 'MaxPoolGrad';
      checkRank(k, 'input', inputs.input, 4);
      checkRank(k, 'dy', inputs.dy, 4);
      const a = attrs as unknown as tf.MaxPoolGradAttrs;
      const input = inputs.input as tf.TensorInfo;
      const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
      const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo, strideHeight: sh, strideWidth: sw } = info;
      const fh = info.effectiveFilterHeight;
      const fw = info.effectiveFilterWidth;
      const top = info.padInfo.top;
      const left = info.padInfo.left;
      const xv = tf.engine().readSync(input.dataId) as Float32Array;
      const dyv = tf.engine().readSync((inputs.dy as tf.TensorInfo).dataId) as Float32Array;
      const dx = new Float32Array(n * h * w * c);
      for (let b = 0; b < n; b++) {
        for (let i = 0; i < ho; i++) {
          const r0 = i * sh - top;
          for (let j = 0; j < wo; j++) {
            const c0 = j * sw - left;
            const dyOff = ((b * ho + i) * wo + j) * c;
            for (let d = 0; d < c; d++) {
              let best = -Infinity;
              let at = -1;
              for (let r = Math.max(0, r0); r < Math.min(h, r0 + fh); r++) {
                for (let q = Math.max(0, c0); q < Math.min(w, c0 + fw); q++) {
                  const idx = ((b * h + r) * w + q) * c + d;
                  if (xv[idx] > best || at < 0) {
                    best = xv[idx];
                    at = idx;
                  }
                }
              }
              if (at >= 0) dx[at] += dyv[dyOff + d];
            }
          }
        }
      }
      return tf.tensor(dx, input.shape, 'float32');
    },
  };
}

/** A stock forward conv with pad 'same' and stride > 1 rerouted to explicit padding. */
function explicitSamePad(kernelName: 'Conv2D' | 'FusedConv2D' | 'DepthwiseConv2dNative' | 'FusedDepthwiseConv2D'): tf.KernelConfig {
  const stock = stockKernel(kernelName);
  const depthwise = kernelName.includes('Depthwise');
  return {
    kernelName,
    backendName: 'wasm',
    setupFunc: stock.setupFunc,
    disposeFunc: stock.disposeFunc,
    kernelFunc: (args) => {
      const a = args.attrs as { pad?: unknown; strides?: number | number[]; dilations?: number | number[]; dataFormat?: string; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
      const [sh, sw] = pair(a.strides, 1);
      if (a.pad !== 'same' || (sh === 1 && sw === 1) || (a.dataFormat != null && a.dataFormat !== 'NHWC')) return stock.kernelFunc(args);
      const x = args.inputs.x as tf.TensorInfo;
      const filter = args.inputs.filter as tf.TensorInfo;
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filter.shape as [number, number, number, number],
        [sh, sw],
        pair(a.dilations, 1),
        'same',
        a.dimRoundingMode,
        depthwise,
      );
      const p = info.padInfo;
      const pad: tf.backend_util.ExplicitPadding = [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]];
      return stock.kernelFunc({ ...args, attrs: { ...args.attrs, pad } as never });
    },
  };
}

/**
 * SplitV (the gradient of Concat) through the registered Slice kernel: the stock one calls wasm's
 * own slice, which copies all of x for every piece (20 ms of a 500-ms U-Net step).
 */
function splitVBySlice(): tf.KernelConfig {
  return {
    kernelName: 'SplitV',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const a = args.attrs as unknown as tf.SplitVAttrs;
      const axis = tf.util.parseAxisParam(a.axis, x.shape)[0];
      const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, a.numOrSizeSplits, axis);
      const slice = tf.getKernel('Slice', 'wasm')!.kernelFunc;
      const begin = new Array<number>(x.shape.length).fill(0);
      return sizes.map((n) => {
        const size = [...x.shape];
        size[axis] = n;
        const out = slice({ inputs: { x }, attrs: { begin: [...begin], size } as never, backend: args.backend }) as tf.TensorInfo;
        begin[axis] += n;
        return out;
      });
    },
  };
}

/**
 * ResizeNearestNeighborGrad for an integer up-scaling factor (alignCorners and halfPixelCenters
 * false: output pixel y reads input floor(y/s)), as a sum over each s×s block on heap views;
 * anything else goes to the stock kernel (26 ms → ≈ 2 ms of a 500-ms U-Net step).
 */
function resizeNearestGrad(): tf.KernelConfig {
  const stock = stockKernel('ResizeNearestNeighborGrad');
  return {
    ...stock,
    kernelFunc: (args) => {
      const images = args.inputs.images as tf.TensorInfo;
      const dy = args.inputs.dy as tf.TensorInfo;
      const a = args.attrs as unknown as tf.ResizeNearestNeighborGradAttrs;
      const [n, h, w, c] = images.shape;
      const [, hy, wy] = dy.shape;
      const sy = hy / h;
      const sx = wy / w;
      if (a.alignCorners || dy.dtype !== 'float32' || !Number.isInteger(sy) || !Number.isInteger(sx) || sy < 1 || sx < 1) return stock.kernelFunc(args);
      const heap = args.backend as unknown as WasmHeap;
      const out = heap.makeOutput([n, h, w, c], 'float32');
      const o = heap.typedArrayFromHeap(out) as Float32Array;
      const d = heap.typedArrayFromHeap(dy) as Float32Array;
      o.fill(0);
      for (let b = 0; b < n; b++)
        for (let y = 0; y < hy; y++) {
          const orow = ((b * h + Math.floor(y / sy)) * w) * c;
          const drow = ((b * hy + y) * wy) * c;
          for (let x = 0; x < wy; x++) {
            const oi = orow + Math.floor(x / sx) * c;
            const di = drow + x * c;
            for (let k = 0; k < c; k++) o[oi + k] += d[di + k];
          }
        }
      return out;
    },
  };
}

/**
 * Concat on heap views; short inner runs (a channel concat of NHWC maps) are copied element-wise
 * instead of through one subarray object per run (the stock kernel's cost on [8,64,64,C] maps).
 */
function fastConcat(): tf.KernelConfig {
  const stock = stockKernel('Concat');
  return {
    ...stock,
    kernelFunc: (args) => {
      const inputs = (args.inputs as unknown as tf.TensorInfo[]).filter((t) => t.shape.reduce((p, v) => p * v, 1) > 0);
      if (inputs.length < 2 || inputs.some((t) => t.dtype === 'string')) return stock.kernelFunc(args);
      const all = args.inputs as unknown as tf.TensorInfo[];
      const axis = tf.util.parseAxisParam((args.attrs as unknown as tf.ConcatAttrs).axis, all[0].shape)[0];
      const outShape = tf.backend_util.computeOutShape(all.map((t) => t.shape), axis);
      const heap = args.backend as unknown as WasmHeap;
      const out = heap.makeOutput(outShape, all[0].dtype);
      const ov = heap.typedArrayFromHeap(out);
      const outer = inputs[0].shape.slice(0, axis).reduce((p, v) => p * v, 1);
      const inner = inputs.map((t) => t.shape.slice(axis).reduce((p, v) => p * v, 1));
      const views = inputs.map((t) => heap.typedArrayFromHeap(t));
      const total = inner.reduce((p, v) => p + v, 0);
      for (let i = 0; i < inputs.length; i++) {
        const v = views[i];
        const n = inner[i];
        let o = inner.slice(0, i).reduce((p, q) => p + q, 0);
        for (let b = 0; b < outer; b++, o += total) copyRun(ov, o, v, b * n, n);
      }
      return out;
    },
  };
}

function replace(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName) != null) {
    tf.unregisterKernel(config.kernelName, config.backendName);
  }
  tf.registerKernel(config);
}

/**
 * Register the tdr kernels for 'wasm' (once per process; later calls do nothing). Call before
 * `tf.setBackend('wasm')` so the wrapped stock kernels keep their setup.
 * @returns the kernel names registered
 */
export function registerWasmKernels(): readonly string[] {
  if (registered) return WASM_KERNELS;
  const b = 'wasm';
  const matMul = wrapMatMul('BatchMatMul');
  const fusedMatMul = wrapMatMul('_FusedMatMul');
  // the four convolution gradients: two rank-4 inputs, a layout/dilation check, one pure-TS kernel
  const convGrad = <A>(
    kernelName: string,
    names: readonly [string, string],
    check: (k: string, a: A) => void,
    fn: (p: tf.Tensor4D, q: tf.Tensor4D, a: A) => tf.Tensor,
  ): void =>
    replace({
      kernelName,
      backendName: b,
      kernelFunc: ({ inputs, attrs }) => {
        for (const n of names) checkRank(kernelName, n, inputs[n], 4);
        const a = attrs as unknown as A;
        check(kernelName, a);
        return tf.tidy(() => fn(kernelTensor(inputs, names[0], kernelName) as tf.Tensor4D, kernelTensor(inputs, names[1], kernelName) as tf.Tensor4D, a));
      },
    });
  convGrad<tf.Conv2DBackpropFilterAttrs>('Conv2DBackpropFilter', ['x', 'dy'], (k, a) => checkNHWC(k, a.dataFormat), (x, dy, a) =>
    conv2dBackpropFilter(x, dy, a.filterShape, a.strides, a.pad, a.dimRoundingMode),
  );
  convGrad<tf.Conv2DBackpropInputAttrs>('Conv2DBackpropInput', ['dy', 'filter'], (k, a) => checkNHWC(k, a.dataFormat), (dy, w, a) =>
    conv2dBackpropInput(dy, w, a.inputShape, a.strides, a.pad, a.dimRoundingMode),
  );
  convGrad<tf.DepthwiseConv2dNativeBackpropFilterAttrs>('DepthwiseConv2dNativeBackpropFilter', ['x', 'dy'], (k, a) => checkDilations(k, a.dilations), (x, dy, a) =>
    depthwiseConv2dBackpropFilter(x, dy, a.filterShape, a.strides, a.pad, a.dimRoundingMode),
  );
  convGrad<tf.DepthwiseConv2dNativeBackpropInputAttrs>('DepthwiseConv2dNativeBackpropInput', ['dy', 'filter'], (k, a) => checkDilations(k, a.dilations), (dy, w, a) =>
    depthwiseConv2dBackpropInput(dy, w, a.inputShape, a.strides, a.pad, a.dimRoundingMode),
  );
  replace({
    kernelName: 'UnsortedSegmentSum',
    backendName: b,
    kernelFunc: ({ inputs, attrs }) => {
      const k = 'UnsortedSegmentSum';
      const a = attrs as unknown as tf.UnsortedSegmentSumAttrs;
      return tf.tidy(() =>
        unsortedSegmentSum(kernelTensor(inputs, 'x', k), kernelTensor(inputs, 'segmentIds', k), a.numSegments),
      );
    },
  });
  replace(matMul);
  replace(fusedMatMul);
  replace(fastSlice());
  replace(maxPoolGrad());
  replace(splitVBySlice());
  replace(fastConcat());
  replace(resizeNearestGrad());
  for (const name of ['Conv2D', 'FusedConv2D', 'DepthwiseConv2dNative', 'FusedDepthwiseConv2D'] as const) {
    replace(explicitSamePad(name));
  }
  registered = true;
  return WASM_KERNELS;
}
