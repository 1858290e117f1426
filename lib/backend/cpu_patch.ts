/**
 * Correct ResizeNearestNeighborGrad and ResizeBilinearGrad for the tfjs 4.22 `cpu` backend.
 *
 * tfjs-backend-cpu 4.22.0 offsets dy by the *input's* batch stride, so its gradient of
 * `tf.image.resizeNearestNeighbor` is wrong for batch > 1 (its `ResizeNearestNeighborGrad` kernel). The cpu backend is the
 * oracle of the gradient tests, so they install this first. Same index rule as the forward kernel:
 * source row = min(H−1, alignCorners ? round(y·scale) : floor(y·scale)), scale = effective sizes ratio;
 * dx[n,r,c,d] = Σ of dy over the output pixels whose source is (r,c).
 */
import * as tf from '@tensorflow/tfjs';

let patched = false;

/**
 * @param images [N,H,W,C] the forward input (only its shape is used)
 * @param dy [N,Ho,Wo,C] float32
 * @returns dx [N,H,W,C] float32
 */
export function resizeNearestNeighborGradValues(
  imagesShape: readonly number[],
  dyShape: readonly number[],
  dyValues: ArrayLike<number>,
  alignCorners: boolean,
): Float32Array {
  const [n, h, w, c] = imagesShape;
  const [dn, ho, wo, dc] = dyShape;
  if (dn !== n || dc !== c) {
    throw new Error(`ResizeNearestNeighborGrad (tdr cpu patch): dy [${dyShape.join(',')}] and images [${imagesShape.join(',')}] must agree in batch and channels`);
  }
  const effX = [alignCorners && ho > 1 ? h - 1 : h, alignCorners && wo > 1 ? w - 1 : w];
  const effY = [alignCorners && ho > 1 ? ho - 1 : ho, alignCorners && wo > 1 ? wo - 1 : wo];
  const scaleH = effX[0] / effY[0];
  const scaleW = effX[1] / effY[1];
  const src = (v: number, size: number, scale: number): number =>
    Math.min(size - 1, alignCorners ? Math.round(v * scale) : Math.floor(v * scale));
  const out = new Float32Array(n * h * w * c);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < ho; y++) {
      const r = src(y, h, scaleH);
      for (let x = 0; x < wo; x++) {
        const col = src(x, w, scaleW);
        const dst = ((b * h + r) * w + col) * c;
        const from = ((b * ho + y) * wo + x) * c;
        for (let d = 0; d < c; d++) out[dst + d] += dyValues[from + d];
      }
    }
  }
  return out;
}

/**
 * Replace cpu's ResizeNearestNeighborGrad with the correct one, and fix the shape of cpu's
 * ResizeBilinearGrad (4.22 returns [N,W,H,C] for images [N,H,W,C]; its values are right).
 * Idempotent.
 */
export function patchCpuResizeNearestNeighborGrad(): void {
  if (patched) return;
  const bilinear = tf.getKernel('ResizeBilinearGrad', 'cpu');
  if (bilinear != null) {
    tf.unregisterKernel('ResizeBilinearGrad', 'cpu');
    tf.registerKernel({
      ...bilinear,
      kernelFunc: (args) => {
        const out = bilinear.kernelFunc(args) as tf.TensorInfo;
        return { ...out, shape: [...(args.inputs.images as tf.TensorInfo).shape] };
      },
    });
  }
  const name = 'ResizeNearestNeighborGrad';
  if (tf.getKernel(name, 'cpu') != null) tf.unregisterKernel(name, 'cpu');
  tf.registerKernel({
    kernelName: name,
    backendName: 'cpu',
    kernelFunc: ({ inputs, attrs }) => {
      const { images, dy } = inputs as { images: tf.TensorInfo; dy: tf.TensorInfo };
      const { alignCorners } = attrs as unknown as tf.ResizeNearestNeighborGradAttrs;
      const dyValues = tf.engine().readSync(dy.dataId) as Float32Array;
      const values = resizeNearestNeighborGradValues(images.shape, dy.shape, dyValues, alignCorners);
      return tf.tensor(values, images.shape, 'float32');
    },
  });
  patched = true;
}
