/**
 * Captions for training the text-to-image model (stage 0; docs/notation.md): "a photo of <content caption>" from the
 * corpus manifest, plus ", <phrase>" when the image was degraded, where the phrase comes from the
 * drawn degradation parameters and uses the words noisy, rainy, hazy, blurry. So "a photo of a
 * meadow" and "a photo of a meadow, hazy" name different images — the intuition of the paper's Fig. 1.
 */
import { CorpusEntry, promptOf } from './corpus';

/** The degradation words the text side learns (one per family; motion and defocus share "blurry"). */
export const DEGRADATION_WORDS = ['noisy', 'rainy', 'hazy', 'blurry'] as const;

/** "a photo of <caption>" or "a photo of <caption>, <phrase>". */
export function trainingCaption(entry: CorpusEntry | string, phrase?: string): string {
  const base = typeof entry === 'string' ? entry : promptOf(entry);
  const p = phrase?.trim();
  return p ? `${base}, ${p}` : base;
}
