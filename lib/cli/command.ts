/**
 * CLI plumbing shared by every `tdr` sub-command.
 *
 * A command parses its own argv with `parseOptions` (node:util parseArgs for the syntax, a zod
 * schema for the values), throws `UserError` for anything the user got wrong, and returns an exit
 * code. `main.ts` prints a UserError as ONE line on stderr (`tdr <command>: <message>`) with exit
 * code 2, and never a stack trace for it.
 *
 * Exit codes: 0 ok, 1 internal error (a bug: stack trace printed only with TDR_DEBUG=1),
 * 2 bad usage / bad value / bad input file, 130 interrupted (Ctrl-C).
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { UserError, zodIssuesLine } from '../util/errors';

export interface Command {
  /** the sub-command word, e.g. "degrade" */
  readonly name: string;
  /** one line for `tdr --help` */
  readonly summary: string;
  /** full help text for `tdr <name> --help` (usage line + options) */
  readonly help: string;
  /** help for a sub-form (e.g. `tdr train restore --help`); default `help` */
  helpFor?(argv: string[]): string;
  run(argv: string[]): Promise<number>;
}


export const EXIT = { ok: 0, internal: 1, usage: 2, interrupted: 130 } as const;

type OptSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/**
 * Parse argv: options per `spec` (strings stay strings), positionals, then validate the whole
 * object with `schema`. Numbers are given as strings on the command line: use `z.coerce.number()`
 * in the schema. Errors name the option: "--sigma: expected number, received NaN".
 */
export function parseOptions<S extends z.ZodType>(
  command: string,
  argv: string[],
  spec: OptSpec,
  schema: S,
): { options: z.infer<S>; positionals: string[] } {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: spec, allowPositionals: true, strict: true }) as never;
  } catch (e) {
    const first = (e as Error).message.split('\n')[0];
    const amb = /^Option '(--[\w-]+)' argument is ambiguous/.exec(first);
    if (amb) throw new UserError(`${amb[1]}: a value starting with '-' must be written ${amb[1]}=<value>; see 'tdr ${command} --help'`);
    throw new UserError(`${first.replace(/\. To specify.*$/, '')}; see 'tdr ${command} --help'`);
  }
  const values = Object.fromEntries(Object.entries(parsed.values).filter(([, v]) => v !== undefined));
  const r = schema.safeParse(values);
  if (!r.success) {
    // an option the schema needs but the command line does not give: say so, not "expected string, received undefined"
    // (a schema's own message for an absent option, e.g. from a default that fails .min, is kept)
    const isMissing = (i: z.core.$ZodIssue) => i.code === 'invalid_type' && i.path.length > 0 && !(String(i.path[0]) in values);
    const missing = [...new Set(r.error.issues.filter(isMissing).map((i) => `--${String(i.path[0])}`))];
    const rest = r.error.issues.filter((i) => !isMissing(i));
    const parts = [
      ...(missing.length ? [`${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} required`] : []),
      ...rest.map((i) => {
        const key = String(i.path[0] ?? '');
        // a word where a number belongs: show what was given, not "received NaN"
        if (i.code === 'invalid_type' && i.expected === 'number' && typeof values[key] === 'string') return `--${key}: expected a number, got '${values[key]}'`;
        return zodIssuesLine(new z.ZodError([i]), (p) => (p ? `--${p}` : ''));
      }),
    ];
    throw new UserError(missing.length ? `${parts.join('; ')}; see 'tdr ${command} --help'` : parts.join('; '));
  }
  return { options: r.data, positionals: parsed.positionals };
}

/** True when argv asks for help. */
export function wantsHelp(argv: string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/** Parse a JSON file given on the command line; a missing file or bad JSON is a UserError naming it. */
export function readJsonFile(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `not valid JSON (${(e as Error).message})`}`);
  }
}
