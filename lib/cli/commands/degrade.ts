/**
 * `tdr degrade <in> --task noise|rain|haze|motion|defocus [--sigma N] [--noise-mode float|uint8]
 *   --seed N --out <file> [--json]`
 *
 * Reads an image, applies one degradation family (lib/data/degrade) with parameters drawn from
 * the seed (σ fixed by --sigma for noise), writes the result atomically, and prints the drawn
 * parameters: `task seed phrase` + one `name=value` per line, or exactly one JSON line with --json
 * (`{"task":…,"seed":…,"phrase":…,"params":{…},"out":…}`).
 *
 * Everything is validated before anything is written (options, output extension, input image,
 * the degradation itself), so an error never leaves an output file. Note: the output is 8-bit,
 * so `--noise-mode float` noise is clipped to [0,1] and rounded when saved.
 */
import { z } from 'zod';
import { Command, parseOptions, wantsHelp } from '../command';
import { ImageError, formatFromPath, readImage, writeImage } from '../../data/io';
import { DegradeOptions, TASKS, degrade, NOISE_LIMITS, NOISE_MODES } from '../../data/degrade';
import { UserError } from '../../util/errors';
import { forEachFile, isDirectory, listImages, outputPathFor, prepareOutputFolder, refuseOverwrite } from '../files';

const HELP = `Usage: tdr degrade <in | folder> --task <${TASKS.join('|')}> --seed <N> --out <file | folder> [options]

Apply one synthetic degradation (paper's M1 data) to an image, or to every image of a folder (into
the --out folder, same names, same seed for each; non-images skipped; a bad file is reported and the
others go on; exit ≠ 0 if any failed). An input file is never overwritten.

Options:
  --task <t>          ${TASKS.join(', ')}
  --seed <N>          integer in [0, 4294967295]; same seed = same output bytes
  --out <file>        output image (.png, .jpg, .jpeg, .webp, .tif), written atomically; a folder for a folder input
  --sigma <N>         noise only: σ on the 0–255 scale, [${NOISE_LIMITS.sigma[0]}, ${NOISE_LIMITS.sigma[1]}] (default: drawn from U[0,50])
  --noise-mode <m>    noise only: float (Restormer eval, no clip; default) or uint8 (PromptIR: clip + truncate)
  --json              print one JSON line instead of text
  -h, --help          this help`;

/** A command-line number: a decimal literal (no '', no 'Infinity', no hex), as a number. */
const numberString = (message: string) =>
  z
    .string()
    .trim()
    .regex(/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, { message })
    .transform(Number);

const Schema = z.strictObject({
  task: z.enum(TASKS as [string, ...string[]], { message: `must be one of ${TASKS.join(', ')}` }),
  seed: numberString('expected an integer in [0, 4294967295]').pipe(z.number().int({ message: 'expected an integer in [0, 4294967295]' }).min(0, { message: 'expected an integer in [0, 4294967295]' }).max(4294967295, { message: 'expected an integer in [0, 4294967295]' })),
  out: z.string().min(1, { message: 'expected a file name' }),
  sigma: numberString(`must be a number in [${NOISE_LIMITS.sigma[0]}, ${NOISE_LIMITS.sigma[1]}]`)
    .refine((v) => Number.isFinite(v) && v >= NOISE_LIMITS.sigma[0] && v <= NOISE_LIMITS.sigma[1], { message: `must be a number in [${NOISE_LIMITS.sigma[0]}, ${NOISE_LIMITS.sigma[1]}]` })
    .optional(),
  'noise-mode': z.enum(NOISE_MODES as [string, ...string[]], { message: `must be one of ${NOISE_MODES.join(', ')}` }).optional(),
  json: z.boolean().optional(),
});

export const degradeCommand: Command = {
  name: 'degrade',
  summary: 'apply a synthetic degradation (noise, rain, haze, motion, defocus) to an image',
  help: HELP,
  async run(argv: string[]): Promise<number> {
    if (wantsHelp(argv)) {
      process.stdout.write(HELP + '\n');
      return 0;
    }
    const { options, positionals } = parseOptions(
      'degrade',
      argv,
      {
        task: { type: 'string' },
        seed: { type: 'string' },
        out: { type: 'string' },
        sigma: { type: 'string' },
        'noise-mode': { type: 'string' },
        json: { type: 'boolean' },
      },
      Schema.partial({ task: true, seed: true, out: true }),
    );
    for (const req of ['task', 'seed', 'out'] as const) {
      if (options[req] === undefined) throw new UserError(`--${req} is required; see 'tdr degrade --help'`);
    }
    if (positionals.length !== 1) throw new UserError(`expected exactly one input image (or folder), got ${positionals.length}; see 'tdr degrade --help'`);
    const task = options.task as DegradeOptions['task'];
    if (task !== 'noise' && (options.sigma !== undefined || options['noise-mode'] !== undefined)) {
      throw new UserError(`--${options.sigma !== undefined ? 'sigma' : 'noise-mode'} only applies to --task noise, got --task ${task}`);
    }
    const input = positionals[0];
    const folder = isDirectory(input);
    let jobs: Array<{ file: string; out: string }>;
    if (folder) {
      const { images, skipped } = listImages(input);
      prepareOutputFolder(input, options.out!);
      if (skipped.length) process.stderr.write(`tdr degrade: skipping ${skipped.length} entr${skipped.length === 1 ? 'y' : 'ies'} that are not images\n`);
      if (!images.length) throw new UserError(`${input}: no image files in the folder`);
      jobs = images.map((f) => ({ file: f, out: outputPathFor(f, options.out!) }));
    } else {
      const out = isDirectory(options.out!) ? outputPathFor(input, options.out!) : options.out!;
      try {
        formatFromPath(out);
      } catch (e) {
        throw new UserError(`--out ${(e as Error).message}`);
      }
      refuseOverwrite(out, [input]);
      jobs = [{ file: input, out }];
    }
    const one = async (file: string, out: string) => {
      const img = await readImage(file); // ImageError is a UserError naming the file
      const opts = { task, seed: options.seed! } as DegradeOptions & Record<string, unknown>;
      if (options.sigma !== undefined) opts.sigma = options.sigma;
      if (options['noise-mode'] !== undefined) opts.mode = options['noise-mode'];
      let result;
      try {
        result = degrade(img, opts);
      } catch (e) {
        throw new UserError((e as Error).message);
      }
      try {
        await writeImage(out, result.image);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (e instanceof ImageError || code) throw new UserError(`--out ${out}: cannot write (${code ?? (e as Error).message})`);
        throw e;
      }
      if (options.json) {
        process.stdout.write(JSON.stringify({ task: result.task, seed: result.seed, phrase: result.phrase, params: result.params, out }) + '\n');
      } else {
        const lines = [`${result.task} seed=${result.seed} phrase='${result.phrase}' -> ${out}`];
        for (const [k, v] of Object.entries(result.params)) lines.push(`  ${k}=${typeof v === 'number' ? +v.toPrecision(6) : v}`);
        process.stdout.write(lines.join('\n') + '\n');
      }
    };
    if (!folder) {
      await one(jobs[0].file, jobs[0].out);
      return 0;
    }
    return forEachFile('degrade', jobs.map((j) => j.file), (f, i) => one(f, jobs[i].out));
  },
};
