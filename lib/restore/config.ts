/**
 * Presets for guided restoration (stage 3; paper Sec. 3.3, Eq. 4–5) — one zod schema,
 * three presets, resolved for a chosen backbone, guidance on/off and task set:
 *   ci    tiny: a few training steps in seconds on 2 photos, guidance with 4 DDIM steps (tests, notebooks under CI)
 *   demo  the shipped checkpoints: small backbones, 64-px patches, trainable on a 2-core CPU in hours
 *   paper the official stage-3 options (mrluin/TextualDegRemoval options/train_restoration/
 *         *.yml): gt_size 384, batch 8, lr 2e-4, ref_lr 1e-4, AdamW wd 1e-4, param_fix_iterations
 *         20000, 1M iterations, L1; full-width backbones. It must parse and build; it is for a GPU.
 *
 * Official option → key here:
 *   gt_size → patchSize · lr → train.lr · ref_lr → refLr (absolute LR of every `<prefix>.masa.`
 *   parameter, i.e. the matcher encoder and the fusion blocks; the loop gets it as the ratio
 *   refLr / lr) · param_fix_iterations → paramFixIterations (the matcher group is frozen, LR 0, for
 *   that many steps — the official key never took effect: models/image_restoration_ref_model.py reads `fix_iterations`) · total_iter →
 *   train.steps · batch_size_per_gpu → train.batch · weight_decay → train.weightDecay.
 * Deviation: the official CosineAnnealingRestartCyclicLR (periods [306000, 694000], eta_mins [3e-4,
 * 1e-6]) is replaced by the project loop's single cosine with warm-up down to lr·minLrRatio; the
 * matcher group follows the same curve scaled by refLr / lr.
 *
 * Keys are the constructors' own option names. A preset overrides only what differs.
 */
import { z } from 'zod';
import { BackboneConfig, BackboneConfigSchema, GuidedRestorerConfigSchema } from './guided';
import { AggregationConfigSchema } from './aggregation';
import { BatchedTrainConfigSchema } from '../train/config';
import { UserError, parseConfig } from '../util/errors';
import { ColorJitterRangesSchema, type ColorJitterRanges } from '../data/color_jitter';

export const BACKBONE_TYPES = ['promptir', 'nafnet', 'restormer'] as const;
export type BackboneType = (typeof BACKBONE_TYPES)[number];

/** Task sets: 'all-in-one' = the paper's 5 (noise σ15/25/50, rain, haze, uniform); else one family. */
export const TASK_SETS = ['all-in-one', 'noise', 'rain', 'haze', 'motion', 'defocus'] as const;
export type TaskSet = (typeof TASK_SETS)[number];


export const RestoreConfigSchema = z
  .strictObject({
    preset: z.string(),
    model: GuidedRestorerConfigSchema.describe('backbone (type picks the class), guidance on/off, matcher'),
    tasks: z.enum(TASK_SETS).describe("training task set: 'all-in-one' (5 tasks, uniform) or one family"),
    patchSize: z.number().int().min(16).describe('gt_size: side of the square training patches (px)'),
    photoShortSide: z.number().int().min(16).describe('training photos are resized to this short side before cropping'),
    cropScales: z
      .array(z.number().int().min(16))
      .min(1)
      .optional()
      .describe('short sides the training photos are loaded at; each patch comes from one of them, uniformly (multi-scale crops of the full-resolution photos); absent: photoShortSide only. Guidance is generated from the whole photo at photoShortSide'),
    taskWeights: z
      .record(z.string(), z.number().min(0))
      .optional()
      .describe("relative sampling weight per task name of the task set, e.g. { \"haze\": 3 }; absent: uniform over the task set (official)"),
    validation: z
      .strictObject({
        holdout: z.number().int().min(1).describe('the last N training photos are held out of training and used for validation (never the validation split, which the tables use)'),
        every: z.number().int().positive().describe('validate every this many steps (and at the last step)'),
        size: z.number().int().min(16).describe('side of the centred crops of the held-out photos (at photoShortSide)'),
      })
      .optional()
      .describe('validation PSNR during training (val.jsonl in the run folder); the shipped model is the best checkpoint by mean PSNR'),
    refLr: z.number().min(0).finite().describe('ref_lr: peak LR of the <prefix>.masa. group (matcher encoder + fusion)'),
    paramFixIterations: z.number().int().min(0).describe('param_fix_iterations: steps during which the masa group is frozen'),
    matcherEncoderLr: z
      .number()
      .min(0)
      .finite()
      .optional()
      .describe(
        'peak LR of the matcher encoder (<prefix>.masa.enc.) alone, default refLr; 0 keeps it at its random init — with L1 only, the trained demo encoder collapsed (cosine ≈ 1 at every position, notebook 06); not in the official code',
      ),
    photoLimit: z.number().int().positive().optional().describe('use only the first N training photos (ci: a few, so that guidance is generated for few pairs)'),
    guidanceSteps: z.number().int().positive().optional().describe("DDIM steps of the training pairs' guidance generation (default: the guidance model's own; ci: a few)"),
    guidanceColorJitter: ColorJitterRangesSchema.optional()
      .describe(
        'training only: each G crop gets one random colour transform of these ranges (lib/data/color_jitter.ts: hue rotation ± degrees, saturation and gain factors 1 ± s, γ), so that the restorer does not take G\'s colours as exact; unguided runs: no effect (beyond the paper; docs/experiments.md §4)',
      ),
    guidanceLowpass: z
      .array(z.number().int().positive())
      .min(1)
      .optional()
      .describe(
        'training only: each G crop is block-averaged by a factor drawn uniformly from this list (1 = as generated) and bilinearly upsampled again, so that the restorer learns from G only the coarse content it can also trust on unseen photos; unguided runs: no effect (beyond the paper; docs/experiments.md §4)',
      ),
    train: BatchedTrainConfigSchema.describe('run settings; batch = batch_size_per_gpu'),
    eval: z.strictObject({
      size: z.number().int().min(16).describe('side of the centred validation crops (px); a multiple of 64 avoids padding'),
      shortSide: z.number().int().min(16).describe('validation photos are resized to this short side first'),
      limit: z.number().int().positive().optional().describe('use only the first N validation photos'),
    }),
  })
  .superRefine((c, ctx) => {
    if (c.photoShortSide < c.patchSize) ctx.addIssue({ code: 'custom', path: ['photoShortSide'], message: `photoShortSide ${c.photoShortSide} must be ≥ patchSize ${c.patchSize}` });
    if (c.eval.shortSide < c.eval.size) ctx.addIssue({ code: 'custom', path: ['eval', 'shortSide'], message: `eval.shortSide ${c.eval.shortSide} must be ≥ eval.size ${c.eval.size}` });
    if (c.patchSize % 4 !== 0) ctx.addIssue({ code: 'custom', path: ['patchSize'], message: `patchSize ${c.patchSize} must be a multiple of 4 (guidance candidates are taken with stride patchSize/4)` });
    c.cropScales?.forEach((s, i) => {
      if (s < c.patchSize) ctx.addIssue({ code: 'custom', path: ['cropScales', i], message: `cropScales[${i}] = ${s} must be ≥ patchSize ${c.patchSize}` });
    });
    if (c.taskWeights) {
      const names = (c.tasks === 'all-in-one' ? ['noise15', 'noise25', 'noise50', 'rain', 'haze'] : [c.tasks]) as string[];
      for (const k of Object.keys(c.taskWeights)) if (!names.includes(k)) ctx.addIssue({ code: 'custom', path: ['taskWeights', k], message: `'${k}' is not a task of '${c.tasks}' (${names.join(', ')})` });
      if (!names.some((n) => (c.taskWeights![n] ?? 1) > 0)) ctx.addIssue({ code: 'custom', path: ['taskWeights'], message: 'at least one task needs a weight > 0' });
    }
    c.guidanceLowpass?.forEach((f, i) => {
      if (c.patchSize % f !== 0) ctx.addIssue({ code: 'custom', path: ['guidanceLowpass', i], message: `guidanceLowpass[${i}] = ${f} must divide patchSize ${c.patchSize}` });
    });
    if (c.validation && c.validation.size > c.photoShortSide) ctx.addIssue({ code: 'custom', path: ['validation', 'size'], message: `validation.size ${c.validation.size} must be ≤ photoShortSide ${c.photoShortSide}` });
  });
export type RestoreConfig = z.infer<typeof RestoreConfigSchema>;

/** What a preset holds: sizes for every backbone type; `restorePreset` picks one. */
interface PresetSpec {
  backbones: Record<BackboneType, BackboneConfig>;
  /** matcher per backbone type (NAFNet's fusion levels = encBlocks.length + 1) */
  aggregation: Record<BackboneType, z.input<typeof AggregationConfigSchema>>;
  patchSize: number;
  photoShortSide: number;
  cropScales?: number[];
  taskWeights?: Record<string, number>;
  validation?: RestoreConfig['validation'];
  refLr: number;
  paramFixIterations: number;
  photoLimit?: number;
  guidanceSteps?: number;
  guidanceLowpass?: number[];
  guidanceColorJitter?: ColorJitterRanges;
  train: z.input<typeof BatchedTrainConfigSchema>;
  eval: RestoreConfig['eval'];
}

/**
 * A restore preset in a JSON file (`tdr train restore --config FILE`): the fields of a preset — sizes
 * per backbone type (only the backbones it will train need to be there), data, schedule — under a
 * name of its own, so that the guided and the unguided run of one experiment share everything but
 * the guidance. Each field is validated when a backbone is picked (`restorePresetFrom`).
 */
export const RestorePresetFileSchema = z.strictObject({
  preset: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes (it names the run folder)').describe('name of the experiment (run and checkpoint names end with it)'),
  backbones: z.record(z.string(), z.unknown()).describe('backbone config per type (promptir, nafnet, restormer)'),
  aggregation: z.record(z.string(), z.unknown()).describe('matcher config per backbone type'),
  patchSize: z.unknown(),
  photoShortSide: z.unknown(),
  cropScales: z.unknown().optional(),
  taskWeights: z.unknown().optional(),
  validation: z.unknown().optional(),
  photoLimit: z.unknown().optional(),
  guidanceSteps: z.unknown().optional(),
  guidanceLowpass: z.unknown().optional(),
  guidanceColorJitter: z.unknown().optional(),
  refLr: z.unknown(),
  paramFixIterations: z.unknown(),
  train: z.unknown(),
  eval: z.unknown(),
});

const demo: PresetSpec = {
  // the backbones' own small defaults (lib/restore/*): width/dim 16, one block per level
  backbones: {
    promptir: { type: 'promptir', dim: 16, blocks: [1, 1, 1, 1], refinement: 1, heads: [1, 1, 2, 4], ffnExpansion: 2.66, bias: false, layerNorm: 'withBias', promptLen: 5, promptDims: [16, 32, 64], promptSizes: [32, 16, 8] },
    nafnet: { type: 'nafnet', width: 16, encBlocks: [1, 1, 1], middleBlocks: 1, decBlocks: [1, 1, 1], dwExpand: 2, ffnExpand: 2 },
    restormer: { type: 'restormer', dim: 16, blocks: [1, 1, 1, 1], refinement: 1, heads: [1, 1, 2, 4], ffnExpansion: 2.66, bias: false, layerNorm: 'withBias' },
  },
  aggregation: { promptir: { nf: 8, levels: 4 }, nafnet: { nf: 8, levels: 4 }, restormer: { nf: 8, levels: 4 } },
  patchSize: 64, // 64 = one 8×8 matcher block at 1/8: X needs no padding
  photoShortSide: 160, // same photo scale as the T2I demo model's crops (its guidance covers a whole-scene view)
  refLr: 5e-4, // official ratio ref_lr / lr = 1e-4 / 2e-4 = 0.5
  paramFixIterations: 300, // official 20000 of 1M (2 %); here 300 of 4000, so α/B learn on a backbone that already restores
  train: { steps: 4000, batch: 8, lr: 1e-3, warmup: 100, minLrRatio: 0.01, weightDecay: 1e-4, clipNorm: 1, emaDecay: 0.999, checkpointEvery: 100, logEvery: 10, seed: 3 },
  eval: { size: 128, shortSide: 160 },
};

const ci: PresetSpec = {
  backbones: {
    promptir: { type: 'promptir', dim: 4, blocks: [1, 1, 1, 1], refinement: 0, heads: [1, 1, 1, 2], ffnExpansion: 2, bias: false, layerNorm: 'withBias', promptLen: 2, promptDims: [4, 8, 8], promptSizes: [8, 4, 2] },
    nafnet: { type: 'nafnet', width: 4, encBlocks: [1, 1, 1], middleBlocks: 1, decBlocks: [1, 1, 1], dwExpand: 2, ffnExpand: 2 },
    restormer: { type: 'restormer', dim: 4, blocks: [1, 1, 1, 1], refinement: 0, heads: [1, 1, 1, 2], ffnExpansion: 2, bias: false, layerNorm: 'withBias' },
  },
  aggregation: { promptir: { nf: 2, levels: 4, blockSize: 2 }, nafnet: { nf: 2, levels: 4, blockSize: 2 }, restormer: { nf: 2, levels: 4, blockSize: 2 } },
  patchSize: 16, // with blockSize 2 X pads to 16: no padding
  photoShortSide: 32,
  refLr: 5e-4,
  paramFixIterations: 1,
  // seconds, not minutes: guidance for 2 photos × the task set, 4 DDIM steps each (a plumbing run)
  photoLimit: 2,
  guidanceSteps: 4,
  train: { steps: 3, batch: 2, lr: 1e-3, warmup: 1, minLrRatio: 0.1, weightDecay: 1e-4, clipNorm: 1, emaDecay: 0.9, checkpointEvery: 2, logEvery: 1, seed: 3 },
  eval: { size: 32, shortSide: 32, limit: 2 },
};

const paper: PresetSpec = {
  backbones: {
    // PromptIR net/model.py: Restormer dim 48, [4,6,6,8], heads [1,2,4,8], ffn 2.66, 4 refinement, prompts 64/128/320 × 64/32/16
    promptir: { type: 'promptir', dim: 48, blocks: [4, 6, 6, 8], refinement: 4, heads: [1, 2, 4, 8], ffnExpansion: 2.66, bias: false, layerNorm: 'withBias', promptLen: 5, promptDims: [64, 128, 320], promptSizes: [64, 32, 16] },
    // NAFNet-width32 (the paper's ablation baseline), GoPro layout: enc [1,1,1,28], middle 1, dec [1,1,1,1]
    nafnet: { type: 'nafnet', width: 32, encBlocks: [1, 1, 1, 28], middleBlocks: 1, decBlocks: [1, 1, 1, 1], dwExpand: 2, ffnExpand: 2 },
    restormer: { type: 'restormer', dim: 48, blocks: [4, 6, 6, 8], refinement: 4, heads: [1, 2, 4, 8], ffnExpansion: 2.66, bias: false, layerNorm: 'withBias' },
  },
  // official matcher: nf 48, ext_n_blocks [4,4,4,4], lr_block_size 8, ref_down_block_size 1.5, dilations [1,2,3]; NAFNet has 5 levels
  aggregation: { promptir: { nf: 48, levels: 4, encBlocks: 4 }, nafnet: { nf: 48, levels: 5, encBlocks: 4 }, restormer: { nf: 48, levels: 4, encBlocks: 4 } },
  patchSize: 384, // gt_size
  photoShortSide: 512,
  refLr: 1e-4, // ref_lr
  paramFixIterations: 20000, // param_fix_iterations
  train: { steps: 1_000_000, batch: 8, lr: 2e-4, warmup: 0, minLrRatio: 0.005, weightDecay: 1e-4, clipNorm: 0.01, emaDecay: 0.999, checkpointEvery: 5000, logEvery: 100, seed: 3 },
  eval: { size: 512, shortSide: 512 },
};

export const RESTORE_PRESETS = { ci, demo, paper } as const;
export type RestorePresetName = keyof typeof RESTORE_PRESETS;
export const RESTORE_PRESET_NAMES = Object.keys(RESTORE_PRESETS) as RestorePresetName[];

export interface RestoreChoice {
  backbone: BackboneType;
  guidance: boolean;
  tasks: TaskSet;
}

/** A preset resolved for one backbone / guidance / task set, validated. Unknown names list the known ones. */
export function restorePreset(name: string, choice: RestoreChoice): RestoreConfig {
  if (!(name in RESTORE_PRESETS)) throw new UserError(`unknown preset '${name}'; presets: ${RESTORE_PRESET_NAMES.join(', ')}`);
  return restorePresetFrom(name, RESTORE_PRESETS[name as RestorePresetName], choice, `preset ${name}`);
}

/**
 * The restore config of one backbone and guidance choice from a preset's fields (a built-in preset
 * or a preset file read by `parseRestorePresetFile`); errors name `label` and the field path.
 */
export function restorePresetFrom(name: string, p: Omit<z.input<typeof RestorePresetFileSchema>, 'preset'> | PresetSpec, choice: RestoreChoice, label: string): RestoreConfig {
  if (!(BACKBONE_TYPES as readonly string[]).includes(choice.backbone)) {
    throw new UserError(`unknown backbone '${choice.backbone}'; backbones: ${BACKBONE_TYPES.join(', ')}`);
  }
  const backbones = p.backbones as Record<string, unknown>;
  const aggregation = p.aggregation as Record<string, unknown>;
  if (!(choice.backbone in backbones)) throw new UserError(`${label}: backbones has no '${choice.backbone}' (has ${Object.keys(backbones).join(', ') || 'none'})`);
  if (choice.guidance && !(choice.backbone in aggregation)) throw new UserError(`${label}: aggregation has no '${choice.backbone}' (a guided run needs its matcher)`);
  const raw = {
    preset: name,
    model: { backbone: backbones[choice.backbone], guidance: choice.guidance, aggregation: aggregation[choice.backbone] ?? (RESTORE_PRESETS.demo.aggregation[choice.backbone]) },
    tasks: choice.tasks,
    patchSize: p.patchSize,
    photoShortSide: p.photoShortSide,
    ...(p.cropScales !== undefined ? { cropScales: p.cropScales } : {}),
    ...(p.taskWeights !== undefined ? { taskWeights: p.taskWeights } : {}),
    ...(p.validation !== undefined ? { validation: p.validation } : {}),
    refLr: p.refLr,
    paramFixIterations: p.paramFixIterations,
    ...(p.photoLimit !== undefined ? { photoLimit: p.photoLimit } : {}),
    ...(p.guidanceSteps !== undefined ? { guidanceSteps: p.guidanceSteps } : {}),
    ...(p.guidanceLowpass !== undefined ? { guidanceLowpass: p.guidanceLowpass } : {}),
    ...(p.guidanceColorJitter !== undefined ? { guidanceColorJitter: p.guidanceColorJitter } : {}),
    train: p.train,
    eval: p.eval,
  };
  return parseRestoreConfig(raw, label);
}

/** Read and check the outer shape of a restore preset file (the fields are checked by `restorePresetFrom`). */
export function parseRestorePresetFile(raw: unknown, label: string): z.infer<typeof RestorePresetFileSchema> {
  const p = parseConfig(RestorePresetFileSchema, raw, label);
  if ((RESTORE_PRESET_NAMES as string[]).includes(p.preset)) throw new UserError(`${label}: preset '${p.preset}' is the name of a built-in preset; give the file's experiment its own name`);
  return p;
}

/** Validate a restore config (preset, JSON file or checkpoint meta); errors name `label` and the field path. */
export function parseRestoreConfig(raw: unknown, label: string): RestoreConfig {
  return parseConfig(RestoreConfigSchema, raw, label);
}

/**
 * The run / checkpoint name of a config: restore-<backbone>-<tasks>-<guided|plain>-<preset>, then
 * '-enclr<LR>' when the matcher encoder has its own LR and '-<source>' when a guided run takes a
 * guidance source other than the paper's ('text'), so that runs of different sources never share a
 * runs folder (resuming one with the other's guidance).
 */
export function restoreRunName(
  cfg: { preset: string; tasks: string; model: { backbone: { type: string }; guidance: boolean }; matcherEncoderLr?: number },
  guidanceSource = 'text',
): string {
  const enc = cfg.model.guidance && cfg.matcherEncoderLr !== undefined ? `-enclr${cfg.matcherEncoderLr}` : '';
  const src = cfg.model.guidance && guidanceSource !== 'text' ? `-${guidanceSource}` : '';
  return `restore-${cfg.model.backbone.type}-${cfg.tasks}-${cfg.model.guidance ? 'guided' : 'plain'}-${cfg.preset}${enc}${src}`;
}

export { BackboneConfigSchema };
