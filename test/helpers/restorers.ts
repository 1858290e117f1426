/** Restorer checkpoints for the CLI tests, made on the fly (untrained: the tests check plumbing, not quality). */
import { restorePreset } from '../../lib/restore/config';
import { buildRestorer, saveRestorer } from '../../lib/restore/train';

/** Save an untrained all-in-one NAFNet restorer of the ci preset, guided or not, to `file`. Needs an initialised backend. */
export function saveCiRestorer(file: string, guidance = false): void {
  const cfg = restorePreset('ci', { backbone: 'nafnet', guidance, tasks: 'all-in-one' });
  const { params } = buildRestorer(cfg);
  try {
    saveRestorer(file, params, cfg);
  } finally {
    params.dispose();
  }
}
