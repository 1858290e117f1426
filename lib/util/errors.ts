/**
 * One way to say "this error is for the user": every error a user can cause (a bad option value, a
 * bad input file, an unknown preset, a checkpoint that does not fit) is a `UserError` or one of its
 * subclasses. The command line prints it as ONE line naming what is at fault (`tdr <command>: …`,
 * exit code 2) and never a stack trace; anything else is a bug (exit code 1).
 */
import type { z } from 'zod';

/** An error caused by the user's input: printed as one line, exit code 2. */
export class UserError extends Error {
  override name = 'UserError';
}

/**
 * The one line of a failed zod validation: `<label>: <path>: <message>; <path>: <message>`
 * (path `(root)` for the whole object). Used for every config (presets, JSON files, checkpoints).
 */
export function zodIssuesLine(err: z.ZodError, where: (path: string) => string = (p) => p || '(root)'): string {
  return err.issues
    .map((i) => {
      const at = where(i.path.map(String).join('.'));
      return `${at ? at + ': ' : ''}${i.message}`;
    })
    .join('; ');
}

/**
 * Validate `raw` with `schema`; on failure a UserError `<label>: <path>: <message>; …`.
 * The one parser behind parseT2IConfig, parseGuidanceConfig and parseRestoreConfig.
 */
export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown, label: string): z.infer<S> {
  const r = schema.safeParse(raw);
  if (!r.success) throw new UserError(`${label}: ${zodIssuesLine(r.error)}`);
  return r.data;
}
