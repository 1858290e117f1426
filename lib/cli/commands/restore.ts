/**
 * `tdr restore` (restore degraded images — one file or a folder, any size, tiled within a memory
 * budget — with a trained restorer, guided or not) and the body of
 * `tdr train restore` (`trainRestoreCommandRun`, wired by the lead into `tdr train`).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { Command, parseOptions, readJsonFile } from '../command';
import { initBackend } from '../../backend';
import { restoreCheckpoint } from '../../jobs/method';
import { GUIDANCE_SOURCES, guidanceSourceByName, guidanceSourceNames, guidanceCheckpointForRestorer } from '../../jobs/sources';
import { readImage, writeImage, formatFromPath } from '../../data/io';
import { IMAGE_EXTENSIONS, forEachFile, isDirectory, listImages, outputPathFor, prepareOutputFolder, refuseOverwrite } from '../files';
import { DEFAULT_TILE_BUDGET_MIB, DEFAULT_WHOLE_IMAGE_BUDGET_MIB, GUIDANCE_MAX_PIXELS, planTiles, restoreTiledAsync } from '../../restore/tiled';
import { Progress } from '../../train/progress';
import { defaultRunsDir, shippedCheckpoint } from '../../util/paths';
import { BACKBONE_TYPES, RESTORE_PRESET_NAMES, TASK_SETS, restorePreset, restorePresetFrom, parseRestorePresetFile, restoreRunName } from '../../restore/config';
import { defaultWorkers } from '../../train/parallel';
import { readLog, readValLog, readLogBeside, writeLogBeside } from '../../train/loop';
import { portablePath } from '../../util/paths';
import { loadRestorer, saveRestorer, trainRestorer, guidanceModelMismatch } from '../../restore/train';
import { GuidanceSource, guidanceKey, noGuidance } from '../../restore/source';
import { UserError } from '../../util/errors';
import { readCheckpointMeta } from '../../util/checkpoint';

/** The guidance source the guided commands use by default: the text-side pipeline. */
export const DEFAULT_GUIDANCE = 'text';

/** Resolve `--guidance NAME` (or the default) to a source of a GUIDED model ('none' is --no-guidance). */
export function pickGuidance(name: string | undefined, words?: number, checkpoint?: string): GuidanceSource {
  const want = name ?? DEFAULT_GUIDANCE;
  if (want === 'none') throw new UserError("--guidance none: a guided model needs guidance; use --no-guidance for the unguided model");
  if (checkpoint !== undefined) {
    if (GUIDANCE_SOURCES.get(want)?.dependsOnN === false) throw new UserError(`--guidance-checkpoint: the guidance source '${want}' uses no guidance model`);
    if (!fs.existsSync(checkpoint)) throw new UserError(`--guidance-checkpoint ${checkpoint}: no such file`);
  }
  return guidanceSourceByName(want, { words, checkpoint }).source;
}

const RESTORE_HELP = `usage: tdr restore <degraded image | folder> --backbone promptir|nafnet|restormer --out FILE | FOLDER
                   [--no-guidance] [--seed N] [--checkpoint FILE.tdrc] [--guidance NAME] [--guidance-checkpoint FILE]
                   [--guidance-image FILE] [--tile N] [--tile-budget MIB]

Restore degraded images of any size with a trained restorer (paper Sec. 3.3). A guided model needs a
guidance image G: generated once per image from the whole input by the guidance source (default
'${DEFAULT_GUIDANCE}', the text-side pipeline, cached by it), or given with --guidance-image.
An image larger than the tile budget is restored in overlapping tiles blended without seams (every
tile matched against the whole G), with a progress bar on stderr; the output has the input's size.
A folder is restored file by file into the --out folder (same names; files that are not images are
skipped; a bad file is reported in one line and the others go on; exit ≠ 0 if any failed). An input
file is never overwritten.

options:
  --backbone NAME        ${BACKBONE_TYPES.join(' | ')} (must match the checkpoint)
  --no-guidance          the unguided baseline
  --seed N               seed of the guidance generation (default: the guidance checkpoint's, 42)
  --checkpoint FILE      a restorer checkpoint (default $TDR_RESTORE_GUIDED_CHECKPOINT / $TDR_RESTORE_PLAIN_CHECKPOINT, else
                         data/checkpoints/restore-<backbone>-all-in-one-<guided|plain>-demo-wide.tdrc)
  --guidance NAME        guidance source: ${guidanceSourceNames().filter((n) => n !== 'none').join(', ')} (default ${DEFAULT_GUIDANCE})
  --guidance-checkpoint FILE
                         the guidance model of the text sources (default: $TDR_GUIDANCE_CHECKPOINT if set, else the
                         one the restorer was trained with if it is there unchanged, else data/checkpoints/guidance-demo.tdrc)
  --guidance-image FILE  use this image as G (reduced to ${Math.sqrt(GUIDANCE_MAX_PIXELS)}x${Math.sqrt(GUIDANCE_MAX_PIXELS)} pixels at most)
  --tile N               tile side in pixels (rounded to the network's multiple); default: the largest that fits --tile-budget
  --tile-budget MIB      memory for one tile's pass, MiB (default ${DEFAULT_TILE_BUDGET_MIB}, and images predicted
                         to fit ${DEFAULT_WHOLE_IMAGE_BUDGET_MIB} go in one pass); images that fit it are restored in one pass
  --out FILE | FOLDER    .png, .jpg, .webp or .tif; a folder when the input is one`;

const RestoreOptions = z.strictObject({
  backbone: z.enum(BACKBONE_TYPES),
  'no-guidance': z.boolean().optional(),
  seed: z.coerce.number().int().min(0).max(2 ** 32 - 1).optional(),
  checkpoint: z.string().min(1).optional(),
  guidance: z.string().min(1).optional(),
  'guidance-checkpoint': z.string().endsWith('.tdrc', { message: 'expected a guidance checkpoint (.tdrc)' }).optional(),
  'guidance-image': z.string().min(1).optional(),
  tile: z.coerce.number().int().min(8).max(16384).optional(),
  'tile-budget': z.coerce.number().int().min(16).optional(),
  out: z.string().min(1),
});

export const restoreCommand: Command = {
  name: 'restore',
  summary: 'restore degraded images (any size, tiled; a file or a folder) with a trained restorer',
  help: RESTORE_HELP,
  async run(argv) {
    const { options, positionals } = parseOptions(
      'restore',
      argv,
      {
        backbone: { type: 'string' },
        'no-guidance': { type: 'boolean' },
        seed: { type: 'string' },
        checkpoint: { type: 'string' },
        guidance: { type: 'string' },
        'guidance-checkpoint': { type: 'string' },
        'guidance-image': { type: 'string' },
        tile: { type: 'string' },
        'tile-budget': { type: 'string' },
        out: { type: 'string' },
      },
      RestoreOptions.partial({ backbone: true, out: true }),
    );
    if (options.backbone === undefined) throw new UserError(`--backbone is required (${BACKBONE_TYPES.join(', ')}); see 'tdr restore --help'`);
    if (options.out === undefined) throw new UserError("--out is required (a file, or a folder for a folder input); see 'tdr restore --help'");
    if (positionals.length === 0) throw new UserError("missing the degraded image (or folder); see 'tdr restore --help'");
    if (positionals.length > 1) throw new UserError(`unexpected argument '${positionals[1]}'`);
    const backbone = options.backbone;
    const out = options.out;
    const guided = !options['no-guidance'];
    if (!guided && (options.guidance || options['guidance-image'] || options['guidance-checkpoint'])) throw new UserError('--no-guidance takes no --guidance / --guidance-checkpoint / --guidance-image');
    if (options['guidance-image'] && options['guidance-checkpoint']) throw new UserError('give --guidance-checkpoint or --guidance-image, not both');
    if (options.guidance && options['guidance-image']) throw new UserError('give --guidance or --guidance-image, not both');
    if (options.seed !== undefined && (!guided || options['guidance-image'])) throw new UserError('--seed sets the guidance generation; it does not apply with --no-guidance or --guidance-image');
    const input = positionals[0];
    const folder = isDirectory(input);
    let jobs: Array<{ file: string; out: string }>;
    if (folder) {
      const { images, skipped } = listImages(input);
      prepareOutputFolder(input, out);
      if (skipped.length) process.stderr.write(`tdr restore: skipping ${skipped.length} entr${skipped.length === 1 ? 'y' : 'ies'} that are not images (${skipped.slice(0, 3).map((f) => path.basename(f)).join(', ')}${skipped.length > 3 ? ', …' : ''})\n`);
      if (!images.length) throw new UserError(`${input}: no image files (${IMAGE_EXTENSIONS.join(' ')}) in the folder`);
      jobs = images.map((f) => ({ file: f, out: outputPathFor(f, out) }));
    } else {
      const target = isDirectory(out) ? outputPathFor(input, out) : out;
      formatFromPath(target); // bad extension → error before any work
      refuseOverwrite(target, [input]);
      jobs = [{ file: input, out: target }];
    }
    if (options['guidance-image']) for (const j of jobs) refuseOverwrite(j.out, [options['guidance-image']], 'the output');
    const g0 = options['guidance-image'] ? await readImage(options['guidance-image']) : undefined;
    const ckpt = options.checkpoint ?? restoreCheckpoint(backbone, guided);
    if (!fs.existsSync(ckpt)) throw new UserError(`${ckpt}: no such checkpoint (train one with 'tdr train restore --backbone ${backbone}${guided ? '' : ' --no-guidance'} --preset demo')`);
    // G from the guidance model the restorer was trained with, unless told otherwise
    const source = guided && !g0 ? pickGuidance(options.guidance, undefined, guidanceCheckpointForRestorer(readCheckpointMeta(ckpt), options.guidance ?? DEFAULT_GUIDANCE, options['guidance-checkpoint'])) : undefined;
    // the stand-ins (clean-oracle, clean-thumb-<k>) are made from the clean image
    if (source?.standIn) throw new UserError(`guidance source '${source.name}' needs the clean image, which tdr restore does not have; use --guidance-image or the text source`);
    await initBackend({ quiet: true });
    const { params, net, meta } = loadRestorer(ckpt, { backbone, guidance: guided });
    try {
      const note = guidanceModelMismatch(ckpt, meta, source);
      if (note) process.stderr.write(`${note}\n`);
      const tileOpts = { tile: options.tile, budgetMiB: options['tile-budget'] };
      const one = async (file: string, target: string) => {
        const x = await readImage(file); // missing / not an image / too large → ImageError (exit 2)
        // refuse a size the backend cannot hold before generating any guidance
        const plan = planTiles(net, x.height, x.width, { ...tileOpts, guidance: guided ? [g0?.height ?? 128, g0?.width ?? 128] : undefined });
        const t0 = Date.now();
        let gimg = g0;
        if (guided && !gimg) {
          const digest = createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 16);
          gimg = await source!.get(x, guidanceKey('input', digest, `seed${options.seed ?? 'default'}`), { seed: options.seed });
        }
        const t1 = Date.now();
        const passes = plan.count > 1 ? 2 * plan.count : 1;
        const bar = passes > 1 ? new Progress(`restore ${path.basename(file)} (${plan.count} tiles of ${plan.tileHeight}x${plan.tileWidth}, 2 passes)`, passes) : undefined;
        const y = await restoreTiledAsync(net, x, gimg, { ...tileOpts, onProgress: (d) => bar?.update(d) });
        const t2 = Date.now();
        await writeImage(target, y);
        const secs = (a: number, b: number) => ((b - a) / 1000).toFixed(1);
        const how = guided ? ` + guidance (${g0 ? 'given image' : source!.name}${g0 ? '' : `, ${secs(t0, t1)} s`})` : '';
        const tiles = plan.count > 1 ? `, ${plan.count} tiles of ${plan.tileHeight}x${plan.tileWidth}` : '';
        process.stdout.write(`${target}: ${y.width}x${y.height}, ${backbone}${how}, restored in ${secs(t1, t2)} s${tiles}\n`);
      };
      if (!folder) {
        await one(jobs[0].file, jobs[0].out);
        return 0;
      }
      return await forEachFile('restore', jobs.map((j) => j.file), async (f, i) => one(f, jobs[i].out));
    } finally {
      params.dispose();
    }
  },
};

export const TRAIN_RESTORE_HELP = `usage: tdr train restore --backbone promptir|nafnet|restormer [--no-guidance] [--tasks SET] [--preset ci|demo|paper | --config FILE]
                         [--guidance NAME] [--guidance-checkpoint FILE] [--matcher-encoder-lr LR] [--runs DIR] [--max-steps N]
                         [--stop-at N] [--init-from FILE.tdrc] [--out FILE.tdrc]

Train a restorer (stage 3: L1 Eq. 5, AdamW, cosine schedule, matcher at ref_lr and frozen for
param_fix_iterations) with the shared loop; resumable. A guided run first generates (or reloads) the
guidance of every training photo × task into <run>/guidance.tdrc.

options:
  --backbone NAME   ${BACKBONE_TYPES.join(' | ')}
  --no-guidance     the unguided baseline (same data, steps and seed)
  --tasks SET       ${TASK_SETS.join(' | ')} (default all-in-one)
  --preset NAME     ${RESTORE_PRESET_NAMES.join(' | ')} (default demo)
  --config FILE     a restore preset in a JSON file instead of --preset (the fields of a preset under a name of
                    its own, e.g. data/configs/restore-demo-long.json; the run and checkpoint names end with it)
  --guidance NAME   guidance source (default '${DEFAULT_GUIDANCE}'; 'clean-oracle', 'clean-thumb-<k>' are stand-ins made from the clean image, never the paper's guidance)
  --guidance-checkpoint FILE
                    the guidance model of the text sources (default $TDR_GUIDANCE_CHECKPOINT, else
                    data/checkpoints/guidance-demo.tdrc); the restorer records it and its sha256
  --matcher-encoder-lr LR
                    peak LR of the matcher's shared encoder alone (default: the preset's refLr); 0 keeps it at its
                    random init. The run (and checkpoint) name gets '-enclr<LR>'. Not in the official code: with L1
                    only, the demo run's encoder collapsed (cosine ≈ 1 at every position; notebook 06)
  --runs DIR        runs folder (default $TDR_RUNS or outputs/runs)
  --max-steps N     stop after N steps in this call (the run stays resumable)
  --stop-at N       a snapshot of the schedule: training ends at its step N (the learning rate still follows
                    train.steps) and the model is the best validation checkpoint up to N; a run already past N
                    gives it when it validated at N and its best checkpoint is not later
  --init-from FILE  warm start: a new run (named with '-warm') begins at the step of this trained restorer (same
                    configuration and guidance model) with its weights and fresh optimizer moments, the learning
                    rate ramping up over 100 steps; to continue a schedule whose run folder is gone. The model
                    records the file
  --out FILE        where the trained model goes (default: data/checkpoints/<run>.tdrc for demo with the real
                    guidance or none, else <runs>/<run>/<run>.tdrc)

environment: TDR_WORKERS=N data-parallel worker threads (default: one per core on wasm)`;

const TrainOptions = z.strictObject({
  backbone: z.enum(BACKBONE_TYPES),
  'no-guidance': z.boolean().optional(),
  tasks: z.enum(TASK_SETS).default('all-in-one'),
  preset: z.enum(RESTORE_PRESET_NAMES as [string, ...string[]]).optional(),
  config: z.string().min(1).optional(),
  guidance: z.string().min(1).optional(),
  'guidance-checkpoint': z.string().endsWith('.tdrc', { message: 'expected a guidance checkpoint (.tdrc)' }).optional(),
  'matcher-encoder-lr': z.coerce.number().min(0).finite().optional(),
  runs: z.string().min(1).optional(),
  'max-steps': z.coerce.number().int().positive().optional(),
  'stop-at': z.coerce.number().int().positive().optional(),
  'init-from': z.string().endsWith('.tdrc', { message: 'expected a trained restorer (.tdrc)' }).optional(),
  out: z.string().endsWith('.tdrc', { message: 'expected a file name ending in .tdrc' }).optional(),
});

/** `tdr train restore …`: argv after the word 'restore' (a leading 'restore' is tolerated). Returns the exit code. */
export async function trainRestoreCommandRun(argvIn: string[]): Promise<number> {
  const argv = argvIn[0] === 'restore' ? argvIn.slice(1) : argvIn;
  const { options, positionals } = parseOptions(
    'train',
    argv,
    {
      backbone: { type: 'string' }, 'no-guidance': { type: 'boolean' }, tasks: { type: 'string' }, preset: { type: 'string' }, config: { type: 'string' }, guidance: { type: 'string' },
      'guidance-checkpoint': { type: 'string' }, 'matcher-encoder-lr': { type: 'string' }, runs: { type: 'string' }, 'max-steps': { type: 'string' }, 'stop-at': { type: 'string' }, 'init-from': { type: 'string' }, out: { type: 'string' },
    },
    TrainOptions.partial({ backbone: true }),
  );
  if (positionals.length) throw new UserError(`unexpected argument '${positionals[0]}'`);
  if (options.backbone === undefined) throw new UserError(`--backbone is required (${BACKBONE_TYPES.join(', ')}); e.g. 'tdr train restore --backbone promptir --preset ${options.preset}'`);
  const guided = !options['no-guidance'];
  if (!guided && options.guidance) throw new UserError('--no-guidance takes no --guidance');
  if (!guided && options['guidance-checkpoint']) throw new UserError('--no-guidance takes no --guidance-checkpoint');
  if (!guided && options['matcher-encoder-lr'] !== undefined) throw new UserError('--no-guidance has no matcher (--matcher-encoder-lr)');
  const backbone = options.backbone;
  if (options.preset && options.config) throw new UserError('give --preset or --config, not both');
  const choice = { backbone: options.backbone, guidance: guided, tasks: options.tasks };
  const file = options.config ? parseRestorePresetFile(readJsonFile(options.config), options.config) : undefined;
  const cfg = file ? restorePresetFrom(file.preset, file, choice, options.config!) : restorePreset(options.preset ?? 'demo', choice);
  if (options['matcher-encoder-lr'] !== undefined) cfg.matcherEncoderLr = options['matcher-encoder-lr'];
  const source = guided ? pickGuidance(options.guidance, undefined, options['guidance-checkpoint']) : noGuidance;
  if (source.standIn) process.stderr.write(`tdr: ${source.standIn}\n`);
  const backend = await initBackend();
  const workers = defaultWorkers(backend.name, os.cpus().length);
  if (workers > 1) process.stderr.write(`tdr: data-parallel training on ${workers} workers (TDR_WORKERS to change)\n`);
  // a warm-started run has a folder of its own ('-warm'), so that the legs of one rebuild command, both in
  // the default runs folder, do not meet (the first leg's run is not warm-started and would be refused)
  const name = restoreRunName(cfg, source.name) + (options['init-from'] ? '-warm' : '');
  const runDir = path.join(options.runs ?? defaultRunsDir(), name);
  const stopAt = options['stop-at'];
  if (stopAt !== undefined && stopAt > cfg.train.steps) throw new UserError(`--stop-at ${stopAt}: past the end of the schedule (train.steps ${cfg.train.steps})`);
  const r = await trainRestorer(cfg, runDir, { guidance: source, workers, maxStepsThisCall: options['max-steps'], stopAt, initFrom: options['init-from'] });
  try {
    if (r.result.interrupted) {
      process.stderr.write(`stopped at step ${r.result.step}/${stopAt ?? cfg.train.steps}; checkpoint in ${runDir} — run the same command to resume\n`);
      return options['max-steps'] ? 0 : 130;
    }
    const ship = cfg.preset === 'demo' && !source.standIn;
    const out = options.out ?? (ship ? shippedCheckpoint(name) : path.join(runDir, `${name}.tdrc`));
    const rebuild = `tdr train restore --backbone ${options.backbone}${guided ? '' : ' --no-guidance'} --tasks ${options.tasks} ${options.config ? `--config ${options.config}` : `--preset ${cfg.preset}`}${options.guidance ? ` --guidance ${options.guidance}` : ''}${options['guidance-checkpoint'] ? ` --guidance-checkpoint ${options['guidance-checkpoint']}` : ''}${cfg.matcherEncoderLr !== undefined ? ` --matcher-encoder-lr ${cfg.matcherEncoderLr}` : ''}`;
    const snapshot = stopAt !== undefined ? ` --stop-at ${stopAt}` : '';
    // a warm-started model is rebuilt by first rebuilding the model it began from
    const init = r.initFrom ? ` --init-from ${r.initFrom.file}` : '';
    const first = r.initFrom?.rebuild ? `${r.initFrom.rebuild}${/ --out \S+$/.test(r.initFrom.rebuild) ? '' : ` --out ${r.initFrom.file}`} && ` : '';
    // the logs of the model it began from, read before `out` (which may be the same file) is written
    const before = (kind: 'log' | 'val') => (r.initFrom ? readLogBeside(options['init-from']!, kind).filter((x) => x.step < r.initFrom!.step + (kind === 'val' ? 1 : 0)) : []);
    const logBefore = before('log');
    const valBefore = before('val');
    const to = options.out ? ` --out ${portablePath(options.out)}` : '';
    saveRestorer(out, r.params, cfg, { rebuild: first + rebuild + init + snapshot + to, steps: r.result.step, scheduleSteps: cfg.train.steps, ...(r.bestStep !== undefined ? { bestStep: r.bestStep } : {}), guidance: r.guidance, guidanceStandIn: source.standIn ?? null, guidanceModel: r.guidanceModel, ...(r.initFrom ? { initFrom: r.initFrom } : {}) });
    // the loss log beside the checkpoint (<out>.log.jsonl; notebook 07 plots it) and its validation PSNR
    // per task (<out>.val.jsonl; the learning curves); a warm-started run's logs continue those beside
    // the model it began from
    writeLogBeside(out, [...logBefore, ...readLog(runDir).filter((x) => x.step <= r.result.step)]);
    const val = [...valBefore, ...readValLog(runDir).filter((x) => x.step <= r.result.step)];
    if (val.length) writeLogBeside(out, val, 'val');
    process.stdout.write(`restorer ${name} (EMA weights, float16) → ${out}\n`);
  } finally {
    r.params.dispose();
  }
  return 0;
}
