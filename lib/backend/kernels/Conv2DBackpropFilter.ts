/** The tdr Conv2DBackpropFilter kernel for wasm (why and notation: ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';
import { convGradInfo, checkNHWC, convGradConfig, convPads, explicitOrCrop, padOrCrop, type PadSpec, type Pair } from './shared';

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
  const info = convGradInfo('Conv2DBackpropFilter', false, { name: 'x', shape: x.shape }, filterShape, dy.shape, strides, pad, dimRoundingMode);
  const [n, h, w, ci] = x.shape;
  const [fh, fw, , co] = filterShape;
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

/** Conv2DBackpropFilter (x, dy) through {@link conv2dBackpropFilter}. */
export function conv2DBackpropFilterConfig(): tf.KernelConfig {
  return convGradConfig<tf.Conv2DBackpropFilterAttrs>('Conv2DBackpropFilter', ['x', 'dy'], (k, a) => checkNHWC(k, a.dataFormat), (x, dy, a) =>
    conv2dBackpropFilter(x, dy, a.filterShape, a.strides, a.pad, a.dimRoundingMode),
  );
}
