/**
 * The settings of one training run (the loop's schedule, AdamW, clipping, EMA, checkpoints) and the
 * batched form every stage's preset uses. Defaults live here once: AdamW's defaults are read from
 * this schema (lib/train/adamw.ts), and a preset's `…Train` block is `BatchedTrainConfigSchema`.
 */
import { z } from 'zod';

export const TrainConfigSchema = z.strictObject({
  steps: z.number().int().positive().describe('total optimisation steps'),
  lr: z.number().positive().finite().describe('peak learning rate'),
  warmup: z.number().int().nonnegative().default(0).describe('linear warm-up steps'),
  schedule: z.enum(['cosine', 'constant']).default('cosine'),
  minLrRatio: z.number().min(0).max(1).default(0.1).describe('final lr = lr·minLrRatio (cosine)'),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.999),
  eps: z.number().positive().default(1e-8),
  weightDecay: z.number().min(0).default(0.01).describe('AdamW decoupled weight decay'),
  clipNorm: z.number().min(0).default(1).describe('global gradient-norm clip; 0 = off'),
  emaDecay: z.number().min(0).lt(1).default(0.999).describe('EMA of weights; 0 = off'),
  emaWarmup: z.boolean().default(true).describe('decay at step t = min(emaDecay, (1+t)/(10+t)), so that a short run\'s EMA is not dominated by the initial weights (as diffusers/timm EMA warm-up)'),
  checkpointEvery: z.number().int().positive().default(200),
  logEvery: z.number().int().positive().default(10),
  seed: z.number().int().nonnegative().default(0),
});
export type TrainConfig = z.infer<typeof TrainConfigSchema>;

/** A stage's training block in a preset: the run settings plus the batch size (images / patches per step). */
export const BatchedTrainConfigSchema = TrainConfigSchema.extend({ batch: z.number().int().positive().describe('images (or patches) per step') });
export type BatchedTrainConfig = z.infer<typeof BatchedTrainConfigSchema>;

/** The loop's settings of a batched block (the batch size is the stage's business, not the loop's). */
export function loopSettings(cfg: BatchedTrainConfig): TrainConfig {
  const { batch: _batch, ...rest } = cfg;
  return rest;
}
