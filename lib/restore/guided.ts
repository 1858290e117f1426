/**
 * Guided restoration (paper Sec. 3.3; stage 3 of mrluin/TextualDegRemoval, `models/image_restoration_ref_model.py`): a
 * restoration backbone (NAFNet, Restormer or PromptIR) that, with `guidance: true`, receives the
 * guidance image G through dynamic aggregation (aggregation.ts) and Eq. (4) fusion at every
 * resolution level; trained with the ℓ1 loss of Eq. (5) (training code lives elsewhere).
 *
 * Parameter names: backbone under `<prefix>.net.`; everything guidance-specific — matcher encoder
 * (`<prefix>.masa.enc.`) and fusion blocks with their α / β,γ (`<prefix>.masa.fuse<l>.`) — under
 * `<prefix>.masa.`, the same split as the official optimizer's `"masa" in name` groups (ref_lr
 * 1e-4 vs lr 2e-4). `lrScale` gives that group its LR ratio and freezes it for the first K steps;
 * in the official code that freeze never happened (option `param_fix_iterations` vs code key
 * `fix_iterations`; and even when set, the `else` branch that re-enables gradients runs only when
 * no freeze was configured, so masa params would have stayed frozen for good).
 *
 * Weights of the shared part do not depend on `guidance`: the backbone and the guidance modules
 * draw from separate forks of the seed, so a guided and an unguided model with the same seed have
 * identical `<prefix>.net.*` weights, and with α = 0 (β = γ = 0 for NAFNet) identical outputs.
 *
 * Sizes: any H×W; X is zero-padded to a multiple of 2^(levels−1)·blockSize (64 by default) when
 * guided, to the backbone's multiple (8) when not, and cropped back; G may have any size ≥ 1 px
 * (padded to a multiple of 2^(levels−1) and ≥ 3 deepest cells). Because MDTA attention, GAP and the
 * prompt weights see the padded image, the guided and unguided outputs are equal only when both
 * pad alike (e.g. H, W multiples of 64).
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { Params } from '../models/params';
import { Rng } from '../util/rng';
import { AggregationConfigSchema, DynamicAggregation, MatchIndices, MatchOptions } from './aggregation';
import { FusionSpec, RestorationBackbone, TileRegion, checkImage, cropTo, padToMultiple } from './layers';
import { NAFNet, NAFNetConfigObject } from './nafnet';
import { PromptIR, PromptIRConfigSchema } from './promptir';
import { Restormer, RestormerConfigSchema } from './restormer';

export const BackboneConfigSchema = z.discriminatedUnion('type', [
  NAFNetConfigObject.extend({ type: z.literal('nafnet') }),
  RestormerConfigSchema.extend({ type: z.literal('restormer') }),
  PromptIRConfigSchema.extend({ type: z.literal('promptir') }),
]);
export type BackboneConfig = z.infer<typeof BackboneConfigSchema>;

export const GuidedRestorerConfigSchema = z.strictObject({
  backbone: BackboneConfigSchema,
  guidance: z.boolean().default(true).describe('use the guidance image G (dynamic aggregation + Eq. 4 fusion)'),
  aggregation: AggregationConfigSchema.prefault({}).describe('matcher settings (used when guidance is true)'),
});
export type GuidedRestorerConfig = z.infer<typeof GuidedRestorerConfigSchema>;

export interface MatcherLrOptions {
  /** LR multiplier of the `<prefix>.masa.` group after the freeze (official ref_lr/lr = 0.5) */
  matcherLr?: number;
  /** steps during which the `<prefix>.masa.` group is frozen (LR 0); official intent 20000 */
  freezeMatcherSteps?: number;
  /**
   * LR multiplier of the matcher ENCODER alone (`<prefix>.masa.enc.`), after the freeze; default
   * `matcherLr`. 0 keeps it at its random init for good (not in the official code; see
   * RestoreConfig.matcherEncoderLr).
   */
  matcherEncoderLr?: number;
}

/** Build a backbone from its config (the `type` key picks the class). */
export function buildBackbone(p: Params, prefix: string, cfg: BackboneConfig, rng: Rng, fusion?: FusionSpec): RestorationBackbone {
  switch (cfg.type) {
    case 'nafnet': {
      const { type: _t, ...rest } = cfg;
      return new NAFNet(p, prefix, rest, rng, fusion);
    }
    case 'restormer': {
      const { type: _t, ...rest } = cfg;
      return new Restormer(p, prefix, rest, rng, fusion);
    }
    case 'promptir': {
      const { type: _t, ...rest } = cfg;
      return new PromptIR(p, prefix, rest, rng, fusion);
    }
  }
}

export class GuidedRestorer {
  readonly cfg: GuidedRestorerConfig;
  readonly backbone: RestorationBackbone;
  readonly aggregation?: DynamicAggregation;
  /** the match of the last guided `call` (for inspection) */
  lastMatch?: MatchIndices;
  constructor(readonly params: Params, readonly prefix: string, cfgIn: z.input<typeof GuidedRestorerConfigSchema>, rng: Rng) {
    const parsed = GuidedRestorerConfigSchema.safeParse(cfgIn);
    if (!parsed.success) throw new Error(`${prefix}: invalid GuidedRestorer config\n${z.prettifyError(parsed.error)}`);
    const cfg = (this.cfg = parsed.data);
    const rngNet = rng.fork();
    const rngMasa = rng.fork();
    const masa = this.matcherPrefix.slice(0, -1);
    if (cfg.guidance) this.aggregation = new DynamicAggregation(params, masa, cfg.aggregation, rngMasa);
    const fusion = this.aggregation ? { prefix: masa, channels: this.aggregation.levelChannels, rng: rngMasa } : undefined;
    if (this.aggregation) {
      // the official RestormerRefFusion/PromptIRRefFusion indexed a 5th matcher level that its encoder never produced
      const netLevels = cfg.backbone.type === 'nafnet' ? cfg.backbone.encBlocks.length + 1 : 4;
      if (netLevels !== this.aggregation.levels) {
        throw new Error(`${prefix}: the ${cfg.backbone.type} backbone has ${netLevels} fusion levels but the matcher has aggregation.levels = ${this.aggregation.levels}; they must be equal`);
      }
    }
    this.backbone = buildBackbone(params, `${prefix}.net`, cfg.backbone, rngNet, fusion);
  }

  /** names under this prefix are the guidance group (matcher encoder + fusion blocks) */
  get matcherPrefix(): string {
    return `${this.prefix}.masa.`;
  }

  isMatcherParam(name: string): boolean {
    return name.startsWith(this.matcherPrefix);
  }

  /**
   * Per-parameter LR multiplier for `Stage.lrScale`: 0 for the guidance group before
   * `freezeMatcherSteps`, `matcherLr` after; 1 for everything else.
   */
  lrScale(name: string, step: number, opts: MatcherLrOptions = {}): number {
    if (!this.isMatcherParam(name)) return 1;
    if (step < (opts.freezeMatcherSteps ?? 0)) return 0;
    if (opts.matcherEncoderLr !== undefined && name.startsWith(`${this.matcherPrefix}enc.`)) return opts.matcherEncoderLr;
    return opts.matcherLr ?? 1;
  }

  /**
   * H and W of X are padded to a multiple of this before the network sees them (and cropped back):
   * the matcher's 2^(levels−1)·blockSize when guided, the backbone's own multiple when not. Tiles of
   * a larger image are multiples of it and start at multiples of it (lib/restore/tiled.ts).
   */
  get sizeMultiple(): number {
    return this.aggregation ? lcm(this.aggregation.sizeMultiple, this.backbone.sizeMultiple) : this.backbone.sizeMultiple;
  }

  /**
   * The guidance image, padded as `call` pads it and encoded by the matcher, for several calls on
   * the tiles of one image (G is encoded once). Dispose the result.
   * @param g [1,Hg,Wg,3] in [0,1], any size
   */
  encodeGuidance(g: tf.Tensor4D): GuidanceFeatures {
    const agg = this.aggregation;
    if (!agg) throw new Error(`${this.prefix}: built with guidance: false; it takes no guidance image`);
    checkImage(this.prefix, 'g', g);
    const features = tf.tidy(() => agg.encodeGuidance(padToMultiple(g, agg.guidanceMultiple, 3 * agg.guidanceMultiple)));
    return { features, shape: [g.shape[1], g.shape[2]], dispose: () => tf.dispose(features) };
  }

  /**
   * @param x degraded images [B,H,W,3] in [0,1]
   * @param g guidance images [B,Hg,Wg,3] in [0,1] (required iff `guidance`); any size; or their
   *   `encodeGuidance` features (not disposed here)
   * @param opts when x is a tile of a larger image: `windowBlocks`, that image's X blocks
   *   (MatchOptions), and `region`, where the tile lies in it (TileRegion)
   * @returns restored [B,H,W,3] (x + residual, not clipped)
   */
  call(x: tf.Tensor4D, g?: tf.Tensor4D | GuidanceFeatures, opts: MatchOptions & { region?: TileRegion } = {}): tf.Tensor4D {
    checkImage(this.prefix, 'x', x);
    if (!this.aggregation) {
      if (g) throw new Error(`${this.prefix}: built with guidance: false, but a guidance image was given`);
      return this.backbone.call(x, undefined, opts.region);
    }
    if (!g) throw new Error(`${this.prefix}: built with guidance: true; call(x, g) needs the guidance image g`);
    const encoded = !(g instanceof tf.Tensor);
    if (!encoded) {
      checkImage(this.prefix, 'g', g);
      if (g.shape[0] !== x.shape[0]) throw new Error(`${this.prefix}: x [${x.shape}] and g [${g.shape}] must have the same batch size`);
    }
    const agg = this.aggregation;
    return tf.tidy(() => {
      const [, h, w] = x.shape;
      const xp = padToMultiple(x, agg.sizeMultiple);
      const gp = encoded ? g.features : padToMultiple(g, agg.guidanceMultiple, 3 * agg.guidanceMultiple);
      const { features, indices } = agg.forward(xp, gp, opts);
      this.lastMatch = indices;
      return cropTo(this.backbone.call(xp, features, opts.region), h, w);
    });
  }
}

/** The matcher's features of one guidance image (`GuidedRestorer.encodeGuidance`). */
export interface GuidanceFeatures {
  /** one map per matcher level, [1,Hg'/2^l,Wg'/2^l,nf·2^l] (Hg', Wg': G padded) */
  features: tf.Tensor4D[];
  /** G's size before padding [Hg, Wg] */
  shape: [number, number];
  dispose(): void;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}
