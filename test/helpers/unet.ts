/** Shared by the UNet and diffusion tests. */
import * as tf from '@tensorflow/tfjs';
import { Params } from '../../lib/models/params';
import { Rng } from '../../lib/util/rng';

/** Give every zero-initialised weight (convOut, attention outputs) small random values so gradients reach every layer. */
export function randomizeZeroInit(p: Params, seed: number): void {
  const rng = new Rng(seed);
  for (const [name, v] of p.entries()) {
    if (/(convOut|\.o)\.w$/.test(name)) {
      const a = new Float32Array(v.size).map(() => rng.normal() * 0.1);
      tf.tidy(() => v.assign(tf.tensor(a, v.shape)));
    }
  }
}
