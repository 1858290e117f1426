#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.hugetlb=1:${GLIBC_TUNABLES} node
/**
 * `tdr`: the project's command line. Each sub-command lives in lib/cli/commands/<name>.ts.
 *
 * Exit codes: 0 ok · 1 internal error (stack trace only with TDR_DEBUG=1) · 2 bad usage, bad value or
 * bad input file (one line on stderr naming it) · 130 interrupted.
 */
import { COMMANDS } from './commands';
import { EXIT, wantsHelp } from './command';
import { UserError } from '../util/errors';

function topHelp(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'tdr — textual degradation removal for image restoration (CVPR 2024), in TypeScript',
    '',
    'usage: tdr <command> [options]      tdr <command> --help',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'exit codes: 0 ok, 1 internal error, 2 bad usage/value/input file, 130 interrupted',
  ].join('\n');
}

/** Is this an error the user caused (bad value, bad file) rather than a bug? Every such error is a UserError (lib/util/errors.ts). */
function isUserFacing(e: unknown): e is Error {
  return e instanceof UserError;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(topHelp() + '\n');
    return name ? EXIT.ok : EXIT.usage;
  }
  if (name === '--version') {
    process.stdout.write(require('../../../package.json').version + '\n');
    return EXIT.ok;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`tdr: unknown command '${name}'; commands: ${COMMANDS.map((c) => c.name).join(', ')}\n`);
    return EXIT.usage;
  }
  if (wantsHelp(rest)) {
    process.stdout.write((cmd.helpFor?.(rest) ?? cmd.help).trimEnd() + '\n');
    return EXIT.ok;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (isUserFacing(e)) {
      process.stderr.write(`tdr ${name}: ${e.message.split('\n')[0]}\n`);
      return EXIT.usage;
    }
    if (process.env.TDR_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? e}\n`);
    else process.stderr.write(`tdr ${name}: internal error: ${(e as Error)?.message ?? e} (set TDR_DEBUG=1 for the stack trace)\n`);
    return EXIT.internal;
  }
}

if (require.main === module) {
  // a second Ctrl-C exits at once; the first lets a training loop checkpoint (lib/train/loop.ts)
  let interrupts = 0;
  process.on('SIGINT', () => {
    if (++interrupts > 1 || process.listenerCount('SIGINT') === 1) process.exit(EXIT.interrupted);
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`tdr: internal error: ${e?.message ?? e}\n`);
      process.exitCode = EXIT.internal;
    },
  );
}
