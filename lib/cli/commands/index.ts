/** The list of `tdr` sub-commands, in the order `tdr --help` shows them. */
import type { Command } from '../command';

export const COMMANDS: Command[] = [];
