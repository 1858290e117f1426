import { z } from 'zod';
import { Command, parseOptions } from '../command';
import { runReport } from '../../eval/report';

const HELP = `usage: tdr report [--limit N] [--max-side PX] [--out FILE]

The main job (npm start): every degradation at every strength on the bundled validation photos,
mean PSNR/SSIM per family and strength; prints the table and writes outputs/report.html.

options:
  --limit N       use the first N validation photos (default: all)
  --max-side PX   resize photos so the long side is at most PX (default 256)
  --out FILE      HTML report path (default outputs/report.html)`;

const Options = z.strictObject({
  limit: z.coerce.number().int().positive().optional(),
  'max-side': z.coerce.number().int().min(16).max(4096).optional(),
  out: z.string().endsWith('.html', { message: 'expected a file name ending in .html' }).optional(),
});

export const reportCommand: Command = {
  name: 'report',
  summary: 'the main job: degradations × strengths on the validation photos → table + outputs/report.html',
  help: HELP,
  async run(argv) {
    const { options } = parseOptions('report', argv, { limit: { type: 'string' }, 'max-side': { type: 'string' }, out: { type: 'string' } }, Options);
    await runReport({ limit: options.limit, maxSide: options['max-side'], out: options.out });
    return 0;
  },
};
