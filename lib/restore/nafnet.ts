/**
 * NAFNet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022), reference repository
 * megvii-research/NAFNet (`basicsr/models/archs/NAFNet_arch.py`), and its guided variant
 * `NAFNetRefFusion` of mrluin/TextualDegRemoval (`models/archs/network_nafnet_guided_arch.py`).
 *
 * NAFBlock: LayerNorm2d → 1×1 (C→2C) → depthwise 3×3 → SimpleGate (x1·x2) → simplified channel
 * attention (x·Conv1×1(GAP(x))) → 1×1 → y = x + β·(…); then y + γ·(1×1 → SimpleGate → 1×1)(LN(y)),
 * β, γ per-channel and zero-initialised (each block is the identity at init).
 * U-Net: 3×3 intro, per level NAFBlocks then a 2×2 stride-2 conv (C→2C), middle blocks, up =
 * 1×1 (C→2C, no bias) + pixel-shuffle, skip added, NAFBlocks, 3×3 ending, output = x + r.
 *
 * Guidance (Eq. 4): at the input of every encoder level and of the middle blocks (levels
 * 0..levels−1), Fx ← NAFBlock([Fx, F̂g])[:, :C] (`NAFResFuseBlock`): the zero-init per-channel β/γ
 * of that block play the role of α, so the guided net equals the unguided one at init.
 *
 * Deviations: small defaults (width 16, encBlocks [1,1,1], middle 1, decBlocks [1,1,1]: 4
 * resolution levels /1../8, matching the 4-level matcher; the official guided NAFNet uses 4 encoder
 * levels + middle = 5, with a 5-level matcher); inputs padded to a multiple of 2^(levels−1) and cropped
 * back as the original; no dropout; no TLC local-statistics inference (`NAFNetLocal`).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { Params, init } from '../models/params';
import { Conv2d, DepthwiseConv2d, LayerNorm } from '../models/nn';
import { Rng } from '../util/rng';
import { FusionSpec, RestorationBackbone, checkGuidance, checkImage, chunk2, cropTo, padToMultiple, pixelShuffle, runBlocks, replaced, spatialMean } from './layers';

const posInt = z.number().int().positive();

/** The config object without the cross-field check (for the guided wrapper's discriminated union). */
export const NAFNetConfigObject = z.strictObject({
    width: posInt.default(16).describe('channels at level 0 (level l: width·2^l); paper 32/64'),
    encBlocks: z.array(posInt).min(1).default([1, 1, 1]).describe('NAFBlocks per encoder level; length = levels − 1; paper [1,1,1,28]'),
    middleBlocks: posInt.default(1).describe('NAFBlocks at the deepest level; paper 1'),
    decBlocks: z.array(posInt).min(1).default([1, 1, 1]).describe('NAFBlocks per decoder level, deepest first; paper [1,1,1,1]'),
    dwExpand: posInt.default(2),
    ffnExpand: posInt.default(2),
});
export const NAFNetConfigSchema = NAFNetConfigObject.refine((c) => c.decBlocks.length === c.encBlocks.length, { path: ['decBlocks'], message: 'decBlocks must have as many entries as encBlocks' });
export type NAFNetConfig = z.infer<typeof NAFNetConfigSchema>;

/** NAFBlock (see the module doc); works on any width c (the fusion block uses C + Cg). */
export class NAFBlock {
  readonly norm1: LayerNorm;
  readonly conv1: Conv2d;
  readonly dw: DepthwiseConv2d;
  readonly sca: Conv2d;
  readonly conv3: Conv2d;
  readonly norm2: LayerNorm;
  readonly conv4: Conv2d;
  readonly conv5: Conv2d;
  readonly beta: tf.Variable;
  readonly gamma: tf.Variable;
  constructor(p: Params, readonly name: string, readonly c: number, rng: Rng, opts: { dwExpand?: number; ffnExpand?: number } = {}) {
    const dwc = c * (opts.dwExpand ?? 2);
    const ffc = c * (opts.ffnExpand ?? 2);
    this.norm1 = new LayerNorm(p, `${name}.norm1`, c, 1e-6);
    this.conv1 = new Conv2d(p, `${name}.conv1`, c, dwc, rng, { k: 1 });
    this.dw = new DepthwiseConv2d(p, `${name}.dw`, dwc, rng);
    this.sca = new Conv2d(p, `${name}.sca`, dwc / 2, dwc / 2, rng, { k: 1 });
    this.conv3 = new Conv2d(p, `${name}.conv3`, dwc / 2, c, rng, { k: 1 });
    this.norm2 = new LayerNorm(p, `${name}.norm2`, c, 1e-6);
    this.conv4 = new Conv2d(p, `${name}.conv4`, c, ffc, rng, { k: 1 });
    this.conv5 = new Conv2d(p, `${name}.conv5`, ffc / 2, c, rng, { k: 1 });
    this.beta = p.add(`${name}.beta`, [c], init.zeros());
    this.gamma = p.add(`${name}.gamma`, [c], init.zeros());
  }
  /** @param inp [B,H,W,c] → [B,H,W,c] */
  call(inp: tf.Tensor4D): tf.Tensor4D {
    // two tidies: at inference the intermediates are freed as each half returns (a forward pass peaks
    // at one block's memory); under a gradient tape the engine keeps what backprop needs
    const y = tf.tidy(() => {
      const [x1, x2] = chunk2(this.dw.call(this.conv1.call(this.norm1.call(inp))));
      let x = tf.mul(x1, x2) as tf.Tensor4D; // SimpleGate
      x = tf.mul(x, this.sca.call(spatialMean(x, true) as tf.Tensor4D)) as tf.Tensor4D; // simplified channel attention (GAP: of the whole image in a tiled pass)
      return tf.add(inp, tf.mul(this.conv3.call(x), this.beta)) as tf.Tensor4D;
    });
    const out = tf.tidy(() => {
      const [x1, x2] = chunk2(this.conv4.call(this.norm2.call(y)));
      return tf.add(y, tf.mul(this.conv5.call(tf.mul(x1, x2) as tf.Tensor4D), this.gamma)) as tf.Tensor4D;
    });
    y.dispose();
    return out;
  }
}

/** Eq. (4) for NAFNet (`NAFResFuseBlock`): NAFBlock([Fx, F̂g])[:, :C]; its zero-init β, γ act as α. */
export class NAFFusion {
  readonly block: NAFBlock;
  constructor(p: Params, readonly name: string, readonly c: number, readonly cg: number, rng: Rng) {
    this.block = new NAFBlock(p, `${name}.block`, c + cg, rng);
  }
  /** @param fx [B,H,W,C] @param fg [B,H,W,Cg] → [B,H,W,C] */
  call(fx: tf.Tensor4D, fg: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.slice(this.block.call(tf.concat([fx, fg], 3) as tf.Tensor4D), [0, 0, 0, 0], [-1, -1, -1, this.c]));
  }
}

export class NAFNet implements RestorationBackbone {
  readonly cfg: NAFNetConfig;
  readonly levels: number;
  readonly sizeMultiple: number;
  readonly levelChannels: number[];
  readonly intro: Conv2d;
  readonly enc: NAFBlock[][];
  readonly down: Conv2d[];
  readonly middle: NAFBlock[];
  readonly up: Conv2d[];
  readonly dec: NAFBlock[][];
  readonly ending: Conv2d;
  readonly fuse?: NAFFusion[];
  constructor(p: Params, readonly prefix: string, cfgIn: z.input<typeof NAFNetConfigSchema>, rng: Rng, readonly fusion?: FusionSpec) {
    const cfg = (this.cfg = NAFNetConfigSchema.parse(cfgIn));
    const n = cfg.encBlocks.length;
    this.levels = n + 1;
    this.sizeMultiple = 2 ** n;
    this.levelChannels = Array.from({ length: n + 1 }, (_, l) => cfg.width * 2 ** l);
    if (fusion && fusion.channels.length !== this.levels) {
      throw new Error(`${prefix}: fusion needs F̂g channels for ${this.levels} levels (encBlocks.length + 1), got ${fusion.channels.length}`);
    }
    const blk = (name: string, c: number) => new NAFBlock(p, name, c, rng, cfg);
    this.intro = new Conv2d(p, `${prefix}.intro`, 3, cfg.width, rng);
    this.enc = cfg.encBlocks.map((nb, l) => Array.from({ length: nb }, (_, i) => blk(`${prefix}.enc${l}.${i}`, this.levelChannels[l])));
    this.down = cfg.encBlocks.map((_, l) => new Conv2d(p, `${prefix}.down${l}`, this.levelChannels[l], 2 * this.levelChannels[l], rng, { k: 2, stride: 2 }));
    this.middle = Array.from({ length: cfg.middleBlocks }, (_, i) => blk(`${prefix}.middle.${i}`, this.levelChannels[n]));
    // decoder index i works at level n−1−i
    this.up = cfg.decBlocks.map((_, i) => new Conv2d(p, `${prefix}.up${n - 1 - i}`, this.levelChannels[n - i], 2 * this.levelChannels[n - i], rng, { k: 1, bias: false }));
    this.dec = cfg.decBlocks.map((nb, i) => Array.from({ length: nb }, (_, j) => blk(`${prefix}.dec${n - 1 - i}.${j}`, this.levelChannels[n - 1 - i])));
    this.ending = new Conv2d(p, `${prefix}.ending`, cfg.width, 3, rng);
    if (fusion) this.fuse = fusion.channels.map((cg, l) => new NAFFusion(p, `${fusion.prefix}.fuse${l}`, this.levelChannels[l], cg, fusion.rng ?? rng));
  }
  call(x: tf.Tensor4D, guidance?: tf.Tensor4D[]): tf.Tensor4D {
    checkImage(this.prefix, 'x', x);
    return tf.tidy(() => {
      const [b, h, w] = x.shape;
      const xp = padToMultiple(x, this.sizeMultiple);
      checkGuidance(this.prefix, this.fusion, guidance, b, xp.shape[1], xp.shape[2]);
      // intermediates are disposed once consumed (`replaced`): inference holds only live activations
      const fuse = (t: tf.Tensor4D, l: number) => (guidance && this.fuse ? replaced(t, this.fuse[l].call(t, guidance[l])) : t);
      let y = this.intro.call(xp);
      const skips: tf.Tensor4D[] = [];
      this.enc.forEach((blocks, l) => {
        y = fuse(y, l);
        y = replaced(y, runBlocks(blocks, y));
        skips.push(y);
        y = this.down[l].call(y);
      });
      y = fuse(y, this.levels - 1);
      y = replaced(y, runBlocks(this.middle, y));
      this.dec.forEach((blocks, i) => {
        const up = this.up[i].call(y);
        y = replaced(y, pixelShuffle(up, 2));
        up.dispose();
        y = replaced(y, tf.add(y, skips[skips.length - 1 - i]) as tf.Tensor4D);
        y = replaced(y, runBlocks(blocks, y));
      });
      const out = replaced(y, this.ending.call(y));
      return cropTo(replaced(out, tf.add(out, xp) as tf.Tensor4D), h, w);
    });
  }
}
