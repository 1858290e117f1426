/**
 * Learning-rate schedule, a pure function of the step (nanoGPT's get_lr):
 *   1) linear warm-up from 0 to lr over `warmup` steps,
 *   2) then either constant, or cosine decay to lr·minLrRatio at `steps`,
 *   3) past `steps`: lr·minLrRatio.
 */
export interface LrSchedule {
  lr: number;
  warmup: number;
  steps: number;
  schedule: 'cosine' | 'constant';
  minLrRatio: number;
}

export function lrAt(step: number, s: LrSchedule): number {
  if (s.warmup > 0 && step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
  if (s.schedule === 'constant') return s.lr;
  const minLr = s.lr * s.minLrRatio;
  if (step >= s.steps) return minLr;
  const span = Math.max(1, s.steps - s.warmup);
  const ratio = (step - s.warmup) / span;
  return minLr + 0.5 * (1 + Math.cos(Math.PI * ratio)) * (s.lr - minLr);
}
