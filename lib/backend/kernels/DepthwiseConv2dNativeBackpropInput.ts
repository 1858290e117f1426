/** The tdr DepthwiseConv2dNativeBackpropInput kernel for wasm (why and notation: ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';
import { convGradInfo, checkDilations, convGradConfig, convPads, explicitOrCrop, type PadSpec, type Pair, phaseAxis } from './shared';

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
  const info = convGradInfo('DepthwiseConv2dNativeBackpropInput', true, { name: 'input', shape: inputShape }, filter.shape as [number, number, number, number], dy.shape, strides, pad, dimRoundingMode);
  const [n, h, w, ci] = inputShape;
  const [fh, fw, , m] = filter.shape;
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

/** DepthwiseConv2dNativeBackpropInput (dy, filter) through {@link depthwiseConv2dBackpropInput}. */
export function depthwiseConv2dNativeBackpropInputConfig(): tf.KernelConfig {
  return convGradConfig<tf.DepthwiseConv2dNativeBackpropInputAttrs>('DepthwiseConv2dNativeBackpropInput', ['dy', 'filter'], (k, a) => checkDilations(k, a.dilations), (dy, w, a) =>
    depthwiseConv2dBackpropInput(dy, w, a.inputShape, a.strides, a.pad, a.dimRoundingMode),
  );
}
