/**
 * `tdr bench --choose-backend`: time the demo training steps on every backend that starts here, at
 * one thread and at one per core, each in a fresh process (a process can start only one backend and
 * fixes its thread count once), and record the fastest for the resolver (lib/backend/choice.ts).
 *
 * What is timed is what users wait for: one demo text-to-image training step (batch 16) and one
 * demo PromptIR training step (unguided, batch 8, 64²) — `benchT2IStep` and `benchPromptIRStep`, as
 * `tdr bench --t2i --promptir` prints them. The score is their sum (medians of wall time).
 * Generation is recorded apart: one guidance image of the shipped words guidance model (`benchGuidance`,
 * as `tdr bench --guide` prints it), the fastest of which `tdr guide` and `tdr sample` use.
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as fs from 'node:fs';
import { initBackend, machineKey, pickCandidate, pickGenerationCandidate, writeChoice, BackendChoice, ChoiceCandidate } from '../backend';
import { wordsGuidanceCheckpoint } from '../guidance/config';
import type { MeasuredBackend } from '../backend/choice';
import { benchPromptIRStep, benchT2IStep } from './bench_train';
import { benchGuidance } from './bench_sample';
import { textTable } from '../viz/table';

export interface ChooseArgs {
  backend: MeasuredBackend;
  threads: number;
  steps: number;
  /** a guidance model to time one guidance image with (`tdr guide`), if there is one */
  guidance?: string;
}

/** The configurations timed: tensorflow at 1 thread and at one per core, wasm at 1 OpenBLAS thread. */
export function chooseCandidates(cores = os.cpus().length): Array<{ backend: MeasuredBackend; threads: number }> {
  const out: Array<{ backend: MeasuredBackend; threads: number }> = [{ backend: 'tensorflow', threads: 1 }];
  if (cores > 1) out.push({ backend: 'tensorflow', threads: cores });
  out.push({ backend: 'wasm', threads: 1 });
  return out;
}

/** One candidate, in this process (the child's side). */
async function timeOnce(a: ChooseArgs): Promise<ChoiceCandidate> {
  const info = await initBackend({ backend: a.backend, threads: a.threads, quiet: true });
  const t2i = await benchT2IStep({ steps: a.steps, warmup: 1 });
  const pir = (await benchPromptIRStep({ reps: a.steps })).find((r) => !r.guidance);
  if (!pir) throw new Error('benchPromptIRStep gave no unguided row');
  const threads = info.name === 'wasm' ? (info.blasThreads ?? 1) : info.threads;
  const guide = a.guidance ? await benchGuidance(a.guidance, { runs: a.steps }) : undefined;
  return { backend: info.name, threads, t2iStepMs: t2i.stepMs, promptirStepMs: pir.stepMs, score: t2i.stepMs + pir.stepMs, ...(guide ? { guideMs: guide.guideMs } : {}) };
}

/**
 * Time every candidate in a child process; write the record (unless `write: false`) and return it.
 * A candidate that cannot start (e.g. tensorflow not built) is listed under `failed`.
 * @throws Error when no candidate could be timed
 */
export function chooseBackend(opts: { steps?: number; write?: boolean; file?: string; guidance?: string | null; candidates?: Array<{ backend: MeasuredBackend; threads: number }>; onCandidate?: (c: ChoiceCandidate | { backend: MeasuredBackend; threads: number; error: string }) => void } = {}): { choice: BackendChoice; file?: string } {
  const steps = opts.steps ?? 3;
  // generation is timed with `guidance`, by default the shipped words guidance when it is there (null: not timed)
  const shipped = wordsGuidanceCheckpoint();
  const guidance = opts.guidance === null ? undefined : (opts.guidance ?? (fs.existsSync(shipped) ? shipped : undefined));
  if (guidance !== undefined && !fs.existsSync(guidance)) throw new Error(`${guidance}: no guidance model to time generation with`);
  const candidates: ChoiceCandidate[] = [];
  const failed: NonNullable<BackendChoice['failed']> = [];
  for (const c of opts.candidates ?? chooseCandidates()) {
    const args: ChooseArgs = { ...c, steps, ...(guidance ? { guidance } : {}) };
    const r = spawnSync(process.execPath, [__filename, JSON.stringify(args)], { encoding: 'utf8', env: { ...process.env, TDR_QUIET: '1', TDR_BACKEND: '', TDR_THREADS: '' }, maxBuffer: 1 << 24 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status === 0 && line.startsWith('{')) {
      const row = JSON.parse(line) as ChoiceCandidate;
      candidates.push(row);
      opts.onCandidate?.(row);
    } else {
      const error = (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n').filter(Boolean).slice(-1)[0] ?? `exit ${r.status}`;
      failed.push({ ...c, error });
      opts.onCandidate?.({ ...c, error });
    }
  }
  const generation = pickGenerationCandidate(candidates);
  const choice: BackendChoice = { version: 1, machine: machineKey(), measuredAt: new Date().toISOString(), candidates, chosen: pickCandidate(candidates), ...(generation ? { generation } : {}), ...(failed.length ? { failed } : {}) };
  const file = opts.write === false ? undefined : writeChoice(choice, opts.file);
  return { choice, file };
}

/** The table `tdr bench --choose-backend` prints. */
export function formatChoice(c: BackendChoice, file?: string): string {
  const is = (k: { backend: string; threads: number }, x?: { backend: string; threads: number }) => x != null && k.backend === x.backend && k.threads === x.threads;
  const mark = (k: { backend: string; threads: number }) => [is(k, c.chosen) ? '← training' : '', is(k, c.generation) ? '← generation' : ''].filter(Boolean).join(', ');
  const rows = c.candidates.map((k) => [`${k.backend}, ${k.threads} thread${k.threads === 1 ? '' : 's'}`, k.t2iStepMs.toFixed(0), k.promptirStepMs.toFixed(0), k.score.toFixed(0), k.guideMs !== undefined ? k.guideMs.toFixed(0) : '–', mark(k)]);
  for (const f of c.failed ?? []) rows.push([`${f.backend}, ${f.threads} thread${f.threads === 1 ? '' : 's'}`, '–', '–', '–', '–', `could not run: ${f.error}`]);
  const head = ['backend', 'demo T2I step ms', 'demo PromptIR step ms', 'sum', 'guidance image ms', ''];
  return [
    `machine: ${c.machine.cpu}, ${c.machine.cores} cores, ${c.machine.platform}, Node.js ${c.machine.node}; medians of wall time per training step`,
    textTable(head, rows),
    file ? `recorded in ${file}: commands without TDR_BACKEND now use ${c.chosen.backend} at ${c.chosen.threads} thread${c.chosen.threads === 1 ? '' : 's'} on this machine${c.generation ? `; tdr guide and tdr sample ${c.generation.backend} at ${c.generation.threads} thread${c.generation.threads === 1 ? '' : 's'}` : ''}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

if (require.main === module) {
  timeOnce(JSON.parse(process.argv[2]) as ChooseArgs).then(
    (r) => {
      process.stdout.write(JSON.stringify(r) + '\n');
      process.exit(0);
    },
    (e) => {
      process.stderr.write(`${(e as Error).message ?? e}\n`);
      process.exit(1);
    },
  );
}
