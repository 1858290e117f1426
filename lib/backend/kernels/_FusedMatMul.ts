/** The tdr _FusedMatMul kernel for wasm (why: ../kernels.ts). */
import type * as tf from '@tensorflow/tfjs';
import { wrapMatMul } from './BatchMatMul';

/** _FusedMatMul with its transposes made explicit (see {@link wrapMatMul}). */
export function _fusedMatMulConfig(): tf.KernelConfig {
  return wrapMatMul('_FusedMatMul');
}
