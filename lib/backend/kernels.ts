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
 * explicit padding computed by tfjs instead. Each kernel is a short composition of stock kernels
 * (conv2d, depthwiseConv2d, transpose, pad, depthToSpace, …), checked against the cpu backend in
 * test/backend/gradients.test.ts.
 *
 * Files: one kernel per file in ./kernels/ (named after the kernel, as tfjs-backend-wasm's
 * src/kernels/), each exporting a `…Config()` that builds its KernelConfig; helpers shared by
 * several kernels in ./kernels/shared.ts; this file lists and registers them.
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

import { batchMatMulConfig } from './kernels/BatchMatMul';
import { concatConfig } from './kernels/Concat';
import { conv2DConfig } from './kernels/Conv2D';
import { conv2DBackpropFilterConfig } from './kernels/Conv2DBackpropFilter';
import { conv2DBackpropInputConfig } from './kernels/Conv2DBackpropInput';
import { depthwiseConv2dNativeConfig } from './kernels/DepthwiseConv2dNative';
import { depthwiseConv2dNativeBackpropFilterConfig } from './kernels/DepthwiseConv2dNativeBackpropFilter';
import { depthwiseConv2dNativeBackpropInputConfig } from './kernels/DepthwiseConv2dNativeBackpropInput';
import { fusedConv2DConfig } from './kernels/FusedConv2D';
import { fusedDepthwiseConv2DConfig } from './kernels/FusedDepthwiseConv2D';
import { _fusedMatMulConfig } from './kernels/_FusedMatMul';
import { maxPoolGradConfig } from './kernels/MaxPoolGrad';
import { resizeNearestNeighborGradConfig } from './kernels/ResizeNearestNeighborGrad';
import { sliceConfig } from './kernels/Slice';
import { splitVConfig } from './kernels/SplitV';
import { unsortedSegmentSumConfig } from './kernels/UnsortedSegmentSum';

export { conv2dBackpropInput } from './kernels/Conv2DBackpropInput';
export { conv2dBackpropFilter } from './kernels/Conv2DBackpropFilter';
export { depthwiseConv2dBackpropInput } from './kernels/DepthwiseConv2dNativeBackpropInput';
export { depthwiseConv2dBackpropFilter } from './kernels/DepthwiseConv2dNativeBackpropFilter';
export { unsortedSegmentSum } from './kernels/UnsortedSegmentSum';

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

let registered = false;

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
  // each factory looks up the stock kernel it wraps now, before its own replace
  replace(conv2DBackpropFilterConfig());
  replace(conv2DBackpropInputConfig());
  replace(depthwiseConv2dNativeBackpropFilterConfig());
  replace(depthwiseConv2dNativeBackpropInputConfig());
  replace(unsortedSegmentSumConfig());
  replace(batchMatMulConfig());
  replace(_fusedMatMulConfig());
  replace(sliceConfig());
  replace(maxPoolGradConfig());
  replace(splitVConfig());
  replace(concatConfig());
  replace(resizeNearestNeighborGradConfig());
  replace(conv2DConfig());
  replace(fusedConv2DConfig());
  replace(depthwiseConv2dNativeConfig());
  replace(fusedDepthwiseConv2DConfig());
  registered = true;
  return WASM_KERNELS;
}
