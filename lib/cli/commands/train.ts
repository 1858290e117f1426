import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { Command, parseOptions, UserError } from '../command';
import { PRESET_NAMES, t2iPreset, parseT2IConfig, T2IConfig } from '../../config/presets';
import { initBackend } from '../../backend';
import { trainAutoencoder, evaluateAutoencoder } from '../../train/stages/autoencoder';
import { projectRoot } from '../../util/fsx';

const STAGES = ['ae', 't2i'] as const;

const HELP = `usage: tdr train <stage> [--preset ci|demo|paper] [--config FILE.json] [--runs DIR] [--max-steps N]

Train one stage with the shared loop; resumes from the last checkpoint in the run folder.
Ctrl-C finishes the current step, writes a checkpoint and exits (130); run the same command to go on.

stages:
  ae     the autoencoder of the text-to-image model (stage 0a)
  t2i    the whole text-to-image model: autoencoder (if not done), then text encoder + UNet (stage 0)

options:
  --preset NAME    ${PRESET_NAMES.join(' | ')} (default demo)
  --config FILE    a JSON config (same fields as a preset) instead of --preset
  --runs DIR       runs folder (default $TDR_RUNS or outputs/runs); keep long runs outside the checkout
  --max-steps N    stop after N steps in this call (the run stays resumable)`;

const Options = z.strictObject({
  preset: z.enum(PRESET_NAMES as [string, ...string[]]).optional(),
  config: z.string().optional(),
  runs: z.string().optional(),
  'max-steps': z.coerce.number().int().positive().optional(),
});

/** The run folder of a stage: <runs>/<preset>/<stage>. */
export function runDirOf(runs: string, cfg: T2IConfig, stage: string): string {
  return path.join(runs, cfg.preset, stage);
}

export function defaultRunsDir(): string {
  return process.env.TDR_RUNS || path.join(projectRoot(), 'outputs', 'runs');
}

export function loadConfigArg(preset: string | undefined, config: string | undefined): T2IConfig {
  if (preset && config) throw new UserError('give --preset or --config, not both');
  if (!config) return t2iPreset(preset ?? 'demo');
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(config, 'utf8'));
  } catch (e) {
    throw new UserError(`${config}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON (${(e as Error).message})`}`);
  }
  return parseT2IConfig(raw, config);
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a stage (ae, t2i) with a preset; resumable',
  help: HELP,
  async run(argv) {
    const { options, positionals } = parseOptions('train', argv, { preset: { type: 'string' }, config: { type: 'string' }, runs: { type: 'string' }, 'max-steps': { type: 'string' } }, Options);
    const stage = positionals[0];
    if (!stage || !(STAGES as readonly string[]).includes(stage)) throw new UserError(`stage must be one of ${STAGES.join(', ')}, got ${stage ? `'${stage}'` : 'nothing'}`);
    if (positionals.length > 1) throw new UserError(`unexpected argument '${positionals[1]}'`);
    const cfg = loadConfigArg(options.preset, options.config);
    const runs = options.runs ?? defaultRunsDir();
    await initBackend();
    const aeDir = runDirOf(runs, cfg, 'ae');
    const ae = await trainAutoencoder(cfg, aeDir, { maxStepsThisCall: options['max-steps'] });
    if (ae.result.interrupted) {
      process.stderr.write(`stopped at step ${ae.result.step}/${cfg.aeTrain.steps}; checkpoint in ${aeDir} — run the same command to resume\n`);
      return ae.result.step < cfg.aeTrain.steps && !options['max-steps'] ? 130 : 0;
    }
    const ev = await evaluateAutoencoder(ae.ae, cfg);
    process.stdout.write(`autoencoder: reconstruction PSNR on ${ev.n} validation photos (${cfg.imageSize}px centre crops): clean ${ev.psnrClean.toFixed(2)} dB, noisy σ25 ${ev.psnrNoisy.toFixed(2)} dB\n`);
    if (stage === 'ae') return 0;
    throw new UserError('stage t2i: the text-encoder + UNet stage is not wired yet');
  },
};
