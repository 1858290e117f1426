/** The tdr DepthwiseConv2dNative kernel for wasm (why: ../kernels.ts). */
import type * as tf from '@tensorflow/tfjs';
import { explicitSamePad } from './Conv2D';

/** DepthwiseConv2dNative with pad 'same' and stride > 1 through explicit padding (see {@link explicitSamePad}). */
export function depthwiseConv2dNativeConfig(): tf.KernelConfig {
  return explicitSamePad('DepthwiseConv2dNative');
}
