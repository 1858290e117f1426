/** The tdr ResizeNearestNeighborGrad kernel for wasm (why: ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';
import { stockKernel, type WasmHeap } from './shared';

/**
 * ResizeNearestNeighborGrad for an integer up-scaling factor (alignCorners and halfPixelCenters
 * false: output pixel y reads input floor(y/s)), as a sum over each s×s block on heap views;
 * anything else goes to the stock kernel (26 ms → ≈ 2 ms of a 500-ms U-Net step).
 */
export function resizeNearestNeighborGradConfig(): tf.KernelConfig {
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
