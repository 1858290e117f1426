import * as fs from 'node:fs';
import { z } from 'zod';
import { Command, parseOptions } from '../command';
import { initBackend } from '../../backend';
import { TextToImage } from '../../t2i/model';
import { t2iCheckpoint } from '../../util/paths';
import { listEntries } from '../../data/corpus';
import { trainingCaption } from '../../data/captions';
import { aeReconstructions, aeHighFrequency, degradationWordEffect, copyCheck, contentRetrieval, wordsReconstruction, layoutFidelity } from '../../t2i/check';
import { UserError } from '../../util/errors';

const HELP = `usage: tdr t2i-check [--checkpoint FILE.tdrc] [--seeds N] [--captions N] [--content N] [--cfg S] [--photos N] [--words N] [--layout] [--json]

Measures the text-to-image model:
  1. autoencoder reconstruction PSNR on validation photos (centre crops, clean and noisy σ25), and how much of
     their high-frequency energy (and of the noise's) the reconstruction keeps;
  2. for captions × seeds: ", hazy" vs the plain caption (mean dark channel) and ", noisy" vs plain
     (high-frequency energy), with the share of pairs where the word raised the statistic;
  3. copy check: each plain sample's nearest clean training crop vs the autoencoder's own
     reconstruction error on training crops;
  4. content: samples of N training captions (2 seeds each) ranked by the frozen image encoder
     against all training photos — how often the caption's own photo comes first / in the top 5,
     against samples of the empty prompt (the chance level).

options:
  --checkpoint FILE   default $TDR_T2I_CHECKPOINT, else data/checkpoints/t2i-demo.tdrc
  --seeds N           seeds per caption (default 8)
  --captions N        training captions used (default 4)
  --content N         training captions for the content check (default 13: every 3rd photo; 0 skips it)
  --words N           validation photos reconstructed from their own pseudo-words (models with an image-to-words
                      mapper; default all 25; 0 skips it): rank of the own photo by 16×16 thumbnail PSNR
  --steps N           DDIM steps of the words reconstruction (default: the checkpoint's sample.steps)
  --from-layout S     words reconstruction started from the words' own layout map, noised to strength S
                      in (0, 1] (SDEdit; models trained with words.layoutLoss)
  --layout            only the words' layout map (models trained with words.layoutLoss; seconds): its 4×4 and 8×8
                      thumbnail PSNR to the crop on the validation photos and on the training photos' centre crops,
                      against the best map on its grid (the crop's own latent pooled to the grid), and the layout
                      objective with its target's variance (R² = 1 − mse/var), and a colour probe: a linear map
                      from the token-cell colours to the pooled latent fitted on the training crops (≈ 1 min);
                      --words N sets the photos per split (default 25)
  --cfg S             classifier-free guidance scale (default: the checkpoint's sample.cfgScale)
  --photos N          validation photos for the AE PSNR (default all)
  --json              one line of JSON`;

const Options = z.strictObject({
  checkpoint: z.string().optional(),
  seeds: z.coerce.number().int().min(1).max(64).default(8),
  captions: z.coerce.number().int().min(1).max(38).default(4),
  content: z.coerce.number().int().min(0).max(38).default(13),
  words: z.coerce.number().int().min(0).optional(),
  steps: z.coerce.number().int().min(1).max(1000).optional(),
  'from-layout': z.coerce.number().gt(0).max(1).optional(),
  cfg: z.coerce.number().min(0).max(50).optional(),
  photos: z.coerce.number().int().min(1).optional(),
  layout: z.boolean().optional(),
  json: z.boolean().optional(),
});

export const t2iCheckCommand: Command = {
  name: 't2i-check',
  summary: 'measure the text-to-image model: AE PSNR, degradation-word effect, copy check',
  help: HELP,
  async run(argv) {
    const { options, positionals } = parseOptions(
      't2i-check',
      argv,
      { checkpoint: { type: 'string' }, seeds: { type: 'string' }, captions: { type: 'string' }, content: { type: 'string' }, words: { type: 'string' }, steps: { type: 'string' }, 'from-layout': { type: 'string' }, cfg: { type: 'string' }, photos: { type: 'string' }, layout: { type: 'boolean' }, json: { type: 'boolean' } },
      Options,
    );
    if (positionals.length) throw new UserError(`unexpected argument '${positionals[0]}'`);
    const ckpt = options.checkpoint ?? t2iCheckpoint();
    if (!fs.existsSync(ckpt)) throw new UserError(`${ckpt}: no such checkpoint`);
    await initBackend({ quiet: options.json });
    const model = TextToImage.load(ckpt);
    try {
      if (options.layout) {
        model.requireLayoutMap(`${ckpt}: --layout`);
        const rows = await layoutFidelity(model, { limit: options.words });
        if (options.json) process.stdout.write(JSON.stringify({ checkpoint: ckpt, layout: rows }) + '\n');
        else {
          const f = (x: number) => x.toFixed(2);
          process.stdout.write(
            [
              `checkpoint ${ckpt}`,
              `the words' layout map decoded alone (no diffusion), area-thumbnail PSNR to the crop (dB); best = the crop's own latent pooled to the ${model.unet.cfg.layout!.grid}×${model.unet.cfg.layout!.grid} grid`,
              '| photos | n | map 4×4 | best 4×4 | map 8×8 | best 8×8 | layout mse | target var | R² | colour probe 4×4 | probe mse | probe R² |',
              '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
              ...rows.map(
                (r) =>
                  `| ${r.split === 'val' ? 'validation (unseen)' : 'training, centre crops'} | ${r.photos} | ${f(r.map4)} | ${f(r.ceiling4)} | ${f(r.map8)} | ${f(r.ceiling8)} | ${r.mse.toFixed(4)} | ${r.targetVar.toFixed(4)} | ${f(1 - r.mse / r.targetVar)} | ${f(r.probe.map4)} | ${r.probe.mse.toFixed(4)} | ${f(1 - r.probe.mse / r.targetVar)} |`,
              ),
              "(colour probe: a linear map from the token-cell colours to the pooled latent, least squares on the training crops — what the words' colours alone could give)",
            ].join('\n') + '\n',
          );
        }
        return 0;
      }
      const recs = await aeReconstructions(model, options.photos ?? Infinity);
      const ae = { photos: recs.length, psnrClean: recs.reduce((a, r) => a + r.psnr, 0) / recs.length, psnrNoisy: recs.reduce((a, r) => a + r.psnrNoisy, 0) / recs.length, hf: aeHighFrequency(recs) };
      // every 9th training photo, so the captions cover different scenes
      const entries = listEntries('train').filter((_, i) => i % 9 === 0).slice(0, options.captions);
      const captions = entries.map((e) => trainingCaption(e));
      const seeds = Array.from({ length: options.seeds }, (_, i) => 1000 + i);
      const plain: Awaited<ReturnType<TextToImage['generate']>> = [];
      const effect = await degradationWordEffect(model, captions, seeds, {
        cfgScale: options.cfg,
        onImage: (_c, seed, imgs) => {
          if (seed === seeds[0]) plain.push(imgs[0]);
        },
      });
      const copies = await copyCheck(model, plain);
      const contentEntries = listEntries('train').filter((_, i) => i % 3 === 0).slice(0, options.content);
      const content = contentEntries.length
        ? await contentRetrieval(model, contentEntries.map((e) => ({ id: e.id, caption: trainingCaption(e) })), [1, 2], { cfgScale: options.cfg })
        : null;
      const rec = model.words && options.words !== 0 ? await wordsReconstruction(model, { limit: options.words, cfgScale: options.cfg, steps: options.steps, fromLayout: options['from-layout'] }) : null;
      const result = {
        checkpoint: ckpt,
        autoencoder: ae,
        words: { captions: captions.length, seeds: seeds.length, dark: effect.dark, hf: effect.hf },
        cfgScale: options.cfg ?? model.cfg.sample.cfgScale,
        content: content && { samples: content.rows.length, photos: content.photos, top1: content.top1, top5: content.top5, meanRank: content.meanRank, uncondTop1: content.uncondTop1, uncondTop5: content.uncondTop5, uncondMeanRank: content.uncondMeanRank },
        reconstruction: rec && { photos: rec.photos, thumbnail: rec.thumbnail, feature: rec.feature, psnrOwn16: rec.psnrOwn16, psnrOwn4: rec.psnrOwn4 },
        copy: { nearestMse: copies.samples.map((s) => s.distance), nearest: copies.samples.map((s) => s.nearest.photoId), aeReconstructionMse: copies.aeReconstruction },
      };
      if (options.json) process.stdout.write(JSON.stringify(result) + '\n');
      else {
        const f = (x: number, d = 2) => x.toFixed(d);
        process.stdout.write(
          [
            `checkpoint ${ckpt}`,
            `autoencoder, ${ae.photos} validation photos: PSNR clean ${f(ae.psnrClean)} dB, noisy σ25 ${f(ae.psnrNoisy)} dB`,
            `autoencoder, HF energy: clean ${f(ae.hf.clean, 0)} → reconstructed ${f(ae.hf.rec, 0)}; noisy σ25 ${f(ae.hf.noisy, 0)} → ${f(ae.hf.recNoisy, 0)} (keeps ${f(100 * ae.hf.noiseKept, 1)} % of the noise's excess)`,
            `", hazy" vs plain, mean dark channel: ${f(effect.dark.plain, 4)} → ${f(effect.dark.hazy, 4)} (×${f(effect.dark.ratio)}), raised in ${f(100 * effect.dark.raisedFraction, 0)} % of ${effect.rows.length} pairs`,
            `", noisy" vs plain, HF energy: ${f(effect.hf.plain, 1)} → ${f(effect.hf.noisy, 1)} (×${f(effect.hf.ratio)}), raised in ${f(100 * effect.hf.raisedFraction, 0)} % of ${effect.rows.length} pairs`,
            ...(content
              ? [
                  `content (CFG ${result.cfgScale}), ${content.rows.length} samples of ${contentEntries.length} training captions: the frozen encoder ranks the caption's own photo first in ${f(100 * content.top1, 0)} %, in the top 5 in ${f(100 * content.top5, 0)} % (mean rank ${f(content.meanRank, 1)} of ${content.photos}); empty prompt: ${f(100 * content.uncondTop1, 0)} % / ${f(100 * content.uncondTop5, 0)} % (mean rank ${f(content.uncondMeanRank, 1)}; chance ${f(100 / content.photos, 1)} % / ${f(500 / content.photos, 1)} %)`,
                ]
              : []),
            ...(rec
              ? [
                  `reconstruction from its own words, ${rec.photos} validation photos (CFG ${result.cfgScale}): own photo first by 16×16 PSNR in ${f(100 * rec.thumbnail.top1, 0)} % (mean rank ${f(rec.thumbnail.meanRank, 1)}), by the frozen encoder's features in ${f(100 * rec.feature.top1, 0)} % (mean rank ${f(rec.feature.meanRank, 1)}); chance ${f(100 / rec.photos, 1)} %${rec.fromLayout != null ? ` (DDIM started from the layout map at strength ${rec.fromLayout})` : ''}; PSNR to the own photo at 16×16 ${f(rec.psnrOwn16)} dB, at 4×4 ${f(rec.psnrOwn4)} dB`,
                  ...(rec.layout ? [`the words' layout map decoded alone (no diffusion): own photo first by 16×16 PSNR in ${f(100 * rec.layout.top1, 0)} % (mean rank ${f(rec.layout.meanRank, 1)}; PSNR 16×16 ${f(rec.layout.psnr16)} dB)`] : []),
                ]
              : []),
            `copy check: nearest training crop MSE ${copies.samples.map((s) => f(s.distance, 0)).join(', ')} vs AE reconstruction MSE mean ${f(copies.aeReconstruction.mean, 0)} (max ${f(copies.aeReconstruction.max, 0)})`,
          ].join('\n') + '\n',
        );
      }
    } finally {
      model.dispose();
    }
    return 0;
  },
};
