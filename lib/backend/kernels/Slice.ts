/** The tdr Slice kernel for wasm (why: ../kernels.ts). */
import * as tf from '@tensorflow/tfjs';
import { copyRun, stockKernel, type WasmHeap } from './shared';

/**
 * Slice reading the input through a heap view (the stock kernel copies all of x first), so the
 * cost is O(size of the slice): contiguous runs of the last axes are copied with `set`.
 */
export function sliceConfig(): tf.KernelConfig {
  const stock = stockKernel('Slice');
  return {
    kernelName: 'Slice',
    backendName: 'wasm',
    setupFunc: stock.setupFunc,
    kernelFunc: (args) => {
      const x = args.inputs.x as tf.TensorInfo;
      if (x.dtype === 'string') return stock.kernelFunc(args);
      const a = args.attrs as unknown as tf.SliceAttrs;
      const [begin, size] = tf.slice_util.parseSliceParams(x, a.begin, a.size);
      const heap = args.backend as unknown as WasmHeap;
      const out = heap.makeOutput(size, x.dtype); // allocate first: growing the heap detaches views
      const xv = heap.typedArrayFromHeap(x);
      const ov = heap.typedArrayFromHeap(out);
      const rank = x.shape.length;
      if (rank === 0 || ov.length === 0) return out;
      // merge the trailing axes taken whole into one contiguous run
      let run = 1;
      let axis = rank - 1;
      while (axis > 0 && begin[axis] === 0 && size[axis] === x.shape[axis]) run *= x.shape[axis--];
      run *= size[axis];
      const strides = tf.util.computeStrides(x.shape);
      const stride = (i: number): number => (i === rank - 1 ? 1 : strides[i]);
      const idx = new Array<number>(axis).fill(0); // position over axes 0..axis-1
      let o = 0;
      for (;;) {
        let off = begin[axis] * stride(axis);
        for (let i = 0; i < axis; i++) off += (begin[i] + idx[i]) * stride(i);
        copyRun(ov, o, xv, off, run);
        o += run;
        let i = axis - 1;
        while (i >= 0 && ++idx[i] === size[i]) idx[i--] = 0;
        if (i < 0) break;
      }
      return out;
    },
  };
}
