/**
 * `tdr bench`: time one train step of the reference U-Net and conv2d kernels on this machine's
 * backend (see lib/jobs/bench_unet.ts). A table by default; `--json` prints ONE line of JSON.
 */
import { z } from 'zod';
import { Command, EXIT, parseOptions, wantsHelp } from '../command';
import * as fs from 'node:fs';
import { BenchResult, runBench } from '../../jobs/bench_unet';
import { benchSample, benchGuidance, GuidanceBench, SampleBench } from '../../jobs/bench_sample';
import { runPeerBench, PeerResult } from '../../jobs/peer';
import { benchPromptIRStep, benchT2IStep, PromptIRStepBench, T2IStepBench } from '../../jobs/bench_train';
import { benchClassical, ClassicalBenchRow } from '../../restore/classical/bench';
import { RestoreBenchRow, formatRestoreBench, parseRestoreBenchSizes, runRestoreBench } from '../../jobs/bench_restore';
import { t2iCheckpoint } from '../../util/paths';
import { UserError } from '../../util/errors';
import { initBackend } from '../../backend';
import { chooseBackend, formatChoice } from '../../jobs/choose_backend';

const Options = z.strictObject({
  json: z.boolean().default(false).describe('print one line of JSON instead of a table'),
  steps: z.coerce.number().int().min(1).max(1000).default(5).describe('timed train steps (median reported)'),
  warmup: z.coerce.number().int().min(0).max(100).default(1).describe('untimed train steps first'),
  sample: z.union([z.literal('none'), z.string().endsWith('.tdrc', { message: "expected a .tdrc checkpoint or 'none'" })]).optional().describe('t2i checkpoint to time sampling with, or none'),
  t2i: z.boolean().default(false).describe('also time a train step of the demo T2I latent UNet (batch 16)'),
  promptir: z.boolean().default(false).describe('also time a train step of the demo PromptIR restorer (batch 8, 64 px), unguided and guided'),
  peer: z.boolean().optional().describe('also run the PyTorch CPU peer at the same thread count and print the ratio'),
  python: z.string().min(1).optional().describe('--peer: the Python interpreter(s) with PyTorch, comma-separated (default /usr/bin/python3)'),
  rounds: z.coerce.number().int().min(1).max(50).optional().describe('--peer: alternate this many rounds of tdr then each PyTorch, report the median ratio'),
  threads: z.coerce.number().int().min(1).max(256).optional().describe('threads for one step: TensorFlow intra-op threads, or the OpenBLAS threads of the native kernels on wasm'),
  backend: z.enum(['tensorflow', 'wasm', 'cpu']).optional().describe('this backend instead of the default choice (TDR_BACKEND)'),
  classical: z.boolean().optional().describe('time the classical references per image instead (DCP + guided filter, non-local means)'),
  restore: z.boolean().optional().describe("time 'tdr restore' on photos of 512² to 12 Mpixel instead (seconds, peak RSS)"),
  guide: z.string().endsWith('.tdrc', { message: 'expected a guidance checkpoint (.tdrc)' }).optional().describe('time one guidance image G from one degraded input with this guidance checkpoint instead'),
  sizes: z.string().min(1).optional().describe('--restore only: comma-separated sizes (512, 1024, 3mp, 12mp or WxH)'),
  'tile-budget': z.coerce.number().int().min(16).optional().describe('--restore only: tile memory budget, MiB'),
  'no-guidance': z.boolean().optional().describe('--restore only: the unguided restorer alone'),
  'choose-backend': z.boolean().optional().describe('time the demo training steps on every backend and thread count, record the fastest for this machine'),
  'dry-run': z.boolean().optional().describe('--choose-backend only: time and print, do not record'),
});

const HELP = `usage: tdr bench [--backend NAME] [--threads N] [--json] [--steps N] [--warmup N] [--t2i] [--promptir]
                 [--sample FILE.tdrc|none] [--peer [--python PY[,PY…]] [--rounds R]]
       tdr bench --classical [--json] [--steps N]
       tdr bench --restore [--json] [--sizes LIST] [--tile-budget MIB] [--no-guidance]
       tdr bench --guide FILE.tdrc [--backend NAME] [--threads N] [--json] [--steps N]
       tdr bench --choose-backend [--json] [--steps N] [--dry-run]

Time one training step of the reference U-Net (15 convs, 32/64/128 channels, batch 8, 64x64,
L1 loss, Adam) and a 3x3 64->64 conv2d forward/backward on [8,64,64,64], on the backend tdr
picks (TDR_BACKEND=tensorflow|wasm|cpu to force one; TDR_THREADS=N intra-op threads
on tensorflow).

options:
  --backend B  tensorflow, wasm or cpu instead of the default choice (TDR_BACKEND, else the first
               that starts of tensorflow, wasm, cpu)
  --threads N  the fastest one-step path at N threads: on tensorflow its intra-op threads
               (default one per core, env TDR_THREADS); on wasm the OpenBLAS threads of each GEMM
               of the native kernels (default 1; tfjs-backend-wasm itself runs one thread in Node,
               and the rest of the step stays on it)
  --json       one line of JSON instead of a table
  --steps N    timed train steps, median reported (default 5)
  --warmup N   untimed train steps first (default 1)
  --t2i        also time a train step of the demo text-to-image model (text encoder + latent
               UNet, Eq. 1 loss, AdamW, EMA; batch 16 of 32x32x4 latents), median of N
  --promptir   also time a train step of the demo PromptIR restorer (forward, L1 loss and
               gradients; batch 8, 64x64), without and with guidance, median of N
  --sample F   also time text-to-image sampling with checkpoint F (default: the shipped
               data/checkpoints/t2i-demo.tdrc when it exists; 'none': skip); target ≤ 10 s per image
  --peer       also time the same U-Net step in PyTorch CPU at the same thread count (--threads,
               else the backend's) and report the ratio project / PyTorch, with the PyTorch version
  --python P   --peer with these interpreters, comma-separated, one after the other (default
               /usr/bin/python3: Debian's python3-torch)
  --rounds R   --peer in R rounds, each the tdr step (--steps) then every interpreter's: the ratio is
               the median of the rounds' ratios, so a machine whose speed drifts over minutes compares
               like with like (default 1)
  --classical  instead: time per image of the classical references of 'tdr eval' (dark channel
               prior + guided filter; non-local means, RGB, template 7, search 21) at 128, 256 and
               512 px, median of N runs (--steps, default 5) after one warm-up; one thread;
               process CPU time and wall-clock time (other load stretches the latter)
  --restore    instead: 'tdr restore' of a noisy photo (σ 25) at 512², 1024², 3 Mpixel and 12 Mpixel
               (--sizes 512,1024,3mp,12mp or WxH,…) with the shipped PromptIR restorers (dim 24), guided
               (G generated from the image by the guidance model the restorer records) and unguided
               ($TDR_RESTORE_GUIDED_CHECKPOINT / _PLAIN_ for others), each size in a fresh process: seconds
               (decode, guidance, tiled restoration, encode), CPU seconds and peak RSS; targets:
               512² guided ≤ 5 s, 12 Mpixel within 2 GiB peak RSS
  --guide F    instead: one guidance image G(E'_txt) from one degraded input (demo: 128²) with the
               guidance checkpoint F, as 'tdr guide' makes it: model loading, the process's first image, and
               the median of N more (--steps, default 5); target ≤ 2 s per image
  --choose-backend
               instead: time one demo text-to-image and one demo PromptIR training step (as --t2i
               --promptir, unguided) on tensorflow at 1 thread and at one per core and on wasm, each
               in a fresh process, median of N (--steps, default 3), and record the fastest (lowest
               sum) for this machine in ~/.cache/tdr/backend-choice.json (env TDR_BACKEND_CHOICE: another
               file); also one guidance image of data/checkpoints/guidance-demo-words-colorpath-haze.tdrc (as --guide),
               whose fastest configuration 'tdr guide' and 'tdr sample' use. Commands without TDR_BACKEND
               then use it and say so on their 'tdr: backend' line; a record of another machine (CPU,
               cores, Node.js) is ignored. --dry-run: print only
  -h, --help   this help

Times are wall-clock medians; 'CPU' is this process's CPU time per step (all threads), which other
processes' load changes much less.`;

const f1 = (v: number): string => v.toFixed(1);

/** "name  value" rows, names padded to one column. */
function textRows(rows: Array<[string, string]>): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

/** The classical timings, one "method size  ms" row per line. */
export function formatClassicalBench(rows: ClassicalBenchRow[]): string {
  const lines = rows.map((r) => [`${r.method} ${r.size}x${r.size}`, `${f1(r.cpuMs)} ms CPU, ${f1(r.ms)} ms wall, median per image (wall runs ${r.runs.map(f1).join(', ')})`] as const);
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

/** The human-readable report: one "name  value" row per line. */
/**
 * peers: one PyTorch run per interpreter of --python, each with ratio = tdr U-Net step / PyTorch's (wall);
 * with --rounds R, `rounds` holds each round's tdr and PyTorch medians and ratio, and the top-level
 * fields are the round with the median ratio (ratio = the median of the rounds').
 */
export type PeerRow = PeerResult & { ratio: number; rounds?: Array<{ tdrMs: number; peerMs: number; ratio: number }> };
export type BenchReport = BenchResult & { sample?: SampleBench; peers?: PeerRow[]; t2i?: T2IStepBench; promptir?: PromptIRStepBench[] };

export function formatBench(r: BenchReport): string {
  const rows: Array<[string, string]> = [
    ['backend', `${r.backend} (${r.backendDetail})`],
    ['tfjs', r.tfjsVersion],
    ['U-Net train step', `${f1(r.unetStepMs)} ms median of ${r.steps} (after ${r.warmup} warm-up; CPU ${f1(r.unetStepCpuMs)} ms)`],
    ['  all steps', r.unetStepsMs.map((v) => f1(v)).join(', ') + ' ms'],
    ['  throughput', `${f1(r.stepGflops)} GFLOP/s (3 x ${r.forwardGflop.toFixed(2)} GFLOP forward, batch ${r.batch}, ${r.size}x${r.size})`],
    ['  final L1 loss', r.finalLoss.toFixed(4)],
  ];
  if (r.conv) {
    const c = r.conv;
    const shape = `x [${c.x.join(',')}] f [${c.filter.join(',')}]`;
    rows.push(
      [`conv2d ${shape}`, `${c.gflop.toFixed(2)} GFLOP each`],
      ['  forward', `${f1(c.forwardMs)} ms  ${f1(c.forwardGflops)} GFLOP/s`],
      ['  backprop filter', `${f1(c.backpropFilterMs)} ms  ${f1(c.backpropFilterGflops)} GFLOP/s`],
      ['  backprop input', `${f1(c.backpropInputMs)} ms  ${f1(c.backpropInputGflops)} GFLOP/s`],
    );
  }
  if (r.t2i) {
    const t = r.t2i;
    rows.push(
      [`T2I train step (${t.preset})`, `${f1(t.stepMs)} ms median of ${t.steps} (after ${t.warmup} warm-up; CPU ${f1(t.stepCpuMs)} ms; batch ${t.batch} of ${t.latent.join('x')} latents, ${(t.trainableParams / 1e6).toFixed(2)} M parameters)`],
      ['  all steps', t.stepsMs.map((v) => f1(v)).join(', ') + ' ms'],
    );
  }
  for (const p of r.promptir ?? []) {
    rows.push([`PromptIR train step, ${p.guidance ? 'guided' : 'unguided'}`, `${f1(p.stepMs)} ms median of ${p.reps} (after 1 warm-up; CPU ${f1(p.stepCpuMs)} ms; forward ${f1(p.forwardMs)} ms; batch ${p.batch}, ${p.size}x${p.size}, ${(p.params / 1e6).toFixed(2)} M parameters)`]);
  }
  for (const p of r.peers ?? []) {
    rows.push(
      [`peer: PyTorch ${p.torchVersion}`, `${f1(p.unetStepMs)} ms median at ${p.threads} thread(s) (CPU ${f1(p.stepCpuMs)} ms; ${p.python})`],
      ['  ratio tdr / peer', `${p.ratio.toFixed(2)} (goal ≤ 1.0)${p.rounds ? `, median of ${p.rounds.length} alternating rounds: ${p.rounds.map((q) => `${q.tdrMs.toFixed(0)}/${q.peerMs.toFixed(0)} ms = ${q.ratio.toFixed(2)}`).join('; ')}` : ''}`],
    );
  }
  if (r.sample) {
    const s = r.sample;
    rows.push(
      [`t2i sample ${s.imageSize}x${s.imageSize}`, `${f1(s.sampleMs / 1000)} s median (${s.steps} DDIM steps, CFG ${s.cfgScale}; target ≤ ${s.targetMs / 1000} s)`],
      ['  all runs', s.samplesMs.map((v) => f1(v / 1000)).join(', ') + ' s'],
    );
  }
  rows.push(
    ['peak RSS', `${f1(r.peakRssMiB)} MiB`],
    ['tensors before/after', `${r.tensorsBefore} / ${r.tensorsAfter} (drift per step ${r.tensorsPerStepDrift})`],
  );
  return textRows(rows);
}

/** The guidance benchmark as rows: load, first image, median per image against the 2 s target. */
export function formatGuidanceBench(g: GuidanceBench, backend: string): string {
  const start = g.fromLayout != null ? `from the words' layout map at strength ${g.fromLayout}, so ${Math.round(g.steps * g.fromLayout)} of ${g.steps} DDIM steps run` : `from noise, ${g.steps} DDIM steps`;
  return textRows([
    ['backend', backend],
    ['guidance', `${g.checkpoint} (${g.imageSize}x${g.imageSize}, ${start}, CFG ${g.cfgScale})`],
    ['load models', `${f1(g.loadMs / 1000)} s`],
    ['first image', `${f1(g.firstMs / 1000)} s (kernels compiled, weights uploaded)`],
    ['per image after', `${f1(g.guideMs / 1000)} s median of ${g.guidesMs.length} (target ≤ ${g.targetMs / 1000} s)`],
    ['  all runs', g.guidesMs.map((v) => f1(v / 1000)).join(', ') + ' s'],
    ['one DDIM step', `${g.step.memoMs.toFixed(0)} ms, ${g.step.memoKernels} kernels (without the sampling memo: ${g.step.plainMs.toFixed(0)} ms, ${g.step.plainKernels} kernels; median of ${g.step.pairs} alternating pairs)`],
  ]);
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'time a reference U-Net train step and conv2d kernels on this machine',
  help: HELP,
  async run(argv: string[]): Promise<number> {
    if (wantsHelp(argv)) {
      process.stdout.write(HELP + '\n');
      return EXIT.ok;
    }
    const { options, positionals } = parseOptions(
      'bench',
      argv,
      {
        json: { type: 'boolean' },
        steps: { type: 'string' },
        warmup: { type: 'string' },
        sample: { type: 'string' },
        peer: { type: 'boolean' },
        rounds: { type: 'string' },
        python: { type: 'string' },
        threads: { type: 'string' },
        backend: { type: 'string' },
        t2i: { type: 'boolean' },
        promptir: { type: 'boolean' },
        classical: { type: 'boolean' },
        restore: { type: 'boolean' },
        guide: { type: 'string' },
        sizes: { type: 'string' },
        'tile-budget': { type: 'string' },
        'no-guidance': { type: 'boolean' },
        'choose-backend': { type: 'boolean' },
        'dry-run': { type: 'boolean' },
      },
      Options,
    );
    if (positionals.length > 0) {
      throw new UserError(`unexpected argument '${positionals[0]}'; see 'tdr bench --help'`);
    }
    if (options['dry-run'] && !options['choose-backend']) throw new UserError('--dry-run applies to --choose-backend only');
    if (options.rounds !== undefined && !options.peer) throw new UserError('--rounds is the number of --peer rounds; add --peer');
    if (options['choose-backend']) {
      const other = (['restore', 'guide', 'classical', 'sample', 'peer', 't2i', 'promptir', 'backend', 'threads'] as const).find((k) => options[k] !== undefined && options[k] !== false);
      if (other) throw new UserError(`--choose-backend times every backend and thread count itself; drop --${other}`);
      const { choice, file } = chooseBackend({
        steps: argv.some((a) => /^--steps(=|$)/.test(a)) ? options.steps : 3,
        write: !options['dry-run'],
        onCandidate: (c) => {
          if (!options.json) process.stderr.write(`tdr bench: ${c.backend}, ${c.threads} thread(s): ${'error' in c ? `could not run: ${c.error}` : `T2I ${c.t2iStepMs.toFixed(0)} ms, PromptIR ${c.promptirStepMs.toFixed(0)} ms${c.guideMs !== undefined ? `, guidance image ${c.guideMs.toFixed(0)} ms` : ''}`}\n`);
        },
      });
      process.stdout.write((options.json ? JSON.stringify({ ...choice, file }) : formatChoice(choice, file)) + '\n');
      return EXIT.ok;
    }
    if (options.guide !== undefined) {
      const other = (['restore', 'classical', 'sample', 'peer', 't2i', 'promptir', 'python'] as const).find((k) => options[k] !== undefined && options[k] !== false);
      if (other) throw new UserError(`--guide times the guidance of one image only; drop --${other}`);
      if (!fs.existsSync(options.guide)) throw new UserError(`--guide ${options.guide}: no such checkpoint`);
      // as `tdr guide` resolves it: this machine's generation choice unless --backend / --threads / TDR_BACKEND say otherwise
      const backend = await initBackend({ backend: options.backend, threads: options.threads, purpose: 'generate' });
      const g = await benchGuidance(options.guide, { runs: options.steps });
      process.stdout.write((options.json ? JSON.stringify({ backend: backend.detail, chosenBy: backend.chosenBy, guide: g }) : formatGuidanceBench(g, backend.detail)) + '\n');
      return EXIT.ok;
    }
    const restoreOnly = (['sizes', 'tile-budget', 'no-guidance'] as const).find((k) => options[k] !== undefined);
    if (restoreOnly && !options.restore) throw new UserError(`--${restoreOnly} applies to --restore only`);
    if (options.restore) {
      if (options.classical || options.sample || options.peer) throw new UserError('--restore times tdr restore only; drop --classical/--sample/--peer');
      const sizes = options.sizes !== undefined ? parseRestoreBenchSizes(options.sizes) : undefined;
      const rows: RestoreBenchRow[] = [];
      await runRestoreBench({
        sizes,
        guided: options['no-guidance'] ? [false] : [true, false],
        budgetMiB: options['tile-budget'],
        onRow: (r) => {
          rows.push(r);
          if (!options.json) process.stderr.write(`tdr bench: ${r.label}${r.guided ? ' guided' : ''}: ${r.totalS.toFixed(1)} s, ${r.peakRssMiB.toFixed(0)} MiB\n`);
        },
      });
      process.stdout.write((options.json ? JSON.stringify({ restore: rows }) : formatRestoreBench(rows)) + '\n');
      return EXIT.ok;
    }
    if (options.classical) {
      if (options.sample || options.peer || options.t2i || options.promptir) {
        throw new UserError('--classical times the classical references only; drop --sample/--peer/--t2i/--promptir');
      }
      const rows = benchClassical({ reps: options.steps });
      process.stdout.write((options.json ? JSON.stringify({ classical: rows }) : formatClassicalBench(rows)) + '\n');
      return EXIT.ok;
    }
    if (options.python && !options.peer) throw new UserError('--python names the interpreters of --peer; add --peer');
    // the first initBackend call decides (backend and threads are fixed once per process)
    await initBackend({ backend: options.backend, threads: options.threads });
    const ckpt = options.sample === 'none' ? undefined : (options.sample ?? (fs.existsSync(t2iCheckpoint()) ? t2iCheckpoint() : undefined));
    if (ckpt && options.sample && !fs.existsSync(ckpt)) throw new UserError(`${ckpt}: no such checkpoint`);
    const r: BenchReport = await runBench({ steps: options.steps, warmup: options.warmup });
    if (options.t2i) r.t2i = await benchT2IStep({ steps: options.steps, warmup: options.warmup });
    if (options.promptir) r.promptir = await benchPromptIRStep({ reps: options.steps });
    if (options.peer) {
      const pythons = options.python ? options.python.split(',').map((p) => p.trim()).filter(Boolean) : [undefined];
      const peer = (python: string | undefined) => runPeerBench({ threads: options.threads ?? r.threads, steps: options.steps, warmup: options.warmup, python });
      // alternate: tdr's step, then each PyTorch's, R times (round 1's tdr step is the one above); each peer's row
      // is the round with the median ratio
      const rounds = options.rounds ?? 1;
      const perRound: Array<{ tdrMs: number; peers: PeerResult[] }> = [];
      for (let i = 0; i < rounds; i++) {
        const tdrMs = i === 0 ? r.unetStepMs : (await runBench({ steps: options.steps, warmup: options.warmup })).unetStepMs;
        perRound.push({ tdrMs, peers: pythons.map(peer) });
      }
      r.peers = pythons.map((_, k) => {
        const rs = perRound.map((q) => ({ tdrMs: q.tdrMs, peerMs: q.peers[k].unetStepMs, ratio: q.tdrMs / q.peers[k].unetStepMs }));
        const mid = [...rs.keys()].sort((a, b) => rs[a].ratio - rs[b].ratio)[Math.floor(rs.length / 2)];
        return { ...perRound[mid].peers[k], ratio: rs[mid].ratio, ...(rounds > 1 ? { rounds: rs } : {}) };
      });
    }
    if (ckpt) r.sample = await benchSample(ckpt);
    process.stdout.write((options.json ? JSON.stringify(r) : formatBench(r)) + '\n');
    return EXIT.ok;
  },
};
