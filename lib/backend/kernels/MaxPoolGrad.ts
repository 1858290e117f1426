/** The tdr MaxPoolGrad kernel for wasm (why: ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';
import { checkRank } from './shared';

/**
 * MaxPoolGrad (wasm's stock kernel skips windows whose values are all negative): dx[argmax] += dy
 * per window, argmax = first maximum in row-major order (as the cpu backend and TF).
 */
export function maxPoolGradConfig(): tf.KernelConfig {
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
