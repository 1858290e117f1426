import { z } from 'zod';
import { Command, parseOptions } from '../command';
import { runReport } from '../../jobs/report';
import { BACKBONE_TYPES } from '../../restore/config';
import { initBackend } from '../../backend';

const HELP = `usage: tdr report [--limit N] [--max-side PX] [--method-photos N] [--backbone NAME]
                  [--guidance-checkpoint F] [--guided-checkpoint F] [--plain-checkpoint F] [--out FILE]

The main job (npm start):
  1. every degradation at every strength on the bundled validation photos, mean PSNR/SSIM per family
     and strength;
  2. the whole method on a few of the photos with the shipped checkpoints: degrade (σ25 noise, rain,
     haze) → guidance G(E_txt) and G(E'_txt) → restoration without and with guidance → PSNR/SSIM.
     A missing checkpoint is named with the command that builds it; part 1 still runs.
Prints the tables and writes outputs/report.html (images, plotly charts, tables).

options:
  --limit N                use the first N validation photos for part 1 (default: all)
  --max-side PX            part 1: resize photos so the long side is at most PX (default 256)
  --method-photos N        part 2: validation photos (default 3; 0 skips part 2)
  --backbone NAME          part 2: ${BACKBONE_TYPES.join(' | ')} (default promptir)
  --guidance-checkpoint F  default $TDR_GUIDANCE_CHECKPOINT, else the one the guided restorer was trained with
                           (if it is there unchanged), else data/checkpoints/guidance-demo.tdrc
  --guided-checkpoint F    default data/checkpoints/restore-<backbone>-all-in-one-guided-demo-wide.tdrc
  --plain-checkpoint F     default data/checkpoints/restore-<backbone>-all-in-one-plain-demo-wide.tdrc
  --out FILE               HTML report path (default outputs/report.html)`;

const Options = z.strictObject({
  limit: z.coerce.number().int().positive().optional(),
  'max-side': z.coerce.number().int().min(16).max(4096).optional(),
  'method-photos': z.coerce.number().int().min(0).max(25).optional(),
  backbone: z.enum(BACKBONE_TYPES).optional(),
  'guidance-checkpoint': z.string().min(1).optional(),
  'guided-checkpoint': z.string().min(1).optional(),
  'plain-checkpoint': z.string().min(1).optional(),
  out: z.string().endsWith('.html', { message: 'expected a file name ending in .html' }).optional(),
});

export const reportCommand: Command = {
  name: 'report',
  summary: 'the main job: degradations on the validation photos, then degrade → guidance → guided restoration → metrics',
  help: HELP,
  async run(argv) {
    const s = { type: 'string' } as const;
    const { options } = parseOptions(
      'report',
      argv,
      { limit: s, 'max-side': s, 'method-photos': s, backbone: s, 'guidance-checkpoint': s, 'guided-checkpoint': s, 'plain-checkpoint': s, out: s },
      Options,
    );
    if ((options['method-photos'] ?? 3) > 0) await initBackend({});
    await runReport({
      limit: options.limit,
      maxSide: options['max-side'],
      out: options.out,
      methodPhotos: options['method-photos'],
      method: {
        backbone: options.backbone,
        guidanceCheckpoint: options['guidance-checkpoint'],
        guidedCheckpoint: options['guided-checkpoint'],
        plainCheckpoint: options['plain-checkpoint'],
      },
    });
    return 0;
  },
};
