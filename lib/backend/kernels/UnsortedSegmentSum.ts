/** The tdr UnsortedSegmentSum (the gradient of gather) kernel for wasm (why: ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';
import { kernelTensor, sameShape } from './shared';

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

/** UnsortedSegmentSum (x, segmentIds) through {@link unsortedSegmentSum}. */
export function unsortedSegmentSumConfig(): tf.KernelConfig {
  return {
    kernelName: 'UnsortedSegmentSum',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs }) => {
      const k = 'UnsortedSegmentSum';
      const a = attrs as unknown as tf.UnsortedSegmentSumAttrs;
      return tf.tidy(() =>
        unsortedSegmentSum(kernelTensor(inputs, 'x', k), kernelTensor(inputs, 'segmentIds', k), a.numSegments),
      );
    },
  };
}
