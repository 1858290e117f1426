/**
 * Checkpoints across backends (test/backend/checkpoint_cross.test.ts): two ci-preset models — the
 * text-to-image model (autoencoder, text encoder, UNet) and a guided PromptIR restorer — are saved on
 * one backend and loaded on another, and their outputs on fixed inputs are compared.
 *
 * Run as a script in a child process with TDR_BACKEND set:
 *   node cross_backend.js save DIR   save both models into DIR (weights moved off their initial values
 *                                   with a seeded perturbation, so a load that kept the initial
 *                                   weights would not pass), then print the outputs of the reloaded files
 *   node cross_backend.js load DIR   load both from DIR and print their outputs
 * The outputs are one line of JSON: { backend, t2i: number[], restorer: number[] }.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/backend';
import { Params } from '../../lib/models/params';
import { buildVocab } from '../../lib/models/tokenizer';
import { TextToImage } from '../../lib/t2i/model';
import { t2iPreset } from '../../lib/t2i/presets';
import { restorePreset } from '../../lib/restore/config';
import { buildRestorer, loadRestorer, saveRestorer } from '../../lib/restore/train';
import { Rng } from '../../lib/util/rng';

export const PROMPTS = ['a photo of a red apple on a table', 'a photo of a cat, hazy'];
const T2I_FILE = 't2i-ci.tdrc';
const RESTORER_FILE = 'restorer-ci.tdrc';

export interface CrossOutputs {
  backend: string;
  /** generated images of PROMPTS (DDIM 4 steps, seed 3), [2,H,W,3] flattened, in [0,1] */
  t2i: number[];
  /** the restorer's output for fixed X and G [1,16,16,3], flattened */
  restorer: number[];
}

/** Every parameter += 0.02·N(0,1) from a fixed seed (on any backend: the values come from Rng). */
function perturb(params: Params, seed: number): void {
  const rng = new Rng(seed);
  for (const [, v] of params.entries()) {
    const noise = Float32Array.from({ length: v.size }, () => 0.02 * rng.normal());
    tf.tidy(() => v.assign(tf.add(v, tf.tensor(noise, v.shape))));
  }
}

function fixedImage(seed: number, shape: [number, number, number, number]): tf.Tensor4D {
  const rng = new Rng(seed);
  return tf.tensor4d(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.uniform(0, 1)), shape);
}

/** Save both ci models into `dir` (float32); `extraSeed`: one more perturbation (other weights). */
export function saveModels(dir: string, opts: { extraSeed?: number } = {}): void {
  const t2i = new TextToImage(t2iPreset('ci'), buildVocab(PROMPTS), new Params(), 0.9);
  perturb(t2i.params, 11);
  if (opts.extraSeed != null) perturb(t2i.params, opts.extraSeed);
  t2i.save(path.join(dir, T2I_FILE));
  t2i.dispose();
  const cfg = restorePreset('ci', { backbone: 'promptir', guidance: true, tasks: 'all-in-one' });
  const { params } = buildRestorer(cfg);
  perturb(params, 12);
  if (opts.extraSeed != null) perturb(params, opts.extraSeed + 1);
  saveRestorer(path.join(dir, RESTORER_FILE), params, cfg, {}, { float16: false });
  params.dispose();
}

/** Load both models from `dir` and run them on the fixed inputs. */
export async function runModels(dir: string): Promise<CrossOutputs> {
  const t2i = TextToImage.load(path.join(dir, T2I_FILE));
  const images = await t2i.generate(PROMPTS, { seed: 3, steps: 4 });
  t2i.dispose();
  const { params, net } = loadRestorer(path.join(dir, RESTORER_FILE));
  const x = fixedImage(21, [1, 16, 16, 3]);
  const g = fixedImage(22, [1, 16, 16, 3]);
  const y = net.call(x, g);
  const restorer = Array.from(y.dataSync());
  tf.dispose([x, g, y]);
  params.dispose();
  return { backend: tf.getBackend(), t2i: images.flatMap((im) => Array.from(im.data)), restorer };
}

async function main(): Promise<void> {
  const [mode, dir] = process.argv.slice(2);
  if ((mode !== 'save' && mode !== 'load') || !dir) throw new Error('usage: cross_backend.js save|load DIR');
  await initBackend({ quiet: true });
  if (mode === 'save') saveModels(dir);
  process.stdout.write(JSON.stringify(await runModels(dir)) + '\n');
}

// run as the child script only when given a mode: `node --test dist/test/` also loads this file, without arguments
if (require.main === module && process.argv.length > 2) {
  main().catch((e: Error) => {
    process.stderr.write(`${e.stack ?? e.message}\n`);
    process.exit(1);
  });
}
