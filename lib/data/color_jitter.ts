/**
 * Colour jitter of a whole image: one random hue rotation about the grey axis, saturation scale,
 * gain and gamma, the same for every pixel. Used to make colour-jittered copies of the text-to-image
 * model's training crops (T2I config `words.colorJitter`): with 38 training photos the word mapper can
 * learn "these features → that colour" per photo instead of reading the colour it is given, and then
 * puts the wrong colours into the words of a photo it has never seen (docs/experiments.md,
 * "Can the text space describe a photo it has never seen?", item 6). A copy whose colours are drawn
 * independently of its content breaks that shortcut. Deterministic for a given seed.
 */
import { z } from 'zod';
import { RGBImage } from './image';
import { Rng } from '../util/rng';

/** Ranges of the random colour transform (uniform draws). */
export interface ColorJitterRanges {
  /** hue rotation in degrees, ± this */
  hue: number;
  /** saturation factor in [1 − s, 1 + s] (chroma about each pixel's grey value) */
  saturation: number;
  /** gain in [1 − g, 1 + g] */
  gain: number;
  /** exponent γ with log γ uniform in [−log(1 + r), log(1 + r)] */
  gamma: number;
}

/** Config field holding ColorJitterRanges (e.g. the restorer's `guidanceColorJitter`). */
export const ColorJitterRangesSchema: z.ZodType<ColorJitterRanges> = z.strictObject({
  hue: z.number().min(0).max(180),
  saturation: z.number().min(0).max(1),
  gain: z.number().min(0).max(1),
  gamma: z.number().min(0),
});

/**
 * Config field: how many colour-jittered copies of each clean crop to add (0: none). One schema for
 * the T2I's `words.colorJitter` and the guidance stages' `data.colorJitter`; `use` says what the copies
 * are trained on at that place.
 */
export function colorJitterCopiesSchema(use: string) {
  return z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe(`colour-jittered copies of each clean crop (lib/data/color_jitter.ts: random hue rotation, saturation, gain, gamma): ${use}; 0: none`);
}

export const DEFAULT_COLOR_JITTER: ColorJitterRanges = { hue: 180, saturation: 0.5, gain: 0.3, gamma: 0.5 };

/**
 * 3×3 rotation by θ about the grey axis (1,1,1)/√3 (Rodrigues' formula), row-major: greys stay grey,
 * hues turn. out = M · rgb.
 */
export function hueRotation(degrees: number): Float64Array {
  const t = (degrees * Math.PI) / 180;
  const c = Math.cos(t);
  const s = Math.sin(t) / Math.sqrt(3);
  const a = (1 - c) / 3;
  return Float64Array.from([c + a, a - s, a + s, a + s, c + a, a - s, a - s, a + s, c + a]);
}

/**
 * One colour-jittered copy of `img` (clipped to [0, 1]): rotate hue, scale saturation about the
 * pixel's mean of R, G, B, then gain and gamma.
 */
export function colorJitter(img: RGBImage, seed: number, ranges: ColorJitterRanges = DEFAULT_COLOR_JITTER): RGBImage {
  const rng = new Rng(seed);
  const m = hueRotation(rng.uniform(-ranges.hue, ranges.hue));
  const sat = rng.uniform(1 - ranges.saturation, 1 + ranges.saturation);
  const gain = rng.uniform(1 - ranges.gain, 1 + ranges.gain);
  const lg = Math.log(1 + ranges.gamma);
  const gamma = Math.exp(rng.uniform(-lg, lg));
  const src = img.data;
  const out = new Float32Array(src.length);
  const f = (v: number) => {
    const x = v * gain;
    return x <= 0 ? 0 : x >= 1 ? 1 : x ** gamma;
  };
  for (let i = 0; i < src.length; i += 3) {
    const r = src[i];
    const g = src[i + 1];
    const b = src[i + 2];
    let r2 = m[0] * r + m[1] * g + m[2] * b;
    let g2 = m[3] * r + m[4] * g + m[5] * b;
    let b2 = m[6] * r + m[7] * g + m[8] * b;
    const grey = (r2 + g2 + b2) / 3;
    r2 = grey + sat * (r2 - grey);
    g2 = grey + sat * (g2 - grey);
    b2 = grey + sat * (b2 - grey);
    out[i] = f(r2);
    out[i + 1] = f(g2);
    out[i + 2] = f(b2);
  }
  return { height: img.height, width: img.width, data: out };
}
