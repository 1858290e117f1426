/** Tiny untrained models for the guidance tests (built in milliseconds, nothing downloaded). */
import * as tf from '@tensorflow/tfjs';
import { t2iPreset, parseT2IConfig } from '../../lib/t2i/presets';
import { guidancePreset, GuidanceConfigInput, GuidanceConfig } from '../../lib/guidance/config';
import { TextToImage } from '../../lib/t2i/model';
import { Params } from '../../lib/models/params';
import { buildVocab, PROMPT_TEMPLATE } from '../../lib/models/tokenizer';
import { DEGRADATION_WORDS } from '../../lib/data/captions';
import { Rng } from '../../lib/util/rng';

/**
 * The ci-sized T2I model, untrained, with a small vocabulary. Zero-initialised weights (the UNet's
 * convOut, every attention's output projection) are set to small random values, so that gradients
 * reach the cross-attentions and the text side (an untouched init gives ε_θ ≡ 0).
 */
export function tinyT2I(opts: { contextLength?: number; seed?: number; layoutLoss?: number } = {}): TextToImage {
  const base = t2iPreset('ci');
  const words = opts.layoutLoss !== undefined ? { words: { ...base.words!, layoutLoss: opts.layoutLoss } } : {}; // > 0: a layout map (hasLayoutMap)
  const cfg = parseT2IConfig({ ...base, ...words, text: { ...base.text, contextLength: opts.contextLength ?? base.text.contextLength } }, 'tiny t2i');
  const vocab = buildVocab([PROMPT_TEMPLATE, 'a photo of a red apple on a table', ...DEGRADATION_WORDS, '']);
  const m = new TextToImage(cfg, vocab, new Params(), 1);
  const rng = new Rng(opts.seed ?? 7);
  for (const [, v] of m.params.entries()) {
    const d = v.dataSync();
    if (v.shape.length >= 2 && d.every((x) => x === 0)) {
      const a = new Float32Array(v.size);
      for (let i = 0; i < a.length; i++) a[i] = rng.normal() * 0.05;
      tf.tidy(() => v.assign(tf.tensor(a, v.shape)));
    }
  }
  return m;
}

/** The ci guidance preset on 2 photos, small batches (a training step takes well under a second). */
export function tinyGuidanceConfig(over: Partial<GuidanceConfigInput> = {}): GuidanceConfig {
  const ci = guidancePreset('ci');
  return guidancePreset('ci', {
    data: { ...ci.data, maxPhotos: 2 },
    i2tTrain: { ...ci.i2tTrain, steps: 2, batch: 2, checkpointEvery: 1, emaDecay: 0 },
    cleanTrain: { ...ci.cleanTrain, steps: 2, batch: 2, checkpointEvery: 1, emaDecay: 0 },
    sample: { steps: 2, cfgScale: 3, seed: 42 },
    ...over,
  });
}
