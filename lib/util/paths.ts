/** Where things live: shipped checkpoints (data/checkpoints) and training runs (TDR_RUNS). */
import * as path from 'node:path';
import { projectRoot } from './fsx';

/** A shipped checkpoint: data/checkpoints/<name>.tdrc */
export function shippedCheckpoint(name: string): string {
  return path.join(projectRoot(), 'data', 'checkpoints', `${name}.tdrc`);
}

/** The training log shipped beside a checkpoint: data/checkpoints/<name>.log.jsonl */
export function shippedLog(name: string): string {
  return path.join(projectRoot(), 'data', 'checkpoints', `${name}.log.jsonl`);
}

/** The runs folder: $TDR_RUNS, else outputs/runs (keep long runs outside the checkout). */
export function defaultRunsDir(): string {
  return process.env.TDR_RUNS || path.join(projectRoot(), 'outputs', 'runs');
}

/**
 * The t2i checkpoint notebooks and commands use by default: $TDR_T2I_CHECKPOINT if set, else the
 * shipped demo model.
 */
export function t2iCheckpoint(): string {
  return process.env.TDR_T2I_CHECKPOINT || shippedCheckpoint('t2i-demo');
}

/** A path as stored in a checkpoint: project-relative when inside the project. */
export function portablePath(file: string): string {
  const abs = path.resolve(file);
  const rel = path.relative(projectRoot(), abs);
  return rel.startsWith('..') || path.isAbsolute(rel) ? abs : rel;
}

/** Resolve a stored path (project-relative paths against the project root). */
export function resolveStoredPath(p: string): string {
  return path.isAbsolute(p) ? p : path.join(projectRoot(), p);
}
