/**
 * `tdr eval`: the paper's tables at small scale from trained restorer checkpoints (lib/restore/eval.ts):
 * Table 1 (all-in-one, without vs with guidance), single-task tables, Table 9 (effect of N).
 */
import * as fs from 'node:fs';
import { z } from 'zod';
import { Command, parseOptions } from '../command';
import { initBackend } from '../../backend';
import { guidanceSourceByName, guidanceCheckpointForRestorer } from '../../jobs/sources';
import { loadRestorer, guidanceModelMismatch } from '../../restore/train';
import { TableResult, singleTaskTable, table1, table9, validationImages, writeTables, singleTaskSpecs, TABLE1_TASKS } from '../../restore/eval';
import { GuidanceSource } from '../../restore/source';
import { NLM_RULE } from '../../restore/classical';
import { pickGuidance, DEFAULT_GUIDANCE } from './restore';
import { Progress } from '../../train/progress';
import type { Task } from '../../data/degrade';
import { UserError } from '../../util/errors';

const HELP = `usage: tdr eval --checkpoint FILE [--checkpoint FILE] --out-dir DIR [--table 1|single|9] [--guidance NAME] [--guidance-checkpoint FILE] [--controls] [--no-classical] [--words LIST] [--limit N]

Evaluate trained restorers on the validation photos and write <out-dir>/<table>.md, .html and .json
(PSNR/SSIM per BasicSR; derain on Y, the rest on RGB; per-image deltas with mean ± std).
Tables 1 and single end with a classical reference row on the same inputs (no learned weights): dark
channel prior + guided filter for haze (He et al., CVPR 2009 / ECCV 2010), non-local means for noise
(Buades et al., CVPR 2005; OpenCV conventions, h = k·σ, k = ${NLM_RULE.kAt.map(([s, k]) => `${k} at σ${s}`).join(', ')});
'—' for rain, motion and defocus.

  --table 1       all-in-one (dehaze, derain, denoise σ15/25/50): needs an unguided and a guided
                  checkpoint of the same backbone (default)
  --table single  the checkpoints' single task (noise → σ15/25/50): an unguided one, optionally a guided one
  --table 9       effect of N = 5, 10, 20, 30, 40: an unguided and a guided checkpoint, and a guidance
                  source that depends on N (the guided restorer is the same for every N)

options:
  --checkpoint FILE  a restorer checkpoint (repeat for several)
  --out-dir DIR      where the tables go
  --guidance NAME    guidance source of the guided model (default '${DEFAULT_GUIDANCE}'; 'clean-oracle', 'clean-thumb-<k>' = stand-ins made from the clean image)
  --guidance-checkpoint FILE
                     Tables 1 and single: the guidance model of the text sources (default: $TDR_GUIDANCE_CHECKPOINT
                     if set, else the one the guided restorer was trained with if it is there unchanged, else
                     data/checkpoints/guidance-demo.tdrc)
  --controls         Table 1: also the guided model given ANOTHER photo's guidance (the next validation
                     photo's, same task) and a flat grey one — if these score like its own guidance, the
                     gain does not come from what G shows
  --no-classical     leave out the classical reference row (Tables 1 and single)
  --words LIST       Table 9: comma-separated N to evaluate (default 5,10,20,30,40); each needs its guidance model
                     data/checkpoints/guidance-demo-n<N>.tdrc (N = 20: guidance-demo.tdrc)
  --limit N          only the first N validation photos`;

const Options = z.strictObject({
  checkpoint: z.array(z.string().min(1)).min(1, { message: 'give at least one --checkpoint' }).prefault([]),
  'out-dir': z.string().min(1),
  table: z.enum(['1', 'single', '9']).default('1'),
  guidance: z.string().min(1).optional(),
  'guidance-checkpoint': z.string().endsWith('.tdrc', { message: 'expected a guidance checkpoint (.tdrc)' }).optional(),
  limit: z.coerce.number().int().positive().optional(),
  controls: z.boolean().optional(),
  'no-classical': z.boolean().optional(),
  words: z
    .string()
    .regex(/^\d+(,\d+)*$/, { message: 'expected comma-separated numbers, e.g. 10,20' })
    .transform((v) => v.split(',').map(Number))
    .refine((ns) => ns.every((n) => n >= 5 && n <= 40), { message: 'each N must be in 5..40' })
    .optional(),
});

export const evalCommand: Command = {
  name: 'eval',
  summary: 'evaluate restorers: Table 1, single-task tables, Table 9 (Markdown, HTML, JSON)',
  help: HELP,
  async run(argv) {
    const { options, positionals } = parseOptions(
      'eval',
      argv,
      { checkpoint: { type: 'string', multiple: true }, 'out-dir': { type: 'string' }, table: { type: 'string' }, guidance: { type: 'string' }, 'guidance-checkpoint': { type: 'string' }, limit: { type: 'string' }, controls: { type: 'boolean' }, 'no-classical': { type: 'boolean' }, words: { type: 'string' } },
      Options,
    );
    if (positionals.length) throw new UserError(`unexpected argument '${positionals[0]}'`);
    if (options.controls && options.table !== '1') throw new UserError('--controls applies to --table 1 only');
    if (options.words && options.table !== '9') throw new UserError('--words applies to --table 9 only');
    if (options['guidance-checkpoint'] && options.table === '9') throw new UserError('--guidance-checkpoint applies to --table 1 and single only (Table 9 reads the guidance model of each N)');
    if (options['no-classical'] && options.table === '9') throw new UserError('--no-classical applies to --table 1 and single only (Table 9 has no classical row)');
    const classical = !options['no-classical'];
    for (const f of options.checkpoint) if (!fs.existsSync(f)) throw new UserError(`${f}: no such checkpoint`);
    await initBackend({ quiet: true });
    const loaded = options.checkpoint.map((f) => ({ file: f, ...loadRestorer(f) }));
    const warnMismatch = (l: { file: string; meta: Record<string, unknown> }, source: GuidanceSource | undefined) => {
      const note = guidanceModelMismatch(l.file, l.meta, source);
      if (note) process.stderr.write(`${note}\n`);
    };
    try {
      const unguided = loaded.filter((l) => !l.cfg.model.guidance);
      const guided = loaded.filter((l) => l.cfg.model.guidance);
      if (unguided.length !== 1) throw new UserError(`needs exactly one unguided checkpoint (the baseline), got ${unguided.length}`);
      if (guided.length > 1) throw new UserError(`needs at most one guided checkpoint, got ${guided.length}`);
      const base = unguided[0];
      const g = guided[0];
      if (g && g.cfg.model.backbone.type !== base.cfg.model.backbone.type) {
        throw new UserError(`${g.file} is a ${g.cfg.model.backbone.type} model but ${base.file} is ${base.cfg.model.backbone.type}: compare the same backbone`);
      }
      if (g && g.cfg.tasks !== base.cfg.tasks) throw new UserError(`${g.file} was trained on '${g.cfg.tasks}' but ${base.file} on '${base.cfg.tasks}'`);
      const images = await validationImages(base.cfg.eval, options.limit ?? base.cfg.eval.limit);
      let bar: Progress | undefined;
      const onProgress = (d: number, t: number) => {
        bar ??= new Progress(`eval table ${options.table}`, t);
        bar.update(d);
      };
      let gbar: Progress | undefined;
      const onGuidance = (d: number, t: number) => {
        gbar ??= new Progress('guidance of the inputs, in batches', t);
        gbar.update(d);
      };
      let result: TableResult;
      let name: string;
      if (options.table === '1') {
        if (!g) throw new UserError('Table 1 needs a guided checkpoint too');
        if (base.cfg.tasks !== 'all-in-one') throw new UserError(`Table 1 compares all-in-one models; ${base.file} was trained on '${base.cfg.tasks}' (use --table single)`);
        const source = pickGuidance(options.guidance, undefined, guidanceCheckpointForRestorer(g.meta, options.guidance ?? DEFAULT_GUIDANCE, options['guidance-checkpoint']));
        warnMismatch(g, source);
        result = await table1({ unguided: base.net, guided: g.net, guidance: source, images, controls: options.controls, classical, onProgress, onGuidance });
        name = `table1-${base.cfg.model.backbone.type}`;
      } else if (options.table === 'single') {
        if (base.cfg.tasks === 'all-in-one') throw new UserError(`${base.file} is an all-in-one model (use --table 1)`);
        const source = g ? pickGuidance(options.guidance, undefined, guidanceCheckpointForRestorer(g.meta, options.guidance ?? DEFAULT_GUIDANCE, options['guidance-checkpoint'])) : undefined;
        if (g) warnMismatch(g, source);
        result = await singleTaskTable({ task: base.cfg.tasks as Task, unguided: base.net, guided: g?.net, guidance: source, images, classical, onProgress, onGuidance });
        name = `single-${base.cfg.tasks}-${base.cfg.model.backbone.type}`;
      } else {
        if (!g) throw new UserError('Table 9 needs a guided checkpoint too');
        const want = options.guidance ?? DEFAULT_GUIDANCE;
        pickGuidance(want); // registered?
        if (!guidanceSourceByName(want).entry.dependsOnN) throw new UserError(`guidance source '${want}' does not depend on N; Table 9 needs one that does (the text source)`);
        const specs = base.cfg.tasks === 'all-in-one' ? TABLE1_TASKS : singleTaskSpecs(base.cfg.tasks as Task);
        result = await table9({
          unguided: base.net,
          guidedFor: (n) => ({ net: g.net, guidance: guidanceSourceByName(want, { words: n }).source }),
          specs,
          images,
          ns: options.words,
          onProgress,
          onGuidance,
          note: 'One guided restorer for every N (the paper trains one per N): only the test-time guidance changes with N.',
        });
        name = `table9-${base.cfg.model.backbone.type}`;
      }
      const files = writeTables(options['out-dir'], name, result);
      process.stdout.write(`${result.markdown.split('\n**Per-image deltas')[0].trimEnd()}\n\n→ ${files.markdown}, ${files.html}, ${files.json}\n`);
    } finally {
      for (const l of loaded) l.params.dispose();
    }
    return 0;
  },
};
