/**
 * `tdr guide-check`: measures a guidance model against the acceptance of the degradation-free
 * guidance (Sec. 3.2, Fig. 1): word distances in text space before/after M_clean (Eq. 3), the
 * degradation statistic of G(E_txt) vs G(E'_txt) per task, and how well a nearest-centroid
 * classifier tells the task from each guidance. Everything is computed here, on the validation photos.
 */
import * as fs from 'node:fs';
import { z } from 'zod';
import { Command, parseOptions } from '../command';
import { initBackend } from '../../backend';
import { wordsGuidanceCheckpoint } from '../../guidance/config';
import { loadGuidancePair } from '../../guidance/pipeline';
import { hazeWordsProbe, HazeProbeResult } from '../../guidance/haze_probe';
import { guidanceDegradationEffect, summariseGuidanceEffect, wordDistances, GUIDANCE_EFFECT_TASKS } from '../../guidance/eval';
import { loadPhotos, centerCrop } from '../../data/patches';
import { PHOTO_SPLITS } from '../../data/corpus';
import { TASKS, Task } from '../../data/degrade';
import { Progress } from '../../train/progress';
import { markdownTable } from '../../viz/table';
import { UserError } from '../../util/errors';

const HELP = `usage: tdr guide-check [--checkpoint FILE.tdrc] [--t2i FILE.tdrc] [--photos N] [--split val|train] [--tasks LIST] [--steps N] [--cfg S] [--seed N] [--json]
       tdr guide-check --haze-probe [--checkpoint FILE.tdrc] [--photos N] [--train-photos N] [--crops-per-photo K] [--seed N] [--json]

Measures a guidance model on the validation photos (--split train: the training photos; the degradation-free
guidance acceptance):
  1. text space: RMS distance of E_txt(X) and of E'_txt(X) to E_txt(Y) per task (X degraded, Y clean);
  2. guidance: the task's degradation statistic of G(E_txt) and G(E'_txt), same seed — high-frequency
     energy for noise/rain/motion/defocus, dark channel for haze; ratio E'/E (goal for noise and haze ≤ 0.8);
     and of G(E_txt(Y)), the clean photo's own guidance (the model's degradation-free level): the share
     of G(E_txt)'s excess over it that M_clean removed;
  3. task accuracy of a leave-one-photo-out nearest-centroid classifier on [log HF energy, dark
     channel] of G(E_txt) vs of G(E'_txt) (lower from G(E'_txt) = less degradation left to see);
  4. content: the frozen image encoder ranks each guidance against the clean crops of all validation
     photos — how often its own photo comes first, and the mean rank (does G show X's scene?);
  5. fidelity: PSNR of each G's 4×4 thumbnail to the clean crop's (G(E_txt(Y)), G(E_txt(X)), G(E'_txt(X))).

options:
  --checkpoint FILE  guidance checkpoint (default $TDR_GUIDANCE_CHECKPOINT, else the words guidance
                     data/checkpoints/guidance-demo-words-colorpath-haze.tdrc; the captions one: data/checkpoints/guidance-demo.tdrc)
  --t2i FILE         the text-to-image checkpoint (default: the one the guidance checkpoint names)
  --photos N         photos of the split (default all)
  --split S          val (default): the validation photos, unseen by every stage; train: the training photos,
                     which the text-to-image model and stages 1–2 were trained on (how much truer G is there —
                     what a restorer trained on them learns to expect of G)
  --tasks LIST       comma-separated tasks for the guidance statistics (default noise,rain,haze)
  --steps N          DDIM steps (default: the checkpoint's preset)
  --cfg S            classifier-free guidance scale (default: the checkpoint's preset)
  --seed N           seed of the initial noise (default: the checkpoint's)
  --json             one line of JSON
  --haze-probe       instead: how well the stage-1 words E_txt(X) of a hazy crop determine its two haze numbers
                     β and A (the synthetic haze is those two numbers; knowing them, the clean crop follows).
                     Ridge regressions from the words of hazy training crops (38 photos × 6 crops × 4 hazes;
                     λ by cross-validation over the photos) to β and A, measured on the validation photos
                     (--photos N of them, 8 hazes each): R², and the 4×4 PSNR to the clean crop of X inverted
                     with the predicted numbers — beside the same from pixel statistics of X; each linear and
                     with a Gaussian kernel (non-linear). With a layout map, also stage 2 as a read-out: clean
                     words read from the hazy words by kernel ridge against M_clean's, each decoded by the
                     words' layout map at 4×4. About 1.5 min; --seed sets the crops and hazes (default 77)
  --train-photos N   --haze-probe: fit on the first N training photos only (default all 38)
  --crops-per-photo K
                     --haze-probe: crops per training photo, 4 hazes each (default 6; with fewer photos, more
                     crops keep the number of training pairs)`;

const Options = z.strictObject({
  checkpoint: z.string().optional(),
  t2i: z.string().optional(),
  photos: z.coerce.number().int().min(2).optional(),
  split: z.enum(PHOTO_SPLITS).default('val'),
  tasks: z
    .string()
    .transform((s) => s.split(',').map((t) => t.trim()))
    .pipe(z.array(z.enum(TASKS as [Task, ...Task[]])).min(1))
    .optional(),
  steps: z.coerce.number().int().min(1).max(1000).optional(),
  cfg: z.coerce.number().min(0).max(50).optional(),
  seed: z.coerce.number().int().min(0).max(2 ** 32 - 1).optional(),
  json: z.boolean().optional(),
  'haze-probe': z.boolean().optional(),
  'train-photos': z.coerce.number().int().min(2).optional(),
  'crops-per-photo': z.coerce.number().int().min(1).max(64).optional(),
});

export const guideCheckCommand: Command = {
  name: 'guide-check',
  summary: "measure a guidance model: word distances, degradation left in G(E_txt) vs G(E'_txt), task accuracy",
  help: HELP,
  async run(argv) {
    const { options, positionals } = parseOptions(
      'guide-check',
      argv,
      { checkpoint: { type: 'string' }, t2i: { type: 'string' }, photos: { type: 'string' }, split: { type: 'string' }, tasks: { type: 'string' }, steps: { type: 'string' }, cfg: { type: 'string' }, seed: { type: 'string' }, json: { type: 'boolean' }, 'haze-probe': { type: 'boolean' }, 'train-photos': { type: 'string' }, 'crops-per-photo': { type: 'string' } },
      Options,
    );
    if (positionals.length) throw new UserError(`unexpected argument '${positionals[0]}'; see 'tdr guide-check --help'`);
    const ckpt = options.checkpoint ?? wordsGuidanceCheckpoint();
    if (!fs.existsSync(ckpt)) throw new UserError(`${ckpt}: no such guidance checkpoint (the README's model table gives each shipped one's rebuild command)`);
    if (options.t2i !== undefined && !fs.existsSync(options.t2i)) throw new UserError(`--t2i ${options.t2i}: no such checkpoint`);
    if (options['haze-probe']) {
      const other = (['split', 'tasks', 'steps', 'cfg'] as const).find((k) => argv.some((a) => a === `--${k}` || a.startsWith(`--${k}=`)));
      if (other) throw new UserError(`--haze-probe measures the words on both splits without drawing G: --${other} does not apply; see 'tdr guide-check --help'`);
    } else {
      const probeOnly = (['train-photos', 'crops-per-photo'] as const).find((k) => options[k] !== undefined);
      if (probeOnly) throw new UserError(`--${probeOnly} sets the training crops of --haze-probe; without it, see 'tdr guide-check --help'`);
    }
    await initBackend({ quiet: options.json });
    const { guidance, t2i } = loadGuidancePair(ckpt, { t2iFile: options.t2i });
    try {
      if (options['haze-probe']) {
        let bar: Progress | undefined;
        const r = await hazeWordsProbe(guidance, t2i, { valPhotos: options.photos, trainPhotos: options['train-photos'], cropsPerPhoto: options['crops-per-photo'], seed: options.seed, onCrop: (i, n) => (bar ??= new Progress('words', n, { quiet: options.json })).update(i) });
        if (options.json) process.stdout.write(JSON.stringify({ checkpoint: ckpt, hazeProbe: r }) + '\n');
        else process.stdout.write(formatHazeProbe(ckpt, r) + '\n');
        return 0;
      }
      if (!guidance.trainedStages.includes('clean')) process.stderr.write(`tdr guide-check: warning: ${ckpt} holds an untrained M_clean (stage 2 not run)\n`);
      const tasks = options.tasks ?? GUIDANCE_EFFECT_TASKS;
      const split = options.split;
      const photos = await loadPhotos(split, t2i.cfg.photoShortSide, options.photos);
      const splitWord = split === 'val' ? 'validation' : 'training';
      const words = await wordDistances(guidance, photos.map((p) => centerCrop(p.image, t2i.cfg.imageSize)));
      const steps = options.steps ?? guidance.cfg.sample.steps;
      const cfgScale = options.cfg ?? guidance.cfg.sample.cfgScale;
      const bar = new Progress('guidance', photos.length * tasks.length, { quiet: options.json });
      const eff = await guidanceDegradationEffect(guidance, t2i, { tasks, limit: options.photos, split, steps, cfgScale, seed: options.seed, onImage: (i) => bar.update(i) });
      const perTask = summariseGuidanceEffect(eff);
      const result = { checkpoint: ckpt, split, photos: photos.length, steps, cfgScale, seed: options.seed ?? guidance.cfg.sample.seed, words, guidance: perTask, taskAccuracy: eff.taskAccuracy, chance: 1 / tasks.length, content: eff.content, thumbnail: eff.thumbnail, thumb4: eff.thumb4, ...(eff.map4 ? { map4: eff.map4 } : {}) };
      if (options.json) process.stdout.write(JSON.stringify(result) + '\n');
      else {
        const f = (x: number, d = 3) => x.toFixed(d);
        process.stdout.write(
          [
            `checkpoint ${ckpt}; ${photos.length} ${splitWord} photos; ${steps} DDIM steps, CFG ${cfgScale}, seed ${result.seed}`,
            '',
            "text space: RMS distance to E_txt(Y) of the clean photo",
            markdownTable(words.map((w) => ({ task: w.task, "E_txt(X)": f(w.before, 4), "E'_txt(X)": f(w.after, 4), "ratio E'/E": f(w.ratio, 2) }))),
            '',
            "guidance: the task's degradation statistic (same seed for G(E_txt) and G(E'_txt))",
            markdownTable(perTask.map((r) => ({ task: r.task, statistic: r.statistic, 'clean Y': f(r.clean), 'input X': f(r.input), 'G(E_txt)': f(r.raw), "G(E'_txt)": f(r.restored), 'G(E_txt(Y))': f(r.cleanGuidance), "ratio E'/E": f(r.ratio, 2), "lower in G(E'_txt)": `${f(100 * r.lowerFraction, 0)} %`, 'excess removed': Number.isFinite(r.excessRemoved) ? `${f(100 * r.excessRemoved, 0)} %` : '—' }))),
            "(G(E_txt(Y)): guidance of the clean photo, same seed — this model's degradation-free level; excess removed = (G(E_txt) − G(E'_txt)) / (G(E_txt) − G(E_txt(Y))), — when G(E_txt) is < 10 % above G(E_txt(Y)))",
            '',
            `task from the guidance (nearest centroid, leave one photo out): G(E_txt) ${f(100 * eff.taskAccuracy.raw, 0)} %, G(E'_txt) ${f(100 * eff.taskAccuracy.restored, 0)} % (chance ${f(100 / tasks.length, 0)} %)`,
            `content by layout (own photo's rank among ${eff.thumbnail.photos} ${splitWord} crops by 16×16 thumbnail PSNR): G(E'_txt(X)) first in ${f(100 * eff.thumbnail.restored.top1, 0)} % (mean rank ${f(eff.thumbnail.restored.meanRank, 1)}), G(E_txt(X)) ${f(100 * eff.thumbnail.raw.top1, 0)} % (${f(eff.thumbnail.raw.meanRank, 1)}), the clean photo's G(E_txt(Y)) ${f(100 * eff.thumbnail.cleanGuidance.top1, 0)} % (${f(eff.thumbnail.cleanGuidance.meanRank, 1)}); chance ${f(100 / eff.thumbnail.photos, 0)} %`,
            markdownTable(eff.thumbnail.byTask.map((t) => ({ task: t.task, "G(E'_txt(X)) first": `${f(100 * t.restored.top1, 0)} %`, "G(E'_txt(X)) mean rank": f(t.restored.meanRank, 1), 'G(E_txt(X)) first': `${f(100 * t.raw.top1, 0)} %`, 'G(E_txt(X)) mean rank': f(t.raw.meanRank, 1) }))),
            `what G shows at 4×4 (area thumbnail PSNR to the clean crop; a guided restorer gains from G's content only where G beats its own output, 'tdr eval --table 1'): the clean photo's G(E_txt(Y)) ${f(eff.thumb4.cleanGuidance, 2)} dB, G(E_txt(X)) ${f(eff.thumb4.raw, 2)} dB, G(E'_txt(X)) ${f(eff.thumb4.restored, 2)} dB (${eff.thumb4.byTask.map((t) => `${t.task} ${f(t.restored, 2)}`).join(', ')}); the degraded input X itself ${f(eff.thumb4.input, 2)} dB (${eff.thumb4.byTask.map((t) => `${t.task} ${f(t.input, 2)}`).join(', ')}), G(E'_txt(X)) below X in ${f(100 * eff.thumb4.restoredBelowInput, 0)} % of the rows`,
            ...(eff.map4
              ? [
                  `the words' layout map alone at 4×4 (no diffusion; G starts from it at strength ${guidance.cfg.sample.fromLayout ?? '—'}): E_txt(Y) ${f(eff.map4.cleanGuidance, 2)} dB, E_txt(X) ${f(eff.map4.raw, 2)} dB, E'_txt(X) ${f(eff.map4.restored, 2)} dB (${eff.map4.byTask.map((t) => `${t.task} ${f(t.raw, 2)} → ${f(t.restored, 2)}`).join(', ')})`,
                ]
              : []),
            `content by the frozen encoder's features (own photo's rank among ${eff.content.photos} ${splitWord} crops): G(E_txt) first in ${f(100 * eff.content.raw.top1, 0)} %, mean rank ${f(eff.content.raw.meanRank, 1)}; G(E'_txt) first in ${f(100 * eff.content.restored.top1, 0)} %, mean rank ${f(eff.content.restored.meanRank, 1)} (chance ${f(100 / eff.content.photos, 0)} %, ${f((eff.content.photos + 1) / 2, 1)})`,
          ].join('\n') + '\n',
        );
      }
    } finally {
      guidance.dispose();
      t2i.dispose();
    }
    return 0;
  },
};

/** The text of `tdr guide-check --haze-probe`. */
export function formatHazeProbe(ckpt: string, r: HazeProbeResult): string {
  const f = (x: number, d = 2) => x.toFixed(d);
  return [
    `checkpoint ${ckpt}: do the stage-1 words E_txt(X) of a hazy crop determine its haze numbers β and A? Ridge (linear, and with a Gaussian kernel) from ${r.crops.train} hazy crops of ${r.photos.train} training photos (λ by cross-validation over the photos), measured on ${r.crops.val} hazy crops of ${r.photos.val} validation photos`,
    markdownTable(r.probes.map((p) => ({ 'read from': p.features === 'words' ? 'the words E_txt(X)' : "X's pixels (4×4 thumbnail, local contrast 16×16)", values: String(p.dims), 'read-out': p.kernel === 'linear' ? 'linear' : `Gaussian kernel, width ${p.width}`, λ: p.kernel === 'linear' ? `${p.lambda} × values` : String(p.lambda), 'R² β': f(p.r2.beta), 'R² A': f(p.r2.A), 'R² β, A on held-out training photos': `${f(p.cvR2.beta)}, ${f(p.cvR2.A)}`, 'X inverted with them, 4×4 dB': f(p.thumb4) }))),
    `X itself ${f(r.thumb4.input)} dB at 4×4; X inverted with the sampler's mean β and A ${f(r.thumb4.priorMean)} dB; with the true numbers it is the clean crop. G(E'_txt(X)) on haze: 'tdr guide-check' (what G shows at 4×4).`,
    ...(r.cleanWords
      ? [
          '',
          `stage 2 as a read-out: the words' layout map at 4×4 (where G starts), PSNR to the clean crop on the same ${r.crops.val} validation crops — the hazy words E_txt(X) ${f(r.cleanWords.map4.input)} dB, M_clean's E'_txt(X) ${f(r.cleanWords.map4.mClean)} dB, clean words read from E_txt(X) by kernel ridge (Gaussian, width ${r.cleanWords.width}, λ ${r.cleanWords.lambda}; fitted on the training crops' (hazy, clean) word pairs) ${f(r.cleanWords.map4.kernelRidge)} dB, the clean crop's own words E_txt(Y) ${f(r.cleanWords.map4.clean)} dB`,
          ...(r.cleanWords.map4.colourPath
            ? [
                `the hazy words with only the mapper's linear colour path reading other token colours: the clean crop's (an oracle) ${f(r.cleanWords.map4.colourPath.clean)} dB; those of X undone with the haze numbers read from the words (Gaussian kernel) ${f(r.cleanWords.map4.colourPath.read)} dB`,
              ]
            : []),
        ]
      : []),
  ].join('\n');
}
