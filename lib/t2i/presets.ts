/**
 * Presets for the text-to-image model (stage 0, docs/notation.md) — one zod schema, three presets:
 *   ci    tiny: every training cell of a notebook runs in seconds under CI
 *   demo  the shipped checkpoint: 128×128 images from 32×32×4 latents, trainable on a CPU in hours
 *   paper Stable-Diffusion-like sizes (512 px, f8, 77 tokens, DDIM 100 steps, CFG 5) for users with a GPU
 * Keys are the constructors' own option names. A preset overrides only what differs.
 */
import { z } from 'zod';
import { AutoencoderConfigSchema } from '../models/autoencoder';
import { UNetConfigSchema } from '../models/unet';
import { BatchedTrainConfigSchema } from '../train/config';
import { TASKS, Task, TaskWeights, taskTurn } from '../data/degrade';
import { EncoderSchema, MapperConfigSchema } from '../models/word_mapper';
import { UserError, parseConfig } from '../util/errors';
import { colorJitterCopiesSchema } from '../data/color_jitter';

const TextSchema = z.strictObject({
  width: z.number().int().positive().describe('D: text-encoder width = UNet ctxDim'),
  layers: z.number().int().min(0).describe('transformer blocks'),
  heads: z.number().int().positive(),
  contextLength: z.number().int().min(8).describe('T: tokens incl. BOS/EOS'),
  mlpRatio: z.number().int().positive().default(4),
});

/** Per-task integer weights of the degraded training crops (tasks in turn, task t w_t times); a missing task (or the whole field): 1. */
export const TaskWeightsSchema = z
  .strictObject(Object.fromEntries(TASKS.map((t) => [t, z.number().int().min(0).optional()])) as Record<Task, z.ZodOptional<z.ZodNumber>>)
  .refine((w: TaskWeights) => taskTurn(w).length > 0, 'at least one task needs a weight > 0')
  .optional();


/**
 * The diffusion autoencoder through the text space (Preechakul et al., "Diffusion Autoencoders", CVPR
 * 2022; ELITE's global mapping): an image-to-words mapper (lib/models/word_mapper.ts) trained with the
 * text encoder and UNet, so that the pseudo-words of ANY crop are words the UNet can draw. Stable
 * Diffusion's text space came from billions of pairs; ours from 38 photos, so it has to be made.
 */
export const WordsSchema = z.strictObject({
  encoder: EncoderSchema,
  mapper: MapperConfigSchema,
  prob: z.number().min(0).max(1).describe("share of the training rows conditioned on their crop's own words (drawn from all crops); the rest are conditioned on captions (drawn from whole-scene crops, the only ones their caption is true of)"),
  noise: z.number().min(0).default(0).describe('std of Gaussian noise added to the words in training, relative to their RMS (noise augmentation as unCLIP; nearby words then draw similar images)'),
  layoutLoss: z
    .number()
    .min(0)
    .default(0)
    .describe("weight of an auxiliary loss on the word rows: the first latentChannels channels of the UNet's layout map (unet.layout) regress the crop's latent average-pooled to the layout grid (mean squared error), so that the words must carry where things are and the UNet gets a coarse picture of x0 beside z_t from the start, as SR3 conditions on a low-resolution image; 0: the diffusion loss alone (needs unet.layout with channels ≥ latentChannels)"),
  layoutSteps: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe(
      "steps of a layout warm-up before the UNet stage (needs layoutLoss > 0): only the word mapper, the text encoder and the UNet's layout head train, on the layout loss alone (no diffusion), at layoutBatch crops a step — about 20× cheaper than a UNet step, so the words learn where things are before the UNet learns to read the map; in <runs>/t2i-layout, resumable; 0: none",
    ),
  layoutBatch: z.number().int().min(1).default(64).describe('crops per layout warm-up step'),
  colorJitter: colorJitterCopiesSchema(
    "latent cache rows trained on their own words only (never on a caption, which their colours no longer match), so that the words must carry the colours they are given rather than the colours the mapper remembers of 38 photos",
  ),
});
export type WordsConfig = z.infer<typeof WordsSchema>;

/** One scale of the training crops: photos resized to this short side, `crops` random crops (with flips) each. */
export const CropScaleSchema = z.strictObject({
  shortSide: z.number().int().min(16),
  crops: z.number().int().positive(),
});

export const T2IConfigSchema = z
  .strictObject({
    preset: z.string(),
    imageSize: z.number().int().min(16).describe('side of the square training crops and of generated images (px)'),
    photoShortSide: z.number().int().min(16).describe('corpus photos are resized to this short side before cropping (whole-scene crops)'),
    autoencoder: AutoencoderConfigSchema,
    aeCrop: z.number().int().min(8).describe('autoencoder training crop (px); it is fully convolutional'),
    aeScales: z.array(z.number().int().min(16)).min(1).describe('short sides the AE crops are taken at (multi-scale)'),
    aeDegradeProb: z.number().min(0).max(1).describe('probability that an AE training crop is degraded (so noise/rain/haze survive the AE)'),
    aeHfWeight: z.number().min(0).optional().describe('weight of the AE\'s local high-frequency loss (Autoencoder.loss): how much fine detail — and so noise — survives the latent space; absent or 0: L1 only'),
    aeTrain: BatchedTrainConfigSchema,
    text: TextSchema,
    unet: UNetConfigSchema,
    numTrainSteps: z.number().int().positive().default(1000).describe('diffusion steps T of Eq. 1'),
    condDropProb: z.number().min(0).max(1).describe('probability of training with the empty prompt (classifier-free guidance)'),
    offsetNoise: z.number().min(0).max(1).optional().describe('training noise ε + s·δ with δ ∼ N(0,1) per sample and latent channel ("offset noise"; stages 1–2 use the same); absent: plain ε as in SD and the paper'),
    cropsPerPhoto: z.number().int().positive().describe('latent cache: crops per training photo (at photoShortSide; see cropScales)'),
    cropScales: z
      .array(CropScaleSchema)
      .min(1)
      .optional()
      .describe('latent cache: crops at several scales (absent: cropsPerPhoto crops at photoShortSide); only crops at photoShortSide show the whole scene and keep their caption'),
    words: WordsSchema.optional().describe('train an image-to-words mapper with the UNet (the diffusion autoencoder through the text space); absent: captions only'),
    degradedPerCrop: z.number().int().min(0).describe('latent cache: degraded versions per crop (random task and strength)'),
    taskWeights: TaskWeightsSchema.describe('latent cache: relative share of each task among the degraded crops (the tasks are taken in turn from a list holding task t w_t times)'),
    unetTrain: BatchedTrainConfigSchema,
    sample: z.strictObject({
      steps: z.number().int().positive().describe('DDIM steps (paper: 100)'),
      cfgScale: z.number().min(0).describe('classifier-free guidance scale (paper: 5)'),
      eta: z.number().min(0).max(1).default(0),
    }),
  })
  .superRefine((c, ctx) => {
    const f = 2 ** (c.autoencoder.channels.length - 1);
    const down = 2 ** (c.unet.channels.length - 1);
    if (c.imageSize % (f * down) !== 0) ctx.addIssue({ code: 'custom', path: ['imageSize'], message: `imageSize ${c.imageSize} must be divisible by the AE factor ${f} × the UNet's ${down}` });
    if (c.aeCrop % f !== 0) ctx.addIssue({ code: 'custom', path: ['aeCrop'], message: `aeCrop ${c.aeCrop} must be divisible by the AE factor ${f}` });
    if (c.unet.ctxDim !== c.text.width) ctx.addIssue({ code: 'custom', path: ['unet', 'ctxDim'], message: `unet.ctxDim ${c.unet.ctxDim} must equal text.width ${c.text.width}` });
    if (c.unet.latentChannels !== c.autoencoder.latentChannels) ctx.addIssue({ code: 'custom', path: ['unet', 'latentChannels'], message: `unet.latentChannels must equal autoencoder.latentChannels (${c.autoencoder.latentChannels})` });
    if (c.photoShortSide < c.imageSize) ctx.addIssue({ code: 'custom', path: ['photoShortSide'], message: `photoShortSide ${c.photoShortSide} must be ≥ imageSize ${c.imageSize}` });
    c.cropScales?.forEach((s, i) => {
      if (s.shortSide < c.imageSize) ctx.addIssue({ code: 'custom', path: ['cropScales', i, 'shortSide'], message: `cropScales[${i}].shortSide ${s.shortSide} must be ≥ imageSize ${c.imageSize}` });
    });
    if (c.cropScales && !c.words && !c.cropScales.some((s) => s.shortSide === c.photoShortSide)) {
      ctx.addIssue({ code: 'custom', path: ['cropScales'], message: `without words, only crops at photoShortSide ${c.photoShortSide} have a caption: add that scale` });
    }
    if (c.words && c.words.layoutSteps > 0 && !(c.words.layoutLoss > 0)) {
      ctx.addIssue({ code: 'custom', path: ['words', 'layoutSteps'], message: 'layoutSteps needs layoutLoss > 0 (the warm-up trains on the layout loss)' });
    }
    if (c.words && c.words.layoutLoss > 0) {
      const lay = c.unet.layout;
      if (!lay || lay.channels < c.unet.latentChannels) {
        ctx.addIssue({ code: 'custom', path: ['words', 'layoutLoss'], message: `layoutLoss needs unet.layout with channels ≥ latentChannels ${c.unet.latentChannels}${lay ? ` (has ${lay.channels})` : ' (none)'}` });
      } else if ((c.imageSize / f) % lay.grid !== 0) {
        ctx.addIssue({ code: 'custom', path: ['unet', 'layout', 'grid'], message: `layoutLoss: the latent side ${c.imageSize / f} must be a multiple of unet.layout.grid ${lay.grid}` });
      }
    }
  });
export type T2IConfig = z.infer<typeof T2IConfigSchema>;

/** The crop scales of the latent cache (`cropScales`, or cropsPerPhoto crops at photoShortSide). */
export function cropScalesOf(cfg: Pick<T2IConfig, 'cropScales' | 'photoShortSide' | 'cropsPerPhoto'>): Array<{ shortSide: number; crops: number }> {
  return cfg.cropScales ?? [{ shortSide: cfg.photoShortSide, crops: cfg.cropsPerPhoto }];
}

const demo: z.input<typeof T2IConfigSchema> = {
  preset: 'demo',
  imageSize: 128, // samples of at least 128×128
  photoShortSide: 160, // a 128 crop of a 160-px photo keeps most of the scene: the caption stays true
  autoencoder: { channels: [24, 48, 96], latentChannels: 4, groups: 8 }, // f = 4: 128 px ↔ 32×32×4
  aeCrop: 64,
  aeScales: [160, 320], // also finer detail, so that noise and rain streaks are reconstructed
  aeDegradeProb: 0.5,
  // With L1 alone the AE kept 0.2 % of σ25 noise's excess high-frequency energy (t2i-check), so ", noisy" and
  // noisy pseudo-words could not reach G; 0.5 keeps most of it (docs/experiments.md, "What the text-to-image model needed").
  aeHfWeight: 0.5,
  aeTrain: { steps: 2000, batch: 8, lr: 1e-3, warmup: 100, minLrRatio: 0.05, weightDecay: 0, emaDecay: 0.999, checkpointEvery: 100, logEvery: 10, seed: 1 },
  text: { width: 128, layers: 2, heads: 4, contextLength: 48 }, // longest caption + phrase ≈ 22 tokens; BOS + "a photo of a" + N pseudo-words + EOS = N + 6 ≤ 48 holds Table 9's N = 40
  unet: { latentChannels: 4, channels: [32, 64, 64], resBlocks: 1, attentionLevels: [1, 2], midAttention: true, heads: 4, ctxDim: 128, timeDim: 128, groups: 8, ffMult: 2, pooledText: true },
  numTrainSteps: 1000,
  condDropProb: 0.1, // SD / CFG paper
  // Offset noise: plain ε washed the samples out (dark channel 0.32; the clean photos 0.21) and haze could not be
  // told apart from the T2I's own haze (docs/experiments.md, "What the text-to-image model needed"). Stages 1–2 train with the same noise.
  offsetNoise: 0.1,
  cropsPerPhoto: 8,
  degradedPerCrop: 4,
  // The diffusion autoencoder through the text space (options `words`, `cropScales`, unet `positional` and
  // `layout`) is an experiment, not yet the shipped model: data/configs/t2i-demo-words.json and docs/experiments.md
  unetTrain: { steps: 3000, batch: 16, lr: 5e-4, warmup: 200, minLrRatio: 0.1, weightDecay: 0.01, emaDecay: 0.999, checkpointEvery: 100, logEvery: 10, seed: 2 },
  sample: { steps: 50, cfgScale: 3, eta: 0 },
};

const ci: z.input<typeof T2IConfigSchema> = {
  ...demo,
  preset: 'ci',
  imageSize: 32, // tiny: the whole stage trains in seconds
  photoShortSide: 40,
  autoencoder: { channels: [8, 16], latentChannels: 4, groups: 4 },
  aeCrop: 16,
  aeScales: [40],
  aeTrain: { ...demo.aeTrain, steps: 4, batch: 2, warmup: 1, checkpointEvery: 2, logEvery: 1 },
  text: { width: 32, layers: 1, heads: 2, contextLength: 24 },
  unet: { latentChannels: 4, channels: [16, 32], resBlocks: 1, attentionLevels: [1], midAttention: true, heads: 2, ctxDim: 32, timeDim: 32, groups: 4, ffMult: 2, pooledText: true, positional: true, layout: { grid: 4, channels: 4, heads: 2 } },
  cropsPerPhoto: 1,
  cropScales: [
    { shortSide: 40, crops: 1 },
    { shortSide: 56, crops: 1 },
  ],
  degradedPerCrop: 1,
  // the ci preset exercises the diffusion autoencoder through the text space (data/configs/t2i-demo-words.json)
  words: { encoder: { cut: 'block10', range: 'unit' }, mapper: { numWords: 5, hidden: 16, layers: 1, tokenPool: 2, spatial: 'regions', color: true }, prob: 0.7, noise: 0.05 }, // the ci guidance model's N and mapper
  unetTrain: { ...demo.unetTrain, steps: 4, batch: 4, warmup: 1, checkpointEvery: 2, logEvery: 1 },
  sample: { steps: 4, cfgScale: 3, eta: 0 },
};

const paper: z.input<typeof T2IConfigSchema> = {
  ...demo,
  preset: 'paper',
  imageSize: 512, // SD 2.1-base resolution (paper Sec. 4, Implementation Details)
  photoShortSide: 576,
  autoencoder: { channels: [128, 256, 512, 512], latentChannels: 4, groups: 32 }, // SD VAE widths, f = 8
  aeCrop: 256,
  aeScales: [576],
  aeTrain: { ...demo.aeTrain, steps: 200000, batch: 8, lr: 4.5e-6 }, // aeHfWeight kept: stands in for SD's perceptual + adversarial VAE losses
  offsetNoise: undefined, // SD 2.1 and the paper: plain ε
  text: { width: 1024, layers: 23, heads: 16, contextLength: 77 }, // OpenCLIP ViT-H text tower as used by SD 2.1
  unet: { latentChannels: 4, channels: [320, 640, 1280, 1280], resBlocks: 2, attentionLevels: [0, 1, 2], midAttention: true, heads: 8, ctxDim: 1024, timeDim: 1280, groups: 32, ffMult: 4, positional: false },
  // SD 2.1 draws from text alone: no image-to-words mapper, one crop scale (the paper's M_i2t is trained on a frozen SD)
  cropScales: undefined,
  words: undefined,
  unetTrain: { ...demo.unetTrain, steps: 200000, batch: 64, lr: 1e-4, warmup: 10000 },
  sample: { steps: 100, cfgScale: 5, eta: 0 }, // official `validation()` (scripts/train/main_train_tr_mapping.py): DDIM 100 steps, CFG 5
};

export const PRESETS = { ci, demo, paper } as const;
export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/** A preset by name, validated; unknown names list the known ones. */
export function t2iPreset(name: string): T2IConfig {
  if (!(name in PRESETS)) throw new UserError(`unknown preset '${name}'; presets: ${PRESET_NAMES.join(', ')}`);
  return parseT2IConfig(PRESETS[name as PresetName], `preset ${name}`);
}

/** Validate a T2I config (from a preset or a JSON file); errors name `label` and the field path. */
export function parseT2IConfig(raw: unknown, label: string): T2IConfig {
  return parseConfig(T2IConfigSchema, raw, label);
}
