/**
 * Presets for degradation-free guidance (stages 1–2; paper Sec. 3.2): the image-to-text mapper M_i2t
 * (Eq. 2) with its ELITE-style k/v copies, the textual restoration module M_clean (Eq. 3), their
 * training data and loops, and guidance sampling. One zod schema, three presets (ci / demo / paper);
 * keys are the constructors' own option names; a preset overrides only what differs.
 *
 * Sizes that come from the text-to-image model (text width D, image size, context length) are not
 * repeated here: they are read from the T2I model the guidance model is built on (`t2iPreset` names
 * its preset; the checkpoint file is given at training time). `checkGuidanceAgainstT2I` verifies
 * that the N pseudo-words fit the T2I's context: "a photo of a" + N words + EOS ≤ contextLength.
 */
import * as path from 'node:path';
import { z } from 'zod';
import { BatchedTrainConfigSchema } from '../train/config';
import { MapperConfigSchema, MlpSchema, EncoderSchema } from '../models/word_mapper';
export { MapperConfigSchema, type MapperConfig } from '../models/word_mapper';
import { CropScaleSchema, TaskWeightsSchema } from '../t2i/presets';
import { shippedCheckpoint, t2iCheckpoint } from '../util/paths';
import { UserError, parseConfig } from '../util/errors';
import { colorJitterCopiesSchema } from '../data/color_jitter';

const posInt = z.number().int().positive();

/** M_clean variants: the official per-word MLP, or a small transformer that mixes the N words. */
export const CleanConfigSchema = z.discriminatedUnion('type', [
  MlpSchema.extend({
    type: z.literal('perWord').describe('official CleanMapper: word i → MLP_i(word i), no mixing across words'),
    residual: z.boolean().default(false).describe("E' = E + MLP(E) with the last layer zero-initialised (starts as identity); official: false"),
  }),
  z.strictObject({
    type: z.literal('mixer').describe('ablation the official code lacks: words → Linear(D,h) + word position → pre-LN transformer blocks (self-attention across the N words) → Linear(h,D)'),
    hidden: posInt.describe('transformer width h'),
    layers: z.number().int().min(1).max(8).describe('transformer blocks'),
    heads: posInt.default(4).describe('attention heads; must divide hidden'),
    residual: z.boolean().default(true).describe("E' = E + f(E), output Linear zero-initialised"),
  }),
]);

export const GuidanceConfigSchema = z
  .strictObject({
    preset: z.string(),
    t2iPreset: z.enum(['ci', 'demo', 'paper']).describe('the text-to-image preset the guidance model builds on (its checkpoint is given at training time)'),
    encoder: EncoderSchema,
    mapper: MapperConfigSchema,
    initFromT2I: z
      .boolean()
      .default(false)
      .describe("stage 1 starts M_i2t from the text-to-image model's own image-to-words mapper (its config's `words` block: same encoder, hidden, layers, tokenPool, spatial and color; N may differ); false: random init as the paper"),
    layoutLoss: z
      .number()
      .min(0)
      .default(0)
      .describe(
        "weight of the words' layout objective in stages 1 and 2, beside Eq. (1): the layout map of E_txt (stage 1) or E'_txt (stage 2) regresses the latents of the crop it must reconstruct, pooled to the layout grid — the objective the text-to-image model's own words were trained with (its words.layoutLoss); needs a text-to-image model with unet.layout. 0: Eq. (1) alone, as the paper",
      ),
    clean: CleanConfigSchema,
    data: z.strictObject({
      cropsPerPhoto: posInt.describe('random crops (the T2I imageSize) per training photo, from the photo at the T2I photoShortSide; not used when cropScales is given'),
      cropScales: z
        .array(CropScaleSchema)
        .min(1)
        .optional()
        .describe(
          "crops from the photo at several short sides (absent: cropsPerPhoto crops at the T2I's photoShortSide): parts of scenes as well as whole scenes, so that M_clean meets more distinct content than the 38 training photos' whole views (the paper: crops of a large corpus)",
        ),
      degradedPerCrop: z.number().int().min(1).describe('degraded versions per crop, the tasks in turn (noise, rain, haze, motion, defocus), random strength'),
      taskWeights: TaskWeightsSchema.describe('relative share of each task among the degraded crops (task t w_t times in the turn; default one each)'),
      maxPhotos: posInt.optional().describe('use only the first photos of the training split (tests)'),
      identityProb: z.number().min(0).max(1).default(0).describe('stage 2: probability that a pair is (clean, clean), so M_clean also learns to keep clean words; paper: 0'),
      colorJitter: colorJitterCopiesSchema(
        "each a clean crop of its own with its own degraded versions: stage 1 learns words that carry the colours they are given rather than the 38 training photos' (as the T2I option words.colorJitter), stage 2 learns to remove a degradation from colours it has not seen (the paper: none)",
      ),
      seed: z.number().int().nonnegative().default(11),
    }),
    i2tTrain: BatchedTrainConfigSchema.describe('stage 1: M_i2t + k/v copies (official: lr 1e-6 scaled ×64 = 6.4e-5, constant, AdamW wd 1e-2, clip 1, 200k steps, batch 64)'),
    cleanTrain: BatchedTrainConfigSchema.describe('stage 2: M_clean (same recipe as stage 1 in the official code)'),
    sample: z.strictObject({
      steps: posInt.describe('DDIM steps (paper: 100)'),
      cfgScale: z.number().min(0).describe('classifier-free guidance scale (paper: 5)'),
      seed: z.number().int().nonnegative().default(42).describe('default seed (official: 42)'),
      fromLayout: z
        .number()
        .gt(0)
        .max(1)
        .optional()
        .describe(
          "start DDIM from the words' own layout map noised to this strength (SDEdit; a text-to-image model trained with words.layoutLoss): G is still made from the pseudo-words alone (the map is the UNet's reading of the text), but its layout is the one the words describe; absent: from pure noise, as the paper",
        ),
    }),
  })
  .superRefine((c, ctx) => {
    if (c.clean.type === 'mixer' && c.clean.hidden % c.clean.heads !== 0) ctx.addIssue({ code: 'custom', path: ['clean', 'heads'], message: `clean.hidden ${c.clean.hidden} must be divisible by clean.heads ${c.clean.heads}` });
    const grid = c.encoder.cut === 'block10' ? 14 : 7;
    if (grid % c.mapper.tokenPool !== 0) ctx.addIssue({ code: 'custom', path: ['mapper', 'tokenPool'], message: `mapper.tokenPool ${c.mapper.tokenPool} must divide the ${c.encoder.cut} grid ${grid}` });
  });
export type GuidanceConfig = z.infer<typeof GuidanceConfigSchema>;
export type GuidanceConfigInput = z.input<typeof GuidanceConfigSchema>;
export type CleanConfig = z.infer<typeof CleanConfigSchema>;

const demo: GuidanceConfigInput = {
  preset: 'demo',
  t2iPreset: 'demo',
  // block10: pure ImageNet weights, and a 96-wide input makes the 2N MLPs 13× cheaper. Measured on
  // the 25 val photos (128-px centre crops, each clean + 5 degraded; cosine of `global`):
  //   degraded crop → nearest clean crop is its own photo:   block10 44/125, out_relu 41/125 (chance 5/125)
  //   task from the feature shift (leave-one-photo-out):     block10 95/125, out_relu 89/125 (chance 25/125)
  //   crops of one photo retrieve each other (image_encoder.test.ts): block10 21/25, out_relu 13/25
  encoder: { cut: 'block10', range: 'unit' },
  // N = 20 as the paper: the demo T2I's context is 48 tokens, BOS + "a photo of a" + N + EOS fits up to N = 42.
  // Positions past ≈ 22 only ever held PAD while the T2I trained (longest caption + phrase ≈ 22 tokens).
  // (data/configs/guidance-demo-words.json: the same with the words experiment's mapper, started from its T2I's)
  mapper: { numWords: 20, hidden: 128, layers: 2, tokenPool: 2 },
  clean: { type: 'perWord', hidden: 128, layers: 2, residual: true }, // residual: starts as identity, trainable on a CPU budget
  data: { cropsPerPhoto: 4, degradedPerCrop: 3, identityProb: 0.1, seed: 11 },
  i2tTrain: { steps: 1500, batch: 16, lr: 3e-4, warmup: 50, schedule: 'cosine', minLrRatio: 0.1, weightDecay: 0.01, clipNorm: 1, emaDecay: 0.99, checkpointEvery: 100, logEvery: 10, seed: 3 },
  cleanTrain: { steps: 1000, batch: 16, lr: 3e-4, warmup: 50, schedule: 'cosine', minLrRatio: 0.1, weightDecay: 0.01, clipNorm: 1, emaDecay: 0.99, checkpointEvery: 100, logEvery: 10, seed: 4 },
  sample: { steps: 50, cfgScale: 3, seed: 42 },
};

const ci: GuidanceConfigInput = {
  ...demo,
  preset: 'ci',
  t2iPreset: 'ci',
  mapper: { numWords: 5, hidden: 16, layers: 1, tokenPool: 2, spatial: 'regions', color: true }, // the ci T2I's context (24) holds up to 18 words
  initFromT2I: true, // the ci T2I is trained with words (lib/t2i/presets.ts): M_i2t starts from its mapper
  clean: { type: 'perWord', hidden: 16, layers: 1, residual: true },
  data: { cropsPerPhoto: 1, degradedPerCrop: 1, maxPhotos: 6, identityProb: 0.1, seed: 11 },
  i2tTrain: { ...demo.i2tTrain, steps: 4, batch: 4, warmup: 1, checkpointEvery: 2, logEvery: 1 },
  cleanTrain: { ...demo.cleanTrain, steps: 4, batch: 4, warmup: 1, checkpointEvery: 2, logEvery: 1 },
  sample: { steps: 4, cfgScale: 3, seed: 42 },
};

const paper: GuidanceConfigInput = {
  ...demo,
  preset: 'paper',
  t2iPreset: 'paper',
  encoder: { cut: 'out_relu', range: 'unit' }, // the widest features, as CLIP ViT-H's 1280
  mapper: { numWords: 20, hidden: 1280, layers: 3, tokenPool: 1, spatial: 'mean', color: false }, // official Mapper(1280 → 1024, 20 words)
  initFromT2I: false, // SD has no image-to-words mapper: M_i2t starts at random
  clean: { type: 'perWord', hidden: 1280, layers: 3, residual: false }, // official CleanMapper
  data: { cropsPerPhoto: 64, degradedPerCrop: 5, identityProb: 0, seed: 11 },
  // official: lr 1e-6 × (batch 4 · accum 4 · 4 GPUs) = 6.4e-5, constant, 200k steps
  i2tTrain: { steps: 200000, batch: 64, lr: 6.4e-5, warmup: 0, schedule: 'constant', weightDecay: 0.01, clipNorm: 1, emaDecay: 0, checkpointEvery: 200, logEvery: 10, seed: 3 },
  cleanTrain: { steps: 200000, batch: 64, lr: 6.4e-5, warmup: 0, schedule: 'constant', weightDecay: 0.01, clipNorm: 1, emaDecay: 0, checkpointEvery: 200, logEvery: 10, seed: 4 },
  sample: { steps: 100, cfgScale: 5, seed: 42 }, // official scripts/generate/main_generate_reference.py: DDIM 100, CFG 5, seed 42
};

export const GUIDANCE_PRESETS = { ci, demo, paper } as const;
export type GuidancePresetName = keyof typeof GUIDANCE_PRESETS;
export const GUIDANCE_PRESET_NAMES = Object.keys(GUIDANCE_PRESETS) as GuidancePresetName[];

/** Validate a guidance config; errors name `label` and the field path (a UserError: one CLI line). */
export function parseGuidanceConfig(raw: unknown, label: string): GuidanceConfig {
  return parseConfig(GuidanceConfigSchema, raw, label);
}

/** A guidance preset by name, validated; unknown names list the known ones. */
export function guidancePreset(name: string, overrides: Partial<GuidanceConfigInput> = {}): GuidanceConfig {
  if (!(name in GUIDANCE_PRESETS)) throw new UserError(`unknown guidance preset '${name}'; presets: ${GUIDANCE_PRESET_NAMES.join(', ')}`);
  return parseGuidanceConfig({ ...GUIDANCE_PRESETS[name as GuidancePresetName], ...overrides }, `guidance preset ${name}`);
}

/** Tokens of the template before and after the placeholder: BOS "a photo of a" S EOS → 5 before, 1 after. */
export const TEMPLATE_TOKENS_AROUND_PLACEHOLDER = 6;

/**
 * Check that a guidance config fits a T2I model: the N words plus the template's other tokens
 * (BOS, "a photo of a", EOS) must fit the text encoder's context.
 * @throws UserError, naming mapper.numWords and both numbers
 */
export function checkGuidanceAgainstT2I(cfg: GuidanceConfig, t2i: { contextLength: number }, label = 'guidance config'): void {
  const need = cfg.mapper.numWords + TEMPLATE_TOKENS_AROUND_PLACEHOLDER;
  if (need > t2i.contextLength) {
    throw new UserError(`${label}: mapper.numWords ${cfg.mapper.numWords} does not fit the text-to-image model's context: "a photo of a" + ${cfg.mapper.numWords} words + BOS/EOS need ${need} tokens, contextLength is ${t2i.contextLength} (at most ${t2i.contextLength - TEMPLATE_TOKENS_AROUND_PLACEHOLDER} words)`);
  }
}

/**
 * The guidance checkpoint commands and notebooks use by default: $TDR_GUIDANCE_CHECKPOINT if set,
 * else the shipped demo model data/checkpoints/guidance-demo.tdrc.
 */
export function guidanceCheckpoint(): string {
  return process.env.TDR_GUIDANCE_CHECKPOINT || shippedCheckpoint('guidance-demo');
}

/**
 * The guidance model whose G shows the photo it came from: stages 1–2 (Eqs. 2–3) on the words
 * text-to-image model with the colour path, `t2i-demo-words-layout-colorpath.tdrc`
 * (data/configs/guidance-demo-words-colorpath.json for stage 1, …-colorpath-haze.json for stage 2, a mixer
 * M_clean; docs/experiments.md §2 items 6–8). Notebooks 03–05 use it; $TDR_GUIDANCE_CHECKPOINT overrides it
 * as it does the default.
 */
export function wordsGuidanceCheckpoint(): string {
  return process.env.TDR_GUIDANCE_CHECKPOINT || shippedCheckpoint('guidance-demo-words-colorpath-haze');
}

/**
 * Where `tdr train i2t|clean` writes the guidance model: the shipped file for demo, else
 * <runs>/<preset>/guidance-<preset>.tdrc.
 */
export function guidanceOutput(preset: string, runs: string): string {
  return preset === 'demo' ? shippedCheckpoint('guidance-demo') : path.join(runs, preset, `guidance-${preset}.tdrc`);
}

/**
 * The T2I checkpoint a guidance preset builds on by default: for demo, $TDR_T2I_CHECKPOINT or the
 * shipped t2i-demo; otherwise where `tdr train t2i --preset <p>` writes it, <runs>/<p>/t2i-<p>.tdrc.
 */
export function defaultT2IFile(cfg: GuidanceConfig, runs: string): string {
  return cfg.t2iPreset === 'demo' ? t2iCheckpoint() : path.join(runs, cfg.t2iPreset, `t2i-${cfg.t2iPreset}.tdrc`);
}
