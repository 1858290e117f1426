/** The list of `tdr` sub-commands, in the order `tdr --help` shows them. */
import type { Command } from '../command';
import { reportCommand } from './report';
import { degradeCommand } from './degrade';
import { metricsCommand } from './metrics';
import { benchCommand } from './bench';
import { trainCommand } from './train';
import { sampleCommand } from './sample';
import { t2iCheckCommand } from './t2i_check';
import { restoreCommand } from './restore';
import { evalCommand } from './eval';
import { guideCommand } from './guide';
import { guideCheckCommand } from './guide_check';

export const COMMANDS: Command[] = [reportCommand, degradeCommand, metricsCommand, trainCommand, sampleCommand, t2iCheckCommand, guideCommand, guideCheckCommand, restoreCommand, evalCommand, benchCommand];
