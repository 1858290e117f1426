/** The tdr DepthwiseConv2dNativeBackpropFilter kernel for wasm (why and notation: ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';
import { convGradInfo, checkDilations, convGradConfig, padOrCrop, type PadSpec, type Pair } from './shared';

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
  const info = convGradInfo('DepthwiseConv2dNativeBackpropFilter', true, { name: 'x', shape: x.shape }, filterShape, dy.shape, strides, pad, dimRoundingMode);
  const [n, h, w, ci] = x.shape;
  const [fh, fw, , m] = filterShape;
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

/** DepthwiseConv2dNativeBackpropFilter (x, dy) through {@link depthwiseConv2dBackpropFilter}. */
export function depthwiseConv2dNativeBackpropFilterConfig(): tf.KernelConfig {
  return convGradConfig<tf.DepthwiseConv2dNativeBackpropFilterAttrs>('DepthwiseConv2dNativeBackpropFilter', ['x', 'dy'], (k, a) => checkDilations(k, a.dilations), (x, dy, a) =>
    depthwiseConv2dBackpropFilter(x, dy, a.filterShape, a.strides, a.pad, a.dimRoundingMode),
  );
}
