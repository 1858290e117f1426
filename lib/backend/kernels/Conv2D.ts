/** The tdr Conv2D kernel for wasm (why: ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';
import { pair, stockKernel } from './shared';

/** A stock forward conv with pad 'same' and stride > 1 rerouted to explicit padding. */
export function explicitSamePad(kernelName: 'Conv2D' | 'FusedConv2D' | 'DepthwiseConv2dNative' | 'FusedDepthwiseConv2D'): tf.KernelConfig {
  const stock = stockKernel(kernelName);
  const depthwise = kernelName.includes('Depthwise');
  return {
    kernelName,
    backendName: 'wasm',
    setupFunc: stock.setupFunc,
    disposeFunc: stock.disposeFunc,
    kernelFunc: (args) => {
      const a = args.attrs as { pad?: unknown; strides?: number | number[]; dilations?: number | number[]; dataFormat?: string; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
      const [sh, sw] = pair(a.strides, 1);
      if (a.pad !== 'same' || (sh === 1 && sw === 1) || (a.dataFormat != null && a.dataFormat !== 'NHWC')) return stock.kernelFunc(args);
      const x = args.inputs.x as tf.TensorInfo;
      const filter = args.inputs.filter as tf.TensorInfo;
      const info = tf.backend_util.computeConv2DInfo(
        x.shape as [number, number, number, number],
        filter.shape as [number, number, number, number],
        [sh, sw],
        pair(a.dilations, 1),
        'same',
        a.dimRoundingMode,
        depthwise,
      );
      const p = info.padInfo;
      const pad: tf.backend_util.ExplicitPadding = [[0, 0], [p.top, p.bottom], [p.left, p.right], [0, 0]];
      return stock.kernelFunc({ ...args, attrs: { ...args.attrs, pad } as never });
    },
  };
}

/** Conv2D with pad 'same' and stride > 1 through explicit padding (see {@link explicitSamePad}). */
export function conv2DConfig(): tf.KernelConfig {
  return explicitSamePad('Conv2D');
}
