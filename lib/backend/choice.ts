/**
 * The backend this machine measured fastest for training: a small record that `tdr bench
 * --choose-backend` writes (lib/jobs/choose_backend.ts) and the resolver (./index.ts) reads when
 * neither the `backend` option nor TDR_BACKEND decides.
 *
 * Why a measurement and not a fixed order: which backend trains faster depends on the machine (CPU,
 * cores, whether TensorFlow's C library or OpenBLAS was built, CUDA). On the 2-core machine of
 * docs/experiments.md §1 tensorflow trains the demo models about twice as fast as wasm, yet wasm
 * runs the 16×16 DDIM steps of `tdr guide` faster; so the record is about training steps, the
 * thing the user waits hours for.
 *
 * The record is keyed by the machine (CPU model, cores, platform, Node.js major version). A record
 * of another machine, or one naming a backend that no longer starts, is ignored with a reason that
 * the resolver prints, never an error: a stale cache must not stop a command.
 *
 * Location: env TDR_BACKEND_CHOICE (a file), else $XDG_CACHE_HOME/tdr/backend-choice.json, else
 * ~/.cache/tdr/backend-choice.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/fsx';

export type MeasuredBackend = 'tensorflow' | 'wasm' | 'cpu';

/** What identifies "this machine" for a timing: a record measured elsewhere says nothing here. */
export interface MachineKey {
  cpu: string;
  cores: number;
  platform: string;
  /** Node.js major version (the wasm and addon builds depend on it) */
  node: number;
}

/** One configuration timed by `tdr bench --choose-backend`. */
export interface ChoiceCandidate {
  backend: MeasuredBackend;
  threads: number;
  /** median wall ms of one demo text-to-image training step (batch 16) */
  t2iStepMs: number;
  /** median wall ms of one demo PromptIR training step (unguided, batch 8, 64²) */
  promptirStepMs: number;
  /** what decides: the sum of the two steps */
  score: number;
  /** median wall ms of one guidance image (`tdr guide`: DDIM at 128², CFG pair), when a guidance model was there */
  guideMs?: number;
}

export interface BackendChoice {
  version: 1;
  machine: MachineKey;
  /** ISO time of the measurement */
  measuredAt: string;
  candidates: ChoiceCandidate[];
  /** the candidate with the lowest score */
  chosen: { backend: MeasuredBackend; threads: number };
  /** the candidate with the lowest guideMs (commands that generate: `tdr guide`, `tdr sample`); absent when none was timed */
  generation?: { backend: MeasuredBackend; threads: number };
  /** candidates that could not run, with why */
  failed?: Array<{ backend: MeasuredBackend; threads: number; error: string }>;
}

export function machineKey(): MachineKey {
  const cpus = os.cpus();
  return { cpu: (cpus[0]?.model ?? 'unknown').trim(), cores: cpus.length, platform: `${process.platform}-${process.arch}`, node: Number(process.versions.node.split('.')[0]) };
}

export function choiceFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TDR_BACKEND_CHOICE) return path.resolve(env.TDR_BACKEND_CHOICE);
  const base = env.XDG_CACHE_HOME ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(base, 'tdr', 'backend-choice.json');
}

const BACKENDS: readonly string[] = ['tensorflow', 'wasm', 'cpu'];

/** The candidate with the lowest positive finite `key(c)`, ties to the earlier one; undefined when none has one. */
function lowest(candidates: readonly ChoiceCandidate[], key: (c: ChoiceCandidate) => number | undefined): { backend: MeasuredBackend; threads: number } | undefined {
  let best: { c: ChoiceCandidate; v: number } | undefined;
  for (const c of candidates) {
    const v = key(c);
    if (v === undefined || !Number.isFinite(v) || v <= 0) continue;
    if (best === undefined || v < best.v) best = { c, v };
  }
  return best && { backend: best.c.backend, threads: best.c.threads };
}

/** Pick the lowest score; ties go to the earlier candidate. @throws Error when there is none */
export function pickCandidate(candidates: readonly ChoiceCandidate[]): { backend: MeasuredBackend; threads: number } {
  const best = lowest(candidates, (c) => c.score);
  if (best === undefined) throw new Error('no backend could be timed');
  return best;
}

/** The fastest candidate for generating one guidance image, or undefined when none was timed. */
export function pickGenerationCandidate(candidates: readonly ChoiceCandidate[]): { backend: MeasuredBackend; threads: number } | undefined {
  return lowest(candidates, (c) => c.guideMs);
}

export function writeChoice(choice: BackendChoice, file = choiceFile()): string {
  writeFileAtomic(file, JSON.stringify(choice, null, 1) + '\n');
  return file;
}

/**
 * The record for this machine, or why there is none usable. Never throws: an unreadable or
 * malformed file is a reason, not an error.
 */
export function readChoice(file = choiceFile(), key: MachineKey = machineKey()): { choice: BackendChoice } | { none: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { none: `no measurement (${file})` };
  }
  let c: BackendChoice;
  try {
    c = JSON.parse(text) as BackendChoice;
  } catch (e) {
    return { none: `${file}: not JSON (${(e as Error).message}); ignored` };
  }
  const ch = c?.chosen;
  if (c?.version !== 1 || !ch || !BACKENDS.includes(ch.backend) || !Number.isInteger(ch.threads) || ch.threads < 1 || !c.machine) {
    return { none: `${file}: not a backend-choice record of this version (expected version 1 with chosen.backend and chosen.threads); ignored` };
  }
  const g = c.generation;
  if (g != null && (!BACKENDS.includes(g.backend) || !Number.isInteger(g.threads) || g.threads < 1)) {
    return { none: `${file}: its generation choice is not a backend and thread count (${JSON.stringify(g)}); ignored` };
  }
  const m = c.machine;
  const diff = (Object.keys(key) as Array<keyof MachineKey>).filter((k) => m[k] !== key[k]);
  if (diff.length > 0) return { none: `${file} was measured on another machine (${diff.map((k) => `${k} ${String(m[k])} ≠ ${String(key[k])}`).join(', ')}); ignored` };
  return { choice: c };
}
