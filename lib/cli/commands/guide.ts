/**
 * `tdr guide <degraded image> [--seed N] [--raw] [--checkpoint FILE] [--t2i FILE] --out <png>`:
 * degradation-free guidance G for one image (paper Sec. 3.2). Default G(E'_txt); `--raw` gives
 * G(E_txt) (no textual restoration) so both can be compared. Same input + seed → same bytes.
 * Results are cached under outputs/guidance/ (content hash + settings); `--no-cache` bypasses it.
 *
 * `trainGuidanceCommandRun('i2t' | 'clean', argv)` is `tdr train i2t|clean` (wired by train.ts):
 * stage 1 / stage 2 with a guidance preset, resumable, runs in <runs>/<preset>/{i2t,clean}; the
 * guidance checkpoint goes to data/checkpoints/guidance-demo.tdrc (demo) or
 * <runs>/<preset>/guidance-<preset>.tdrc.
 *
 * Everything is validated (options, input image, checkpoints and their pairing) before any output is
 * written; the output PNG is written atomically.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { Command, parseOptions, readJsonFile } from '../command';
import { initBackend } from '../../backend';
import { readImage, ImageError } from '../../data/io';
import { writeFileAtomic } from '../../util/fsx';
import { readCheckpointMeta } from '../../util/checkpoint';
import { readLog, writeLogBeside, CHECKPOINT_FILE } from '../../train/loop';
import { Progress } from '../../train/progress';
import { defaultWorkers } from '../../train/parallel';
import { defaultRunsDir, portablePath, shippedCheckpoint } from '../../util/paths';
import { TextToImage } from '../../t2i/model';
import { GUIDANCE_PRESET_NAMES, guidancePreset, parseGuidanceConfig, guidanceOutput, wordsGuidanceCheckpoint, defaultT2IFile, GuidanceConfig } from '../../guidance/config';
import { loadGuidancePair, guidanceCached, guidanceCachedBatch, guidanceBatchSize, generateGuidance } from '../../guidance/pipeline';
import { encodeImage } from '../../data/io';
import { trainImageToText } from '../../guidance/train_i2t';
import { trainCleanMapper } from '../../guidance/train_clean';
import { UserError } from '../../util/errors';
import { forEachFile, isDirectory, listImages, outputPathFor, prepareOutputFolder, refuseOverwrite } from '../files';
import type { RGBImage } from '../../data/image';
import type { DDIMScheduler } from '../../models/ddim';

const HELP = `usage: tdr guide <degraded image | folder> --out FILE.png | FOLDER [--seed N] [--raw] [--checkpoint FILE.tdrc] [--t2i FILE.tdrc] [--steps N] [--cfg S] [--no-cache]

Generate degradation-free guidance G for a degraded image: τi → M_i2t → M_clean → "a photo of a S"
→ text encoder → DDIM + CFG → decoder. Same image and seed → same bytes. A folder: G for every image
into the --out folder as <name>.png (non-images skipped; a bad file is reported and the others go
on; exit ≠ 0 if any failed). An image beyond the pixel limit is read reduced (G needs a small view).

options:
  --out FILE         output PNG (written atomically); a folder for a folder input
  --seed N           seed of the initial noise (default: the checkpoint's, 42 as the official code)
  --raw              use E_txt (no textual restoration M_clean) instead of E'_txt
  --checkpoint FILE  guidance checkpoint (default $TDR_GUIDANCE_CHECKPOINT, else the words guidance
                     data/checkpoints/guidance-demo-words-colorpath-haze.tdrc; the captions one: data/checkpoints/guidance-demo.tdrc)
  --t2i FILE         the text-to-image checkpoint (default: the one the guidance checkpoint names;
                     another T2I model than it was trained on is refused)
  --steps N          DDIM steps (default: the checkpoint's preset)
  --cfg S            classifier-free guidance scale (default: the checkpoint's preset)
  --no-cache         do not read or write outputs/guidance/`;

const GuideOptions = z.strictObject({
  out: z.string().min(1),
  seed: z.coerce.number().int().min(0).max(2 ** 32 - 1).optional(),
  raw: z.boolean().optional(),
  checkpoint: z.string().optional(),
  t2i: z.string().optional(),
  steps: z.coerce.number().int().min(1).max(1000).optional(),
  cfg: z.coerce.number().min(0).max(50).optional(),
  'no-cache': z.boolean().optional(),
});

export const guideCommand: Command = {
  name: 'guide',
  summary: "degradation-free guidance image for a degraded photo (G(E'_txt); --raw: G(E_txt))",
  help: HELP,
  async run(argv) {
    const { options, positionals } = parseOptions(
      'guide',
      argv,
      {
        out: { type: 'string' },
        seed: { type: 'string' },
        raw: { type: 'boolean' },
        checkpoint: { type: 'string' },
        t2i: { type: 'string' },
        steps: { type: 'string' },
        cfg: { type: 'string' },
        'no-cache': { type: 'boolean' },
      },
      GuideOptions.partial({ out: true }),
    );
    if (options.out === undefined) throw new UserError("--out is required; see 'tdr guide --help'");
    if (positionals.length !== 1) throw new UserError(`expected exactly one input image (or folder), got ${positionals.length}; see 'tdr guide --help'`);
    const input = positionals[0];
    const folder = isDirectory(input);
    let jobs: Array<{ file: string; out: string }>;
    if (folder) {
      const { images, skipped } = listImages(input);
      prepareOutputFolder(input, options.out);
      if (skipped.length) process.stderr.write(`tdr guide: skipping ${skipped.length} entr${skipped.length === 1 ? 'y' : 'ies'} that are not images\n`);
      if (!images.length) throw new UserError(`${input}: no image files in the folder`);
      jobs = images.map((f) => ({ file: f, out: outputPathFor(f, options.out!, '.png') }));
    } else {
      const out = isDirectory(options.out) ? outputPathFor(input, options.out, '.png') : options.out;
      // guidance is PNG only (lossless: what the cache holds and what restorers were trained on)
      if (path.extname(out).toLowerCase() !== '.png') throw new UserError(`--out ${out}: guidance is written as PNG; use a .png file name`);
      refuseOverwrite(out, [input]);
      jobs = [{ file: input, out }];
    }
    const ckpt = options.checkpoint ?? wordsGuidanceCheckpoint();
    if (!fs.existsSync(ckpt)) throw new UserError(`${ckpt}: no such guidance checkpoint (the README's model table gives each shipped one's rebuild command)`);
    if (options.t2i !== undefined && !fs.existsSync(options.t2i)) throw new UserError(`--t2i ${options.t2i}: no such checkpoint`);
    // G sees a small view of the input (the T2I's imageSize): an image beyond the pixel limit is read
    // reduced while decoding (shrink-on-load) instead of refused
    const read = async (file: string) => {
      try {
        return await readImage(file);
      } catch (e) {
        if (e instanceof ImageError && /exceeds the limit/.test(e.message)) return readImage(file, { maxSide: GUIDE_MAX_SIDE });
        throw e;
      }
    };
    const first = folder ? undefined : await read(jobs[0].file); // a bad single input fails before the models load
    await initBackend({ purpose: 'generate' });
    const { guidance, t2i } = loadGuidancePair(ckpt, { t2iFile: options.t2i });
    try {
      if (!options.raw && !guidance.trainedStages.includes('clean')) {
        process.stderr.write(`tdr guide: warning: ${ckpt} holds an untrained M_clean (stage 2 not run); use --raw or run 'tdr train clean'\n`);
      }
      const steps = options.steps ?? guidance.cfg.sample.steps;
      checkSteps(t2i.scheduler, steps);
      const seed = options.seed ?? guidance.cfg.sample.seed;
      // a folder: G of the uncached images is made in batches first (guidanceCachedBatch: one DDIM run
      // per TDR_GUIDANCE_BATCH images, default 8); the loop below then writes each from the cache
      const madeInBatch = new Map<string, string>();
      if (folder && !options['no-cache']) {
        const bs = guidanceBatchSize();
        for (let k = 0; k < jobs.length; k += bs) {
          const part: RGBImage[] = [];
          for (const j of jobs.slice(k, k + bs)) {
            try {
              part.push(await read(j.file));
            } catch {
              // reported with its file name by the loop below
            }
          }
          if (!part.length) continue;
          const bar = new Progress(`guide batch of ${part.length} (${Math.min(k + bs, jobs.length)}/${jobs.length})`, steps);
          const t0 = Date.now();
          const rs = await guidanceCachedBatch(guidance, t2i, part, { seed, raw: options.raw, steps, cfgScale: options.cfg, batch: bs, onStep: (i: number) => bar.update(i + 1) });
          const each = (Date.now() - t0) / 1000 / Math.max(1, rs.filter((r) => !r.cached).length);
          for (const r of rs) if (!r.cached) madeInBatch.set(r.file, `made in a batch of ${rs.filter((q) => !q.cached).length}, ${each.toFixed(1)} s per image`);
        }
      }
      const one = async (file: string, out: string, img?: RGBImage) => {
        const x = img ?? (await read(file));
        const bar = new Progress(folder ? `guide ${path.basename(file)}` : 'guide', steps);
        const t0 = Date.now();
        const gopts = { seed, raw: options.raw, steps, cfgScale: options.cfg, onStep: (i: number) => bar.update(i + 1) };
        let png: Buffer;
        let note = '';
        if (options['no-cache']) {
          const [g] = await generateGuidance(guidance, t2i, [x], gopts);
          png = await encodeImage(g, 'png');
        } else {
          const r = await guidanceCached(guidance, t2i, x, gopts);
          png = r.png;
          if (r.cached) note = madeInBatch.has(r.file) ? ` (${madeInBatch.get(r.file)})` : ` (cached: ${r.file})`;
        }
        try {
          writeFileAtomic(out, png);
        } catch (e) {
          throw new UserError(`--out ${out}: cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        }
        const which = options.raw ? 'G(E_txt)' : "G(E'_txt)";
        process.stdout.write(`${out}: ${which} of ${portablePath(ckpt)}, ${t2i.cfg.imageSize}x${t2i.cfg.imageSize}, seed ${seed}, ${steps} DDIM steps, ${((Date.now() - t0) / 1000).toFixed(1)} s${note}\n`);
      };
      if (!folder) {
        await one(jobs[0].file, jobs[0].out, first);
        return 0;
      }
      return await forEachFile('guide', jobs.map((j) => j.file), (f, i) => one(f, jobs[i].out));
    } finally {
      guidance.dispose();
      t2i.dispose();
    }
  },
};

/** Long side of the view `tdr guide` reads of an image beyond the pixel limit (G is made from a 128-px view anyway). */
const GUIDE_MAX_SIDE = 2048;

/**
 * Refuse DDIM step counts the scheduler cannot make (e.g. 1000 with 'leading' spacing and offset 1:
 * the first timestep would be 1000, outside [0, 1000)).
 */
export function checkSteps(scheduler: DDIMScheduler, steps: number, option = '--steps'): void {
  const max = scheduler.maxInferenceSteps();
  if (steps > max) throw new UserError(`${option} ${steps}: this model's DDIM scheduler allows at most ${max} steps (${scheduler.config.numTrainSteps} training steps, '${scheduler.config.timestepSpacing}' spacing, offset ${scheduler.config.stepsOffset})`);
}

// ---------------------------------------------------------------------------------------------
// tdr train i2t | clean

export const TRAIN_GUIDANCE_HELP = `usage: tdr train i2t|clean [--preset ci|demo|paper] [--config FILE.json] [--t2i FILE.tdrc] [--runs DIR] [--from FILE.tdrc] [--max-steps N] [--out FILE.tdrc]

  i2t    stage 1: the image-to-text mapper M_i2t + k/v copies (Eq. 2), clean and degraded crops reconstruct themselves
  clean  stage 2: the textual restoration module M_clean (Eq. 3) on (degraded, clean) pairs of all tasks; needs stage 1

options:
  --preset NAME    ${GUIDANCE_PRESET_NAMES.join(' | ')} (default demo)
  --config FILE    a JSON guidance config (same fields as a preset) instead of --preset
  --t2i FILE       the text-to-image checkpoint to build on (default: demo → $TDR_T2I_CHECKPOINT or the shipped
                   t2i-demo; ci/paper → <runs>/<t2iPreset>/t2i-<t2iPreset>.tdrc)
  --runs DIR       runs folder (default $TDR_RUNS or outputs/runs); runs go to <runs>/<preset>/i2t and /clean
  --words N        N pseudo-words instead of the preset's (Table 9: 5, 10, 20, 30, 40); runs go to <runs>/<preset>-n<N>
                   and the model to data/checkpoints/guidance-demo-n<N>.tdrc (demo), which Table 9 reads
  --from FILE      clean only: M_i2t + k/v copies from FILE (a guidance checkpoint, or a stage-1 run's
                   checkpoint.tdrc) instead of <runs>/<preset>/i2t — e.g. another M_clean variant on the shipped
                   stage 1: tdr train clean --config data/configs/guidance-demo-mixer.json --from data/checkpoints/guidance-demo.tdrc
  --max-steps N    stop after N steps in this call (the run stays resumable)
  --out FILE       guidance checkpoint (default: data/checkpoints/guidance-demo.tdrc for demo, else <runs>/<preset>/guidance-<preset>.tdrc)`;

const TrainOptions = z.strictObject({
  preset: z.enum(GUIDANCE_PRESET_NAMES as [string, ...string[]]).optional(),
  config: z.string().optional(),
  t2i: z.string().optional(),
  runs: z.string().optional(),
  words: z.coerce.number().int().min(5).max(40).optional(),
  from: z.string().endsWith('.tdrc', { message: 'expected a checkpoint file name ending in .tdrc' }).optional(),
  'max-steps': z.coerce.number().int().positive().optional(),
  out: z.string().endsWith('.tdrc', { message: 'expected a file name ending in .tdrc' }).optional(),
});

/**
 * The part of a stage-2 rebuild command that makes its `--from` file, ending in ' && ': a stage-1 run checkpoint
 * (`<runs>/<preset>/i2t/checkpoint.tdrc`) keeps the `tdr train i2t …` command that trained it (with `--runs`
 * when its runs folder is not the default one); a guidance checkpoint or an older run checkpoint: '' (the
 * recorded rebuild is then the stage-2 command alone).
 */
export function stageOneRebuild(from: string): string {
  const meta = readCheckpointMeta(from);
  if (meta.stage !== 'i2t' || typeof meta.rebuild !== 'string') return '';
  // only where that command writes it: <runs>/<preset>[-n<N>]/i2t/checkpoint.tdrc (not a copy elsewhere)
  const preset = (meta.config as { preset?: unknown } | undefined)?.preset;
  const stageDir = path.dirname(path.resolve(from));
  const runDir = path.dirname(stageDir);
  const name = path.basename(runDir);
  const inRun = typeof preset === 'string' && name.startsWith(preset) && /^(-n\d+)?$/.test(name.slice(preset.length));
  if (path.basename(from) !== CHECKPOINT_FILE || path.basename(stageDir) !== 'i2t' || !inRun) return '';
  const runs = path.dirname(runDir);
  const runsArg = runs === path.resolve(defaultRunsDir()) ? '' : ` --runs ${portablePath(runs)}`;
  return `${meta.rebuild}${runsArg} && `;
}

function loadGuidanceConfigArg(preset: string | undefined, config: string | undefined): GuidanceConfig {
  if (preset && config) throw new UserError('give --preset or --config, not both');
  if (!config) return guidancePreset(preset ?? 'demo');
  return parseGuidanceConfig(readJsonFile(config), config);
}

/**
 * `tdr train i2t|clean [options]`: `argv` = the options after the stage word (a leading stage word
 * equal to `stage` is accepted too). Returns the exit code (0 done or stopped by --max-steps, 130
 * interrupted).
 */
export async function trainGuidanceCommandRun(stage: 'i2t' | 'clean', argv: string[]): Promise<number> {
  const args = argv[0] === stage ? argv.slice(1) : argv;
  const { options, positionals } = parseOptions(
    'train',
    args,
    { preset: { type: 'string' }, config: { type: 'string' }, t2i: { type: 'string' }, runs: { type: 'string' }, words: { type: 'string' }, from: { type: 'string' }, 'max-steps': { type: 'string' }, out: { type: 'string' } },
    TrainOptions,
  );
  if (positionals.length) throw new UserError(`unexpected argument '${positionals[0]}'`);
  if (options.from !== undefined && stage !== 'clean') throw new UserError('--from applies to stage 2 only (tdr train clean)');
  if (options.from !== undefined && !fs.existsSync(options.from)) throw new UserError(`${options.from}: no such checkpoint (--from)`);
  let cfg = loadGuidanceConfigArg(options.preset, options.config);
  // Table 9: another N gets its own runs folder and checkpoint name
  const nTag = options.words !== undefined && options.words !== cfg.mapper.numWords ? `-n${options.words}` : '';
  if (nTag) cfg = parseGuidanceConfig({ ...cfg, mapper: { ...cfg.mapper, numWords: options.words } }, `--words ${options.words}`);
  const runs = options.runs ?? defaultRunsDir();
  const t2iFile = options.t2i ?? defaultT2IFile(cfg, runs);
  if (!fs.existsSync(t2iFile)) throw new UserError(`${t2iFile}: no text-to-image checkpoint; train it with 'tdr train t2i --preset ${cfg.t2iPreset}'${options.runs ? ` --runs ${options.runs}` : ''} or give --t2i FILE`);
  const backend = await initBackend();
  const workers = defaultWorkers(backend.name, os.cpus().length);
  if (workers > 1) process.stderr.write(`tdr: data-parallel training on ${workers} workers (TDR_WORKERS to change)\n`);
  const t2i = TextToImage.load(t2iFile);
  const runDir = path.join(runs, cfg.preset + nTag);
  const out = options.out ?? (nTag ? (cfg.preset === 'demo' ? shippedCheckpoint(`guidance-demo${nTag}`) : path.join(runDir, `guidance-${cfg.preset}${nTag}.tdrc`)) : guidanceOutput(cfg.preset, runs));
  try {
    const src = `${options.config ? `--config ${options.config}` : `--preset ${cfg.preset}`}${nTag ? ` --words ${cfg.mapper.numWords}` : ''}${options.t2i ? ` --t2i ${options.t2i}` : ''}`;
    const opts = { t2iFile, maxStepsThisCall: options['max-steps'], workers };
    const r = stage === 'i2t' ? await trainImageToText(cfg, t2i, runDir, { ...opts, rebuild: `tdr train i2t ${src}` }) : await trainCleanMapper(cfg, t2i, runDir, { ...opts, i2tFile: options.from });
    if (!r.model) {
      const total = stage === 'i2t' ? cfg.i2tTrain.steps : cfg.cleanTrain.steps;
      process.stderr.write(`stopped at step ${r.result.step}/${total}; checkpoint in ${path.join(runDir, stage)} — run the same command to resume\n`);
      return options['max-steps'] ? 0 : 130;
    }
    const rebuild = options.from ? `${stageOneRebuild(options.from)}tdr train clean ${src} --from ${options.from}` : `tdr train i2t ${src} && tdr train clean ${src}`;
    r.model.save(out, { float16: true, meta: { rebuild, steps: { [stage]: r.result.step } } });
    r.model.dispose();
    // the loss logs of both stages beside the checkpoint (<out>.log.jsonl; notebooks plot them)
    const lines = (['i2t', 'clean'] as const).flatMap((s) => (fs.existsSync(path.join(runDir, s)) ? readLog(path.join(runDir, s)).map((x) => ({ stage: s, ...x })) : []));
    writeLogBeside(out, lines);
    process.stdout.write(`guidance model (${stage === 'i2t' ? 'M_i2t + k/v copies; M_clean untrained until `tdr train clean`' : 'M_i2t + k/v copies + M_clean'}, EMA weights, float16) → ${out}\n`);
    return 0;
  } finally {
    t2i.dispose();
  }
}
