/** The tdr SplitV kernel for wasm (why: ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';

/**
 * SplitV (the gradient of Concat) through the registered Slice kernel: the stock one calls wasm's
 * own slice, which copies all of x for every piece (20 ms of a 500-ms U-Net step).
 */
export function splitVConfig(): tf.KernelConfig {
  return {
    kernelName: 'SplitV',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      const a = args.attrs as unknown as tf.SplitVAttrs;
      const axis = tf.util.parseAxisParam(a.axis, x.shape)[0];
      const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, a.numOrSizeSplits, axis);
      const slice = tf.getKernel('Slice', 'wasm')!.kernelFunc;
      const begin = new Array<number>(x.shape.length).fill(0);
      return sizes.map((n) => {
        const size = [...x.shape];
        size[axis] = n;
        const out = slice({ inputs: { x }, attrs: { begin: [...begin], size } as never, backend: args.backend }) as tf.TensorInfo;
        begin[axis] += n;
        return out;
      });
    },
  };
}
