/**
 * `tdr metrics <clean> <test> [--crop-border N] [--json]`
 *
 * PSNR / SSIM of <test> against <clean> (lib/metrics/metrics): RGB and BT.601-Y, BasicSR conventions,
 * plus the 3-D SSIM that TextualDegRemoval reports. Both files are decoded and measured after
 * rounding to 8 bit (`quantize: true`, BasicSR `tensor2img`): exact for 8-bit files, and 16-bit
 * files are measured as the official scripts would after saving them as uint8.
 *
 * --json prints exactly one line: {"psnr":…,"ssim":…,"psnrY":…,"ssimY":…,"ssim3d":…}; an infinite
 * PSNR (identical images) is printed as null in JSON and as 'inf' in text.
 */
import { z } from 'zod';
import { Command, parseOptions, wantsHelp } from '../command';
import { ImageError, readImage } from '../../data/io';
import { computeMetrics } from '../../metrics/metrics';
import { UserError } from '../../util/errors';

const HELP = `Usage: tdr metrics <clean> <test> [--crop-border N] [--json]

PSNR/SSIM of <test> against <clean> on the [0,255] scale (images rounded to 8 bit):
  psnr, ssim     RGB; SSIM = BasicSR (11x11 Gaussian σ1.5, valid, per channel)
  psnrY, ssimY   BT.601 Y (16 + 65.481R + 128.553G + 24.966B)
  ssim3d         TextualDegRemoval/Restormer 3-D SSIM (11x11x11 Gaussian over H,W,C)

Options:
  --crop-border <N>   pixels removed on each side first (default 0)
  --json              one JSON line; infinite PSNR printed as null
  -h, --help          this help`;

const Schema = z.strictObject({
  'crop-border': z
    .string()
    .trim()
    .regex(/^\d+$/, { message: 'expected a non-negative integer' })
    .transform(Number)
    .optional(),
  json: z.boolean().optional(),
});

export const metricsCommand: Command = {
  name: 'metrics',
  summary: 'PSNR / SSIM (RGB, Y, 3-D SSIM) of a test image against a clean one',
  help: HELP,
  async run(argv: string[]): Promise<number> {
    if (wantsHelp(argv)) {
      process.stdout.write(HELP + '\n');
      return 0;
    }
    const { options, positionals } = parseOptions('metrics', argv, { 'crop-border': { type: 'string' }, json: { type: 'boolean' } }, Schema);
    if (positionals.length !== 2) throw new UserError(`expected two images <clean> <test>, got ${positionals.length}; see 'tdr metrics --help'`);
    const [cleanPath, testPath] = positionals;
    const imgs = [];
    for (const p of [cleanPath, testPath]) {
      try {
        imgs.push(await readImage(p));
      } catch (e) {
        if (e instanceof ImageError) throw new UserError(e.message);
        throw e;
      }
    }
    const [clean, test] = imgs;
    if (clean.height !== test.height || clean.width !== test.width) {
      throw new UserError(`${cleanPath} is ${clean.width}x${clean.height} but ${testPath} is ${test.width}x${test.height}; sizes must match`);
    }
    const crop = options['crop-border'] ?? 0;
    if (clean.height - 2 * crop < 11 || clean.width - 2 * crop < 11) {
      throw new UserError(`--crop-border ${crop} is too large for ${clean.width}x${clean.height}: SSIM needs at least 11x11 pixels left after cropping`);
    }
    const m = computeMetrics(clean, test, { cropBorder: crop, quantize: true });
    if (options.json) {
      process.stdout.write(JSON.stringify({ psnr: m.psnr, ssim: m.ssim, psnrY: m.psnrY, ssimY: m.ssimY, ssim3d: m.ssim3d }) + '\n');
    } else {
      const db = (v: number) => (Number.isFinite(v) ? `${v.toFixed(4)} dB` : 'inf');
      process.stdout.write(
        [`PSNR  ${db(m.psnr)}   SSIM  ${m.ssim.toFixed(4)}   (RGB, crop ${crop})`, `PSNRY ${db(m.psnrY)}   SSIMY ${m.ssimY.toFixed(4)}   (BT.601 Y)`, `SSIM3D ${m.ssim3d.toFixed(4)}   (TextualDegRemoval 3-D)`].join('\n') + '\n',
      );
    }
    return 0;
  },
};
