/** The tdr FusedConv2D kernel for wasm (why: ../kernels.ts). */
import type * as tf from '@tensorflow/tfjs';
import { explicitSamePad } from './Conv2D';

/** FusedConv2D with pad 'same' and stride > 1 through explicit padding (see {@link explicitSamePad}). */
export function fusedConv2DConfig(): tf.KernelConfig {
  return explicitSamePad('FusedConv2D');
}
