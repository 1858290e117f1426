import * as fs from 'node:fs';
import { z } from 'zod';
import { Command, parseOptions } from '../command';
import { initBackend } from '../../backend';
import { TextToImage } from '../../t2i/model';
import { writeImage, formatFromPath } from '../../data/io';
import { Progress } from '../../train/progress';
import { t2iCheckpoint } from '../../util/paths';
import { UserError } from '../../util/errors';
import { checkSteps } from './guide';

const HELP = `usage: tdr sample --prompt "<text>" --seed N --out FILE.png [--steps N] [--cfg S] [--eta E] [--checkpoint FILE.tdrc]

Generate an image from text with the project's text-to-image model (DDIM + classifier-free
guidance). Same seed → same bytes.

options:
  --prompt TEXT        e.g. "a photo of a red apple on a table, hazy"
  --seed N             seed of the initial noise (integer ≥ 0)
  --out FILE           .png or .jpg
  --steps N            DDIM steps (default: the checkpoint's preset, demo 50)
  --cfg S              guidance scale (default: the preset's; 1 = no guidance)
  --eta E              DDIM η in [0,1] (default 0, deterministic)
  --checkpoint FILE    a t2i checkpoint (default $TDR_T2I_CHECKPOINT, else data/checkpoints/t2i-demo.tdrc)`;

const Options = z.strictObject({
  prompt: z.string(),
  seed: z.coerce.number().int().min(0).max(2 ** 32 - 1),
  out: z.string().min(1),
  steps: z.coerce.number().int().min(1).max(1000).optional(),
  cfg: z.coerce.number().min(0).max(50).optional(),
  eta: z.coerce.number().min(0).max(1).optional(),
  checkpoint: z.string().optional(),
});

export const sampleCommand: Command = {
  name: 'sample',
  summary: 'text → image with the trained text-to-image model (DDIM + CFG)',
  help: HELP,
  async run(argv) {
    const { options, positionals } = parseOptions(
      'sample',
      argv,
      { prompt: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' }, steps: { type: 'string' }, cfg: { type: 'string' }, eta: { type: 'string' }, checkpoint: { type: 'string' } },
      Options,
    );
    if (positionals.length) throw new UserError(`unexpected argument '${positionals[0]}'`);
    formatFromPath(options.out); // bad extension → error before any work
    const ckpt = options.checkpoint ?? t2iCheckpoint();
    if (!fs.existsSync(ckpt)) throw new UserError(`${ckpt}: no such checkpoint (train one with 'tdr train t2i --preset demo')`);
    await initBackend({ purpose: 'generate' });
    const model = TextToImage.load(ckpt);
    try {
      const steps = options.steps ?? model.cfg.sample.steps;
      checkSteps(model.scheduler, steps);
      const bar = new Progress('sample', steps);
      const t0 = Date.now();
      const [img] = await model.generate([options.prompt], { seed: options.seed, steps, cfgScale: options.cfg, eta: options.eta, onStep: (i) => bar.update(i + 1) });
      await writeImage(options.out, img);
      process.stdout.write(`${options.out}: ${img.width}x${img.height}, ${steps} DDIM steps, ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    } finally {
      model.dispose();
    }
    return 0;
  },
};
