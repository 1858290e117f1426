import * as path from 'node:path';
import * as fs from 'node:fs';
import { z } from 'zod';
import { Command, parseOptions, readJsonFile } from '../command';
import { PRESET_NAMES, t2iPreset, parseT2IConfig, T2IConfig } from '../../t2i/presets';
import * as os from 'node:os';
import { initBackend } from '../../backend';
import { defaultWorkers } from '../../train/parallel';
import { trainAutoencoder, evaluateAutoencoder } from '../../t2i/autoencoder';
import { trainTextToImage } from '../../t2i/train';
import { trainRestoreCommandRun, TRAIN_RESTORE_HELP } from './restore';
import { trainGuidanceCommandRun, TRAIN_GUIDANCE_HELP } from './guide';
import { shippedCheckpoint, defaultRunsDir } from '../../util/paths';
import { readLog, writeLogBeside } from '../../train/loop';
import { UserError } from '../../util/errors';

const STAGES = ['ae', 't2i', 'i2t', 'clean', 'restore'] as const;

const HELP = `usage: tdr train <stage> [--preset ci|demo|paper] [--config FILE.json] [--runs DIR] [--max-steps N]

Train one stage with the shared loop; resumes from the last checkpoint in the run folder.
Ctrl-C finishes the current step, writes a checkpoint and exits (130); run the same command to go on.

stages:
  ae       the autoencoder of the text-to-image model (stage 0a)
  t2i      the whole text-to-image model: autoencoder (if not done), then text encoder + UNet (stage 0)
  i2t      M_i2t, image → pseudo-words, on a trained t2i model (stage 1): tdr train i2t --help
  clean    M_clean, textual degradation removal (stage 2): tdr train clean --help
  restore  a restoration backbone with or without guidance (stage 3): tdr train restore --help

options:
  --preset NAME    ${PRESET_NAMES.join(' | ')} (default demo)
  --config FILE    a JSON config (same fields as a preset) instead of --preset
  --runs DIR       runs folder (default $TDR_RUNS or outputs/runs); keep long runs outside the checkout
  --max-steps N    stop after N steps in this call (the run stays resumable)
  --out FILE.tdrc  where the trained t2i model goes (default: data/checkpoints/t2i-demo.tdrc for demo,
                   else <runs>/<preset>/t2i-<preset>.tdrc)
  --ae-from FILE   t2i only: keep the autoencoder of this text-to-image checkpoint (same AE settings) and
                   train only the text encoder + UNet (+ image-to-words mapper); skips stage 0a
  --stop-at N      t2i only: a snapshot of the schedule — the UNet stage stops at its step N (the learning
                   rate still follows the config's unetTrain.steps) and the model at that step goes to --out

environment: TDR_WORKERS=N data-parallel worker threads (default: one per core on wasm), TDR_RUNS, TDR_BACKEND`;

const Options = z.strictObject({
  preset: z.enum(PRESET_NAMES as [string, ...string[]]).optional(),
  config: z.string().optional(),
  runs: z.string().optional(),
  'max-steps': z.coerce.number().int().positive().optional(),
  out: z.string().endsWith('.tdrc', { message: 'expected a file name ending in .tdrc' }).optional(),
  'ae-from': z.string().endsWith('.tdrc', { message: 'expected a text-to-image checkpoint (.tdrc)' }).optional(),
  'stop-at': z.coerce.number().int().positive().optional(),
});

export function loadConfigArg(preset: string | undefined, config: string | undefined): T2IConfig {
  if (preset && config) throw new UserError('give --preset or --config, not both');
  if (!config) return t2iPreset(preset ?? 'demo');
  return parseT2IConfig(readJsonFile(config), config);
}

function stopped(step: number, total: number, dir: string, maxSteps?: number): number {
  process.stderr.write(`stopped at step ${step}/${total}; checkpoint in ${dir} — run the same command to resume\n`);
  return maxSteps ? 0 : 130;
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a stage (ae, t2i, i2t, clean, restore) with a preset; resumable',
  help: HELP,
  helpFor: (argv) => (argv[0] === 'restore' ? TRAIN_RESTORE_HELP : argv[0] === 'i2t' || argv[0] === 'clean' ? TRAIN_GUIDANCE_HELP : HELP),
  async run(argv) {
    if (argv[0] === 'restore') return trainRestoreCommandRun(argv.slice(1));
    if (argv[0] === 'i2t' || argv[0] === 'clean') return trainGuidanceCommandRun(argv[0], argv.slice(1));
    const { options, positionals } = parseOptions('train', argv, { preset: { type: 'string' }, config: { type: 'string' }, runs: { type: 'string' }, 'max-steps': { type: 'string' }, out: { type: 'string' }, 'ae-from': { type: 'string' }, 'stop-at': { type: 'string' } }, Options);
    const stage = positionals[0];
    if (!stage || !(STAGES as readonly string[]).includes(stage)) throw new UserError(`stage must be one of ${STAGES.join(', ')}, got ${stage ? `'${stage}'` : 'nothing'}`);
    if (positionals.length > 1) throw new UserError(`unexpected argument '${positionals[1]}'`);
    const cfg = loadConfigArg(options.preset, options.config);
    if (options['ae-from'] && stage !== 't2i') throw new UserError(`--ae-from is an option of 'tdr train t2i', not of '${stage}'`);
    const stopAt = options['stop-at'];
    if (stopAt !== undefined && stage !== 't2i') throw new UserError(`--stop-at is an option of 'tdr train t2i', not of '${stage}'`);
    if (stopAt !== undefined && stopAt > cfg.unetTrain.steps) throw new UserError(`--stop-at ${stopAt}: past the end of the schedule (unetTrain.steps ${cfg.unetTrain.steps})`);
    if (options['ae-from'] && !fs.existsSync(options['ae-from'])) throw new UserError(`--ae-from ${options['ae-from']}: no such file`);
    const runs = options.runs ?? defaultRunsDir();
    const backend = await initBackend();
    const workers = defaultWorkers(backend.name, os.cpus().length);
    if (workers > 1) process.stderr.write(`tdr: data-parallel training on ${workers} workers (TDR_WORKERS to change)\n`);
    const runDir = path.join(runs, cfg.preset);
    if (stage === 'ae') {
      const ae = await trainAutoencoder(cfg, path.join(runDir, 'ae'), { maxStepsThisCall: options['max-steps'], workers });
      if (ae.result.interrupted) return stopped(ae.result.step, cfg.aeTrain.steps, path.join(runDir, 'ae'), options['max-steps']);
      const ev = await evaluateAutoencoder(ae.ae, cfg);
      process.stdout.write(`autoencoder: reconstruction PSNR on ${ev.n} validation photos (${cfg.imageSize}px centre crops): clean ${ev.psnrClean.toFixed(2)} dB, noisy σ25 ${ev.psnrNoisy.toFixed(2)} dB\n`);
      ae.params.dispose();
      return 0;
    }
    const r = await trainTextToImage(cfg, runDir, { maxStepsThisCall: options['max-steps'], workers, aeFrom: options['ae-from'], stopAt });
    if (!r.model && r.layout) return stopped(r.layout.step, cfg.words!.layoutSteps, path.join(runDir, 't2i-layout'), options['max-steps']); // in the words' layout warm-up
    if (!r.model) return stopped(r.ae.step, cfg.aeTrain.steps, path.join(runDir, 'ae'), options['max-steps']);
    if (r.t2i!.interrupted) {
      r.model.dispose();
      return stopped(r.t2i!.step, stopAt ?? cfg.unetTrain.steps, path.join(runDir, 't2i'), options['max-steps']);
    }
    const out = options.out ?? (cfg.preset === 'demo' ? shippedCheckpoint('t2i-demo') : path.join(runDir, `t2i-${cfg.preset}.tdrc`));
    const src = options.config ? `--config ${options.config}` : `--preset ${cfg.preset}`;
    const rebuild = `tdr train t2i ${src}${options['ae-from'] ? ` --ae-from ${options['ae-from']}` : ''}${stopAt !== undefined ? ` --stop-at ${stopAt}` : ''}`;
    r.model.save(out, { float16: true, meta: { rebuild, steps: r.t2i!.step, scheduleSteps: cfg.unetTrain.steps, ...(r.aeFrom ? { aeFrom: r.aeFrom } : {}) } });
    // the loss logs of the stages beside the checkpoint, <out>.log.jsonl (notebook 02 plots the shipped one):
    // autoencoder (unless kept with --ae-from), the words' layout warm-up (words.layoutSteps), text encoder + UNet
    const lines = (['ae', 't2i-layout', 't2i'] as const).flatMap((s) => (fs.existsSync(path.join(runDir, s)) ? readLog(path.join(runDir, s)).map((x) => ({ stage: s, ...x })) : []));
    writeLogBeside(out, lines);
    process.stdout.write(`text-to-image model (EMA weights, float16) → ${out}\n`);
    r.model.dispose();
    return 0;
  },
};
