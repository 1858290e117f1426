/**
 * The autoencoder E/D of the latent diffusion model (the role of Stable Diffusion's VAE, Rombach et
 * al. 2022, §3.1), small enough to train on a CPU. Deterministic (no KL sampling): the latent is
 * kept near unit scale by a small L2 penalty and a `scale` factor measured on data after training
 * (SD's 0.18215 plays the same role), so that diffusion runs on z·scale ~ N(0, I)-sized values.
 *
 * Encoder  x [B,H,W,3] in [0,1] → ×2−1 → conv → (ResBlock, down)×(L−1) → ResBlock → conv → z [B,H/2^(L−1),W/2^(L−1),zc]
 * Decoder  z → conv → ResBlock → (up, ResBlock)×(L−1) → conv → (x̂+1)/2          (up = nearest ×2 + conv)
 *
 * Deviations from SD's VAE: no attention blocks, no KL term, GroupNorm+SiLU ResBlocks kept.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { Params } from './params';
import { Conv2d, GroupNorm, silu } from './nn';
import { Rng } from '../util/rng';

export const AutoencoderConfigSchema = z.strictObject({
  channels: z.array(z.number().int().positive()).min(1).max(5).describe('feature width per resolution level; levels−1 = log2(downsampling factor)'),
  latentChannels: z.number().int().positive().default(4).describe('channels of the latent z'),
  groups: z.number().int().positive().default(8).describe('GroupNorm groups'),
});
export type AutoencoderConfig = z.infer<typeof AutoencoderConfigSchema>;

/** GroupNorm → SiLU → conv → GroupNorm → SiLU → conv, plus a 1×1 skip when widths differ. */
class ResBlock {
  readonly n1: GroupNorm;
  readonly c1: Conv2d;
  readonly n2: GroupNorm;
  readonly c2: Conv2d;
  readonly skip?: Conv2d;
  constructor(p: Params, name: string, cin: number, cout: number, groups: number, rng: Rng) {
    this.n1 = new GroupNorm(p, `${name}.n1`, cin, Math.min(groups, cin));
    this.c1 = new Conv2d(p, `${name}.c1`, cin, cout, rng);
    this.n2 = new GroupNorm(p, `${name}.n2`, cout, Math.min(groups, cout));
    this.c2 = new Conv2d(p, `${name}.c2`, cout, cout, rng, { gain: 0.5 });
    if (cin !== cout) this.skip = new Conv2d(p, `${name}.skip`, cin, cout, rng, { k: 1 });
  }
  call(x: tf.Tensor4D): tf.Tensor4D {
    const h = this.c2.call(silu(this.n2.call(this.c1.call(silu(this.n1.call(x))))));
    return tf.add(this.skip ? this.skip.call(x) : x, h);
  }
}

export class Autoencoder {
  /** spatial downsampling factor H / h */
  readonly factor: number;
  private readonly encIn: Conv2d;
  private readonly encBlocks: ResBlock[] = [];
  private readonly encDown: Conv2d[] = [];
  private readonly encOut: Conv2d;
  private readonly decIn: Conv2d;
  private readonly decBlocks: ResBlock[] = [];
  private readonly decUp: Conv2d[] = [];
  private readonly decNorm: GroupNorm;
  private readonly decOut: Conv2d;

  constructor(p: Params, readonly prefix: string, readonly cfg: AutoencoderConfig, rng: Rng) {
    const ch = cfg.channels;
    const L = ch.length;
    this.factor = 2 ** (L - 1);
    const g = cfg.groups;
    this.encIn = new Conv2d(p, `${prefix}.enc.in`, 3, ch[0], rng);
    for (let i = 0; i < L; i++) {
      this.encBlocks.push(new ResBlock(p, `${prefix}.enc.res${i}`, ch[i], ch[i], g, rng));
      if (i < L - 1) this.encDown.push(new Conv2d(p, `${prefix}.enc.down${i}`, ch[i], ch[i + 1], rng, { stride: 2 }));
    }
    this.encOut = new Conv2d(p, `${prefix}.enc.out`, ch[L - 1], cfg.latentChannels, rng);
    this.decIn = new Conv2d(p, `${prefix}.dec.in`, cfg.latentChannels, ch[L - 1], rng);
    for (let i = L - 1; i >= 0; i--) {
      this.decBlocks.push(new ResBlock(p, `${prefix}.dec.res${i}`, ch[i], ch[i], g, rng));
      if (i > 0) this.decUp.push(new Conv2d(p, `${prefix}.dec.up${i}`, ch[i], ch[i - 1], rng));
    }
    this.decNorm = new GroupNorm(p, `${prefix}.dec.norm`, ch[0], Math.min(g, ch[0]));
    this.decOut = new Conv2d(p, `${prefix}.dec.out`, ch[0], 3, rng);
  }

  private checkSize(what: string, h: number, w: number, f: number): void {
    if (h % f !== 0 || w % f !== 0) throw new Error(`Autoencoder.${what}: size ${h}x${w} must be divisible by ${f} (pad or crop first)`);
  }

  /** @param x [B,H,W,3] RGB in [0,1], H and W divisible by `factor` → z [B,H/f,W/f,latentChannels] (unscaled) */
  encode(x: tf.Tensor4D): tf.Tensor4D {
    this.checkSize('encode', x.shape[1], x.shape[2], this.factor);
    let h = this.encIn.call(tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D);
    for (let i = 0; i < this.encBlocks.length; i++) {
      h = this.encBlocks[i].call(h);
      if (i < this.encDown.length) h = this.encDown[i].call(h);
    }
    return this.encOut.call(silu(h));
  }

  /** @param z [B,h,w,latentChannels] (unscaled) → x̂ [B,h·f,w·f,3], RGB, roughly in [0,1] (not clipped) */
  decode(z: tf.Tensor4D): tf.Tensor4D {
    let h = this.decIn.call(z);
    for (let i = 0; i < this.decBlocks.length; i++) {
      h = this.decBlocks[i].call(h);
      if (i < this.decUp.length) {
        const [, hh, ww] = h.shape;
        h = this.decUp[i].call(tf.image.resizeNearestNeighbor(h, [hh * 2, ww * 2]));
      }
    }
    const out = this.decOut.call(silu(this.decNorm.call(h)));
    return tf.div(tf.add(out, 1), 2) as tf.Tensor4D;
  }

  /**
   * Training loss: L1(x̂, x) + latentPenalty·mean(z²) (keeps z near unit scale)
   * + hfWeight·L_hf (see `localHighFrequency`): without it an f4 AE of 4 latent channels keeps ≈ 0.2 %
   * of σ25 noise's high-frequency energy (t2i-check), so noise could never reach the guidance G. L_hf asks
   * the decoder for the right local amount of fine detail, not the exact grain (which 4 values per 4×4×3
   * pixels cannot store): a stand-in for SD's perceptual/adversarial VAE losses (Rombach et al. 2022, §3.1),
   * which serve the same purpose. Returns the parts for the log.
   */
  loss(x: tf.Tensor4D, opts: { latentPenalty?: number; hfWeight?: number } = {}): { total: tf.Scalar; parts: Record<string, tf.Scalar> } {
    const { latentPenalty = 1e-4, hfWeight = 0 } = opts;
    const z = this.encode(x);
    const xHat = this.decode(z);
    const l1 = tf.mean(tf.abs(tf.sub(xHat, x))) as tf.Scalar;
    const lz = tf.mean(tf.square(z)) as tf.Scalar;
    let total = tf.add(l1, tf.mul(lz, latentPenalty)) as tf.Scalar;
    const parts: Record<string, tf.Scalar> = { l_l1: l1, l_z2: lz };
    if (hfWeight > 0) {
      const lhf = tf.mean(tf.abs(tf.sub(localHighFrequency(xHat, this.factor), localHighFrequency(x, this.factor)))) as tf.Scalar;
      total = tf.add(total, tf.mul(lhf, hfWeight)) as tf.Scalar;
      parts.l_hf = lhf;
    }
    return { total, parts };
  }
}

/**
 * Local high-frequency amplitude: the RMS of the 4-neighbour Laplacian (the same filter as
 * highFrequencyEnergy in lib/metrics/stats), per pixel over the 3 channels, pooled over f×f blocks — about
 * one value per latent position. [B,H,W,3] → [B,⌊(H−2)/f⌋,⌊(W−2)/f⌋]. Slices, reshapes and means
 * only, so it has gradients on every backend.
 */
export function localHighFrequency(x: tf.Tensor4D, f: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    if (h < 3 || w < 3) throw new Error(`localHighFrequency: image ${h}x${w} is smaller than 3x3`);
    const s = (dy: number, dx: number) => tf.slice(x, [0, dy, dx, 0], [b, h - 2, w - 2, c]);
    const lap = tf.sub(tf.addN([s(0, 1), s(2, 1), s(1, 0), s(1, 2)]), tf.mul(s(1, 1), 4));
    const e = tf.mean(tf.square(lap), 3); // [B,H−2,W−2]
    const hb = Math.floor((h - 2) / f);
    const wb = Math.floor((w - 2) / f);
    if (hb < 1 || wb < 1) throw new Error(`localHighFrequency: image ${h}x${w} too small for ${f}x${f} blocks`);
    const blocks = tf.slice(e, [0, 0, 0], [b, hb * f, wb * f]).reshape([b, hb, f, wb, f]);
    return tf.sqrt(tf.add(tf.mean(blocks, [2, 4]), 1e-6)) as tf.Tensor3D;
  });
}
