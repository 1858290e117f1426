/** The tdr FusedDepthwiseConv2D kernel for wasm (why: ../kernels.ts). */
import type * as tf from '@tensorflow/tfjs';
import { explicitSamePad } from './Conv2D';

/** FusedDepthwiseConv2D with pad 'same' and stride > 1 through explicit padding (see {@link explicitSamePad}). */
export function fusedDepthwiseConv2DConfig(): tf.KernelConfig {
  return explicitSamePad('FusedDepthwiseConv2D');
}
