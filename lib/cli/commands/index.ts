/** The list of `tdr` sub-commands, in the order `tdr --help` shows them. */
import type { Command } from '../command';
import { reportCommand } from './report';
import { degradeCommand } from './degrade';
import { metricsCommand } from './metrics';
import { benchCommand } from './bench';
import { trainCommand } from './train';
import { sampleCommand } from './sample';

export const COMMANDS: Command[] = [reportCommand, degradeCommand, metricsCommand, trainCommand, sampleCommand, benchCommand];
