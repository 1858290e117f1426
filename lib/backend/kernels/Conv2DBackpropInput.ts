/** The tdr Conv2DBackpropInput kernel for wasm (why and notation: ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';
import { convGradInfo, checkNHWC, convGradConfig, convPads, explicitOrCrop, type PadSpec, type Pair, phaseAxis } from './shared';

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
  const info = convGradInfo('Conv2DBackpropInput', false, { name: 'input', shape: inputShape }, filter.shape as [number, number, number, number], dy.shape, strides, pad, dimRoundingMode);
  const [n, h, w, ci] = inputShape;
  const [fh, fw, , co] = filter.shape;
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

/** Conv2DBackpropInput (dy, filter) through {@link conv2dBackpropInput}. */
export function conv2DBackpropInputConfig(): tf.KernelConfig {
  return convGradConfig<tf.Conv2DBackpropInputAttrs>('Conv2DBackpropInput', ['dy', 'filter'], (k, a) => checkNHWC(k, a.dataFormat), (dy, w, a) =>
    conv2dBackpropInput(dy, w, a.inputShape, a.strides, a.pad, a.dimRoundingMode),
  );
}
