/** The tdr BatchMatMul kernel for wasm (why: ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';
import { asTensor, kernelTensor, sameShape, stockKernel } from './shared';

/** Smallest per-matrix work M·K·N for which a loop of 2-D matMuls beats wasm's batched loop. */
const LOOP_MIN_WORK = 65536;

/**
 * Wrap a stock matMul kernel of wasm 4.22, whose fast XNNPACK path covers only batch 1 without
 * transposes: transposes become explicit Transpose kernels, and (BatchMatMul) a batch of
 * big-enough matrices becomes a loop of 2-D matMuls (≈8× faster than the stock batched loop).
 */
export function wrapMatMul(kernelName: 'BatchMatMul' | '_FusedMatMul'): tf.KernelConfig {
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

/** BatchMatMul: explicit transposes, a loop of 2-D matMuls for big batched products. */
export function batchMatMulConfig(): tf.KernelConfig {
  return wrapMatMul('BatchMatMul');
}
