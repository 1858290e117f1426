/**
 * PromptIR (Potlapalli et al., "PromptIR: Prompting for All-in-One Blind Image Restoration",
 * NeurIPS 2023), reference repository va1shn9v/PromptIR (`net/model.py`, `decoder=True`), and its
 * guided variant `PromptIRRefFusion` of mrluin/TextualDegRemoval (`models/archs/network_promptir_guided_arch.py`) — the paper's
 * main all-in-one backbone.
 *
 * = the Restormer encoder (restormer.ts) + a decoder with a prompt block at 3 levels:
 *   PromptGenBlock: prompt components P ∈ R^{N×S×S×Cp} (learnable, U[0,1) init), weights
 *   w = softmax(Linear(GAP(F))) ∈ R^N, prompt = bilinear_resize(Σ_i w_i·P_i, H×W), then a 3×3 conv;
 *   PromptInteraction: concat [F, prompt] → transformer block ("noise_level") → 1×1 reduce.
 * Decoder (official channel plan, d = dim, p_l = prompt widths):
 *   latent 8d ⊕ prompt3 → block → 1×1 → 4d → up → 2d ⊕ enc3 4d → 1×1 → 4d → dec3
 *   dec3 4d ⊕ prompt2 → block → 1×1 → 4d → up → 2d ⊕ enc2 2d → 1×1 → 2d → dec2
 *   dec2 2d ⊕ prompt1 → block → 1×1 → 2d → up → d ⊕ enc1 d → dec1 (2d) → refinement → 3×3 out.
 * The interaction blocks use heads[2] as the official code does (here: reduced to 1 when they do
 * not divide the width).
 *
 * Guidance (Eq. 4): as in Restormer, fusion at the inputs of the 4 encoder levels.
 *
 * Tiles (lib/restore/tiled.ts): the prompt is a spatial map resized to the feature size; a tile of a
 * larger image takes its window of the prompt resized to the WHOLE image (`TileRegion`), as the untiled
 * pass would give it, not the whole prompt squeezed into the tile.
 *
 * Deviations: small defaults (dim 16, blocks [1,1,1,1], 1 refinement block, prompts 16/32/64
 * channels at sizes 32/16/8 — the official 64/128/320 at 64/32/16 for 128-px crops with dim 48);
 * inputs padded to a multiple of 8 and cropped back. The official unused `chnl_reduce*` and
 * `reduce_noise_channel_*` convs are not created.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { Params } from '../models/params';
import { Conv2d, Linear } from '../models/nn';
import { Rng } from '../util/rng';
import { FusionSpec, RestorationBackbone, TileRegion, checkGuidance, checkImage, cropTo, padToMultiple, resizeBilinearWindow, spatialMean } from './layers';
import { RestormerConfigSchema, RestormerDecoder, RestormerEncoder, TransformerBlock, fuseHeads } from './restormer';

const posInt = z.number().int().positive();

export const PromptIRConfigSchema = RestormerConfigSchema.extend({
  promptLen: posInt.default(5).describe('number of prompt components N'),
  promptDims: z.array(posInt).length(3).default([16, 32, 64]).describe('prompt channels at decoder levels 1, 2, 3; official [64,128,320]'),
  promptSizes: z.array(posInt).length(3).default([32, 16, 8]).describe('prompt spatial size S at levels 1, 2, 3 (resized to the feature size); official [64,32,16]'),
});
export type PromptIRConfig = z.infer<typeof PromptIRConfigSchema>;

/** PromptGenBlock: input-conditioned mixture of learnable prompt components. */
export class PromptGenBlock {
  readonly prompts: tf.Variable;
  readonly linear: Linear;
  readonly conv: Conv2d;
  constructor(p: Params, readonly name: string, readonly cin: number, readonly len: number, readonly dim: number, readonly size: number, rng: Rng) {
    this.prompts = p.add(`${name}.prompts`, [len, size * size * dim], (n) => Float32Array.from({ length: n }, () => rng.random()));
    this.linear = new Linear(p, `${name}.linear`, cin, len, rng);
    this.conv = new Conv2d(p, `${name}.conv`, dim, dim, rng, { bias: false });
  }
  /**
   * @param x [B,H,W,cin] → prompt [B,H,W,dim]
   * @param region (a tile of a larger image) x's place in that image's map at this level: the
   *   prompt is resized to the whole map and the tile takes its window of it
   */
  call(x: tf.Tensor4D, region?: TileRegion): tf.Tensor4D {
    const [b, h, w] = x.shape;
    const weights = tf.softmax(this.linear.call(spatialMean(x) as tf.Tensor2D), -1); // [B,N] (GAP: of the whole image in a tiled pass)
    const mixed = tf.matMul(weights, this.prompts as tf.Tensor2D).reshape([b, this.size, this.size, this.dim]) as tf.Tensor4D; // [B,S,S,Cp]
    let resized: tf.Tensor4D;
    if (region && (region.height !== h || region.width !== w)) resized = resizeBilinearWindow(mixed, region.height, region.width, region.top, region.left, h, w);
    else resized = h === this.size && w === this.size ? mixed : tf.image.resizeBilinear(mixed, [h, w], false, true);
    return this.conv.call(resized);
  }
}

/** concat [F, prompt] → transformer block → 1×1 to `cout`. */
class PromptInteraction {
  readonly gen: PromptGenBlock;
  readonly block: TransformerBlock;
  readonly reduce: Conv2d;
  constructor(p: Params, name: string, cin: number, cout: number, cfg: PromptIRConfig, level: number, heads: number, rng: Rng) {
    const cp = cfg.promptDims[level];
    this.gen = new PromptGenBlock(p, `${name}.prompt`, cin, cfg.promptLen, cp, cfg.promptSizes[level], rng);
    this.block = new TransformerBlock(p, `${name}.block`, cin + cp, fuseHeads(cin + cp, heads), cfg, rng);
    this.reduce = new Conv2d(p, `${name}.reduce`, cin + cp, cout, rng, { k: 1, bias: cfg.bias });
  }
  call(x: tf.Tensor4D, region?: TileRegion): tf.Tensor4D {
    return tf.tidy(() => this.reduce.call(this.block.call(tf.concat([x, this.gen.call(x, region)], 3) as tf.Tensor4D)));
  }
}

export class PromptIR implements RestorationBackbone {
  readonly cfg: PromptIRConfig;
  readonly levels = 4;
  readonly sizeMultiple = 8;
  readonly encoder: RestormerEncoder;
  /** prompt interactions at decoder levels 3, 2, 1 */
  readonly prompt: PromptInteraction[];
  readonly decoder: RestormerDecoder;
  constructor(p: Params, readonly prefix: string, cfgIn: z.input<typeof PromptIRConfigSchema>, rng: Rng, readonly fusion?: FusionSpec) {
    const cfg = (this.cfg = PromptIRConfigSchema.parse(cfgIn));
    const d = cfg.dim;
    this.encoder = new RestormerEncoder(p, prefix, cfg, rng, fusion);
    this.prompt = [
      new PromptInteraction(p, `${prefix}.pi3`, 8 * d, 4 * d, cfg, 2, cfg.heads[2], rng),
      new PromptInteraction(p, `${prefix}.pi2`, 4 * d, 4 * d, cfg, 1, cfg.heads[2], rng),
      new PromptInteraction(p, `${prefix}.pi1`, 2 * d, 2 * d, cfg, 0, cfg.heads[2], rng),
    ];
    // the prompt interactions hand the up-samplers 4d, 4d, 2d (Restormer: 8d, 4d, 2d)
    this.decoder = new RestormerDecoder(p, prefix, cfg, [4 * d, 4 * d, 2 * d], rng);
  }
  get levelChannels(): number[] {
    return this.encoder.levelChannels;
  }
  call(x: tf.Tensor4D, guidance?: tf.Tensor4D[], region?: TileRegion): tf.Tensor4D {
    checkImage(this.prefix, 'x', x);
    return tf.tidy(() => {
      const [b, h, w] = x.shape;
      const xp = padToMultiple(x, this.sizeMultiple);
      checkGuidance(this.prefix, this.fusion, guidance, b, xp.shape[1], xp.shape[2]);
      const { skips, latent } = this.encoder.call(xp, guidance);
      // prompt i works at 1/2^(3−i) of the input: a tile's region scales alike
      const at = (i: number): TileRegion | undefined => {
        if (!region) return undefined;
        const s = 2 ** (3 - i);
        return { top: region.top / s, left: region.left / s, height: region.height / s, width: region.width / s };
      };
      return cropTo(this.decoder.call(xp, skips, latent, (y, i) => this.prompt[i].call(y, at(i))), h, w);
    });
  }
}
