/**
 * Kernel fixes for the `tensorflow` backend (@tensorflow/tfjs-node 4.22 on the TensorFlow C library).
 *
 * Its four convolution-gradient kernels refuse explicit padding, which tfjs-core's conv2d and
 * depthwiseConv2d accept (`pad: [[0,0],[t,b],[l,r],[0,0]]`): Conv2DBackpropInput/Filter throw "TF
 * Backend supports only 'valid' and 'same' padding", the depthwise ones pass no explicit_paddings
 * and TensorFlow fails. With explicit padding the gradients are those of a 'valid' convolution of
 * the padded input xp = pad(x):
 *   backprop filter  dW = Conv2DBackpropFilter(xp, dy, 'valid')
 *   backprop input   dx = crop(Conv2DBackpropInput(dy, W, shape of xp, 'valid'))   (crop = the t/l offset, H×W)
 * Anything else (and any shape this does not fit) goes to the stock kernel unchanged. Registered for
 * 'tensorflow' only; checked against the cpu backend by test/backend/gradients.test.ts run with
 * TDR_BACKEND=tensorflow.
 *
 * `Step` (the ReLU derivative: tfjs-core's ReLU and fused-conv ReLU gradients multiply dy by
 * step(y)) is a speed fix: tfjs-node builds it from six TensorFlow ops and four full-size
 * temporaries (isNaN, greater, ones, fill, two Selects), which took 19 % of the reference U-Net's
 * training step (tf.profile, 1 thread). For alpha 0 it is sign(relu(x)): 1 for x > 0, 0 for x ≤ 0
 * and ±0, NaN for NaN, as the stock kernel; two ops. Other alphas go to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs';

/** Kernel names this module wraps for 'tensorflow'. */
export const TENSORFLOW_KERNELS = ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput', 'Step'] as const;

type Shape4 = [number, number, number, number];
interface ConvGradAttrs {
  strides: number | [number, number];
  pad: unknown;
  dataFormat?: string;
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape?: Shape4;
  inputShape?: Shape4;
}

/** [t, b, l, r] of an NHWC explicit padding, or null for 'same' / 'valid' / a number / another layout. */
function explicitPads(a: ConvGradAttrs): [number, number, number, number] | null {
  if (!Array.isArray(a.pad) || (a.dataFormat != null && a.dataFormat !== 'NHWC' && a.dataFormat !== 'channelsLast')) return null;
  const p = a.pad as tf.backend_util.ExplicitPadding;
  if (p.length !== 4 || p[0][0] || p[0][1] || p[3][0] || p[3][1]) return null;
  return [p[1][0], p[1][1], p[2][0], p[2][1]];
}

function asTensor(t: tf.TensorInfo): tf.Tensor {
  return (t as tf.Tensor).rank != null ? (t as tf.Tensor) : tf.engine().makeTensorFromTensorInfo(t);
}

/** Output [Ho, Wo] of a 'valid' convolution of an input of `shape` with `filter`. */
function validOut(shape: Shape4, filter: Shape4, a: ConvGradAttrs, depthwise: boolean): [number, number] {
  const info = tf.backend_util.computeConv2DInfo(shape, filter, a.strides, a.dilations ?? 1, 'valid', undefined, depthwise);
  return [info.outHeight, info.outWidth];
}

function wrap(kernelName: (typeof TENSORFLOW_KERNELS)[number]): void {
  const stock = tf.getKernel(kernelName, 'tensorflow');
  if (stock == null) throw new Error(`tdr: the tensorflow backend has no ${kernelName} kernel to wrap`);
  const depthwise = kernelName.startsWith('Depthwise');
  const filterGrad = kernelName.endsWith('Filter');
  tf.unregisterKernel(kernelName, 'tensorflow');
  tf.registerKernel({
    ...stock,
    kernelFunc: (args) => {
      const a = args.attrs as unknown as ConvGradAttrs;
      const pads = explicitPads(a);
      if (pads == null) return stock.kernelFunc(args);
      const [t, b, l, r] = pads;
      const dy = args.inputs.dy as tf.TensorInfo;
      if (filterGrad) {
        const x = args.inputs.x as tf.TensorInfo;
        const fs = a.filterShape as Shape4;
        const [n, h, w, c] = x.shape as Shape4;
        const [ho, wo] = validOut([n, h + t + b, w + l + r, c], fs, a, depthwise);
        if (dy.shape[1] !== ho || dy.shape[2] !== wo) return stock.kernelFunc(args);
        return tf.tidy(() => {
          const xp = tf.pad(asTensor(x), [[0, 0], [t, b], [l, r], [0, 0]]);
          return asTensor(stock.kernelFunc({ ...args, inputs: { ...args.inputs, x: xp }, attrs: { ...args.attrs, pad: 'valid' } as never }) as tf.TensorInfo);
        });
      }
      const filter = args.inputs.filter as tf.TensorInfo;
      const [n, h, w, c] = a.inputShape as Shape4;
      const padded: Shape4 = [n, h + t + b, w + l + r, c];
      const [ho, wo] = validOut(padded, filter.shape as Shape4, a, depthwise);
      if (dy.shape[1] !== ho || dy.shape[2] !== wo) return stock.kernelFunc(args);
      return tf.tidy(() => {
        const dxp = asTensor(stock.kernelFunc({ ...args, attrs: { ...args.attrs, inputShape: padded, pad: 'valid' } as never }) as tf.TensorInfo);
        return tf.slice(dxp, [0, t, l, 0], [n, h, w, c]);
      });
    },
  });
}

function wrapStep(): void {
  const stock = tf.getKernel('Step', 'tensorflow');
  if (stock == null) throw new Error('tdr: the tensorflow backend has no Step kernel to wrap');
  tf.unregisterKernel('Step', 'tensorflow');
  tf.registerKernel({
    ...stock,
    kernelFunc: (args) => {
      const alpha = (args.attrs as { alpha?: number }).alpha ?? 0;
      const x = args.inputs.x as tf.TensorInfo;
      if (alpha !== 0 || x.dtype !== 'float32') return stock.kernelFunc(args);
      return tf.tidy(() => tf.sign(tf.relu(asTensor(x))));
    },
  });
}

let registered = false;

/** Wrap the tensorflow backend's convolution gradients and Step (once per process; call after tfjs-node loaded). */
export function registerTensorflowKernels(): readonly string[] {
  if (registered) return TENSORFLOW_KERNELS;
  for (const k of TENSORFLOW_KERNELS) if (k === 'Step') wrapStep(); else wrap(k);
  registered = true;
  return TENSORFLOW_KERNELS;
}
