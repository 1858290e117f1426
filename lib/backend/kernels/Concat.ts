/** The tdr Concat kernel for wasm (why: ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';
import { copyRun, stockKernel, type WasmHeap } from './shared';

/**
 * Concat on heap views; short inner runs (a channel concat of NHWC maps) are copied element-wise
 * instead of through one subarray object per run (the stock kernel's cost on [8,64,64,C] maps).
 */
export function concatConfig(): tf.KernelConfig {
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
